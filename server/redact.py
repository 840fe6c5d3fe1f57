"""Masking known secret shapes in text before it leaves the server (job logs, event text)."""

from __future__ import annotations

import re

MASK = "****"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # key=value / "key": "value" where the key names a secret (covers AccessKey secrets and passwords)
    (
        re.compile(
            r"(?i)((?:access[_-]?key[_-]?secret|accesskeysecret|secret[_-]?access[_-]?key|secret|password|passwd|"
            r"pwd|security[_-]?token|securitytoken|sts[_-]?token|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
            r"([^\s\"',;&]{4,})"
        ),
        r"\1" + MASK,
    ),
    # a bare "token" key is common in training logs ("num_token=1024"): mask only non-numeric values
    (re.compile(r"(?i)(token[\"']?\s*[:=]\s*[\"']?)(?![\d.]+\b)([^\s\"',;&]{8,})"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),  # Authorization: Bearer …
    (re.compile(r"\b([a-z][a-z0-9+.-]*://[^:/\s@]+:)[^@/\s]+(@)"), r"\1" + MASK + r"\2"),  # user:pass@ in URLs
    (re.compile(r"\bLTAI[0-9A-Za-z]{12,30}\b"), "LTAI" + MASK),  # Alibaba AccessKey ids
    (re.compile(r"\bSTS\.[0-9A-Za-z]{16,}\b"), "STS." + MASK),  # STS AccessKey ids
    (re.compile(r"\bCAIS[0-9A-Za-z+/=_-]{20,}"), "CAIS" + MASK),  # STS security tokens
    (re.compile(r"(Signature=)[0-9a-f]{64}\b"), r"\1" + MASK),  # ACS3 signatures
]


def mask(text: str, known: tuple[str, ...] = ()) -> str:
    """``text`` with secret-shaped substrings (and the exact ``known`` secrets) replaced by ****."""
    for secret in known:
        if secret and len(secret) >= 6:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
