"""Finding the error in a log: the block an assistant should read first when a job failed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal["python_traceback", "out_of_memory", "nccl", "cuda"]

# Kubernetes' words for an image that cannot be pulled (pod status, pod events).
IMAGE_PULL = re.compile(r"ImagePullBackOff|ErrImagePull|Failed to pull image|Back-off pulling image")
_TRACEBACK = "Traceback (most recent call last):"
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_SIGNS: list[tuple[ErrorKind, re.Pattern[str]]] = [
    (
        "out_of_memory",
        re.compile(r"CUDA out of memory|OutOfMemoryError|\bMemoryError\b|Out of memory|OOMKilled|oom-kill|^Killed$"),
    ),
    ("nccl", re.compile(r"\bNCCL (?:error|WARN)|nccl(?:Internal|System|Unhandled\w*|Invalid\w*)Error")),
    ("cuda", re.compile(r"CUDA error|cudaError\w+|device-side assert|CUBLAS_STATUS_\w+|CUDNN_STATUS_\w+")),
]
MAX_BLOCK_LINES = 40


@dataclass(frozen=True)
class ErrorBlock:
    kind: ErrorKind
    line: int  # 1-based line number of the block's first line in the log
    lines: list[str]


def classify(text: str) -> ErrorKind | None:
    for kind, pattern in _SIGNS:
        if any(pattern.search(line) for line in text.splitlines()):
            return kind
    return None


def find_error_block(lines: list[str]) -> ErrorBlock | None:
    """The last Python traceback (with its exception line), else the last OOM/NCCL/CUDA sign with context."""
    start = _last_traceback(lines)
    if start is not None:
        end = _traceback_end(lines, start)
        block = lines[start:end]
        return ErrorBlock(kind=classify("\n".join(block)) or "python_traceback", line=start + 1, lines=_bound(block))
    for i in range(len(lines) - 1, -1, -1):
        kind = classify(lines[i])
        if kind is not None:
            lo = max(0, i - 3)
            return ErrorBlock(kind=kind, line=lo + 1, lines=_bound(lines[lo : i + 6]))
    return None


def _last_traceback(lines: list[str]) -> int | None:
    for i in range(len(lines) - 1, -1, -1):
        if _TRACEBACK in lines[i]:
            # a chained traceback belongs to the one before it: start at the first of the chain
            j = i
            while True:
                k = _previous_chain_start(lines, j)
                if k is None:
                    return j
                j = k
    return None


def _previous_chain_start(lines: list[str], start: int) -> int | None:
    for back in range(start - 1, max(start - 4, -1), -1):
        if any(marker in lines[back] for marker in _CHAINED):
            for k in range(back - 1, -1, -1):
                if _TRACEBACK in lines[k]:
                    return k
    return None


def _traceback_end(lines: list[str], start: int) -> int:
    """Index just after the exception line that closes the traceback (following chained ones)."""
    i, n = start + 1, len(lines)
    while i < n:
        line = lines[i]
        if not line.strip() or line.startswith((" ", "\t")) or _TRACEBACK in line:
            i += 1  # frames, and the blank line inside a chain
            continue
        i += 1  # the exception line
        j = i
        while j < n and not lines[j].strip():
            j += 1
        if j < n and lines[j].startswith(_CHAINED):
            i = j + 1
            continue
        return i
    return i


def _bound(block: list[str]) -> list[str]:
    if len(block) <= MAX_BLOCK_LINES:
        return [line[:500] for line in block]
    head, tail = block[:10], block[-(MAX_BLOCK_LINES - 11) :]
    return [line[:500] for line in [*head, f"[... {len(block) - len(head) - len(tail)} lines ...]", *tail]]
