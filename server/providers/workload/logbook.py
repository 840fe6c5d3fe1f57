"""A cursor over pod logs the platform only serves as "the last N lines" (or "the last N seconds").

Primus-SaFE's pod log API has no offset, no cursor and no timestamps, and a pod's log disappears when
the workload's CR is deleted (``ttlSecondsAfterFinished`` after the end). :class:`LogBook` keeps, per pod,
every line the provider has read so far, with the time it was first seen, and merges each new read into
it by de-duplicating the overlap: the longest suffix of what is known that equals a prefix of the new
read is the part both have seen; what follows it is new. So line numbers stay stable while the
platform's window slides (the shared cursor of ``server.logs`` relies on that), ``until`` can be applied
(first-seen times), and what was read before the logs expired can still be shown afterwards.

One ambiguity is inherent: when the read filled its whole window and the log repeats the same lines,
fewer new lines may be counted than were written. A read that returned fewer lines than asked is the
whole log, and replaces what is known (nothing is ambiguous then).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_PODS = 64
MAX_LINES_PER_POD = 200_000


@dataclass
class PodBook:
    lines: list[str] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)  # unix time each line was first read
    partial: str | None = None  # the last line while it has no newline yet (not counted)


def split_lines(raw: list[str]) -> tuple[list[str], str | None]:
    """The platform's ``logs`` (the text split on ``\\n``) → complete lines and the unfinished last one."""
    if not raw:
        return [], None
    if raw[-1] == "":
        return raw[:-1], None
    return raw[:-1], raw[-1]


def overlap(known: list[str], new: list[str]) -> int:
    """Length of the longest suffix of ``known`` that is a prefix of ``new``."""
    top = min(len(known), len(new))
    for k in range(top, 0, -1):
        if known[-k] == new[0] and known[-k:] == new[:k]:
            return k
    return 0


class LogBook:
    """Per (workload, pod): the lines read so far. Bounded: the least recently used pods are dropped."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._pods: OrderedDict[tuple[str, str], PodBook] = OrderedDict()
        self._clock = clock

    def get(self, workload_id: str, pod_id: str) -> PodBook | None:
        return self._pods.get((workload_id, pod_id))

    def merge(self, workload_id: str, pod_id: str, raw: list[str], *, whole: bool) -> PodBook:
        """Add one read of the pod's log (``whole``: the read returned all of it, not just a window)."""
        key = (workload_id, pod_id)
        book = self._pods.pop(key, None) or PodBook()
        self._pods[key] = book
        while len(self._pods) > MAX_PODS:
            self._pods.popitem(last=False)
        lines, partial = split_lines(raw)
        now = self._clock()
        if whole:
            kept = min(len(book.lines), len(lines))
            if book.lines[:kept] != lines[:kept]:
                kept = 0  # not the log we knew (a restarted pod): start over
            book.seen = book.seen[:kept] + [now] * (len(lines) - kept)
            book.lines = list(lines)
        else:
            k = overlap(book.lines, lines)
            fresh = lines[k:]
            book.lines.extend(fresh)
            book.seen.extend([now] * len(fresh))
        if len(book.lines) > MAX_LINES_PER_POD:
            cut = len(book.lines) - MAX_LINES_PER_POD
            del book.lines[:cut], book.seen[:cut]
        book.partial = partial
        return book

    def forget(self, workload_id: str) -> None:
        for key in [k for k in self._pods if k[0] == workload_id]:
            del self._pods[key]
