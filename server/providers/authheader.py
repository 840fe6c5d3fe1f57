"""Reading a signed request's ``Authorization: <ALGORITHM> key=value, key=value`` header, the form both
ACS3-HMAC-SHA256 (PAI) and SDK-HMAC-SHA256 (ModelArts) use; the sandboxes verify requests with it."""

from __future__ import annotations


class SignatureError(ValueError):
    """An Authorization header that cannot be parsed (server side)."""


def authorization_fields(value: str, algorithm: str, required: tuple[str, ...]) -> dict[str, str]:
    """The header's ``key=value`` fields; SignatureError for another algorithm, a field without ``=``, or a
    missing ``required`` key (the first one missing is named)."""
    found, _, rest = value.strip().partition(" ")
    if found != algorithm:
        raise SignatureError(f"unsupported signature algorithm {found!r}")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            raise SignatureError(f"malformed Authorization field {part.strip()!r}")
        fields[key] = val
    for key in required:
        if key not in fields:
            raise SignatureError(f"Authorization lacks {key}")
    return fields
