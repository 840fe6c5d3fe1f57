"""Run a job's pods as real processes on this machine, detached from the calling server.

The executor knows nothing about specs, images, quotes or tags: it runs *runs* made of *pods*, each pod one
``bash -c <command>`` process, and records their state, exit codes, logs and events in SQLite. The local
provider maps its jobs onto runs one to one; a sandbox emulating a cloud can do the same with its own
state directory, run ids and pod ids.

API (all methods are synchronous and may block briefly on SQLite or on a process start; call them from a
worker thread, e.g. ``anyio.to_thread.run_sync``, in async code)::

    ex = Executor(state_dir)                      # creates <state_dir>/executor.db (WAL)
    state = ex.launch(
        "run-1",
        [PodSpec("run-1-master-0", "Master", {"RANK": "0"}, "python train.py"), ...],  # or plain tuples
        workdir=None,                             # default <state_dir>/jobs/<run_id>/work
        max_runtime_seconds=3600.0,               # None: no limit; past it -> Stopped/MaxRuntimeExceeded
        grace_seconds=10.0,                       # SIGTERM -> SIGKILL delay on stop
        inherit_env=True,                         # start from this process's environment (scrubbed)
        record=lambda conn: ...,                  # optional: insert the caller's rows in the same transaction
        resources=Resources(cpus=4, memory_gb=16, gpus=1, gpu_pool=(0, 1)),  # per pod; optional: the queue
        capacity=Capacity(cpus=8, memory_gb=64, gpus=(0, 1)),  # what the queue hands out (stored)
        priority=1,                               # higher first (with resources)
        metrics_interval=2.0,                     # resource samples per pod (default 2 s with resources)
        sanity=SanityOptions(min_free_gb=1.0),    # pre-flight checks before any pod starts
    )
    ex.get(run_id) -> RunState                    # .status, .pods (PodState: pid, exit_code, signal, ...)
    ex.get_many(run_ids) -> dict[str, RunState]
    ex.run_ids(limit=None) -> list[str]           # newest first
    ex.stop(run_id, wait_seconds=0.0) -> RunState # terminal runs come back unchanged
    ex.wait(run_id, timeout) -> RunState          # until terminal or timeout
    ex.read_log(run_id, pod_id, max_lines=None, since=None, until=None) -> LogTail(lines, truncated, windowed)
                                                  # lines written in [since, until) (datetimes; naive = UTC),
                                                  # the last max_lines; all (<= 64 MiB from the end) if None
    ex.tail_log(run_id, pod_id, max_lines=None) -> LogTail   # the last lines, reading <= 8 MiB from the end
    ex.log_path(run_id, pod_id) -> Path
    ex.index_path(run_id, pod_id) -> Path         # the log's time index
    ex.events(run_id, pod_id=None) -> list[RunEvent]   # oldest first
    ex.metrics(run_id, metric, since=None, pod_id=None) -> {pod_id: [(unix time, %), ...]}  # oldest first
    ex.sanity_checks(run_id) -> list[SanityCheck]  # [] when launched without sanity
    ex.queue() -> list[str]                       # waiting runs, position 1 first
    ex.capacity() -> Capacity | None; ex.schedule() -> list[str]   # the stored capacity; one scheduling step
    ex.delete(run_id)                             # terminal runs only; removes rows, logs and workdir
    ex.db                                         # the Database, for callers' own tables (see store.py)
    record_event(conn, run_id, pod_id, message)   # add an event of the caller's inside its transaction

Layout: ``<state_dir>/executor.db``; per run ``<state_dir>/jobs/<run_id>/`` holding ``logs/<pod_id>.log``
(stdout and stderr of the pod, merged), ``logs/<pod_id>.idx`` (the log's time index), ``supervisor.log``
and, by default, ``work/`` (the pods' shared working directory).

Log times: pods write straight to their log files, so lines carry no timestamps. Instead the supervisor
samples each live pod's log size every ``LOG_INDEX_SECONDS`` (0.5 s) and appends ``(UTC time, size)`` to
the pod's ``.idx`` when the size changed, plus a first sample before the pod starts and a last one at
its exit. ``read_log`` maps ``since``/``until`` to byte offsets through it (binary search) and reads only
that byte range; a line counts as written when the first sample that saw its first byte was taken (up to
~0.5 s late; bytes no sample saw yet count as written now). Index format: a 16-byte header
(``b"CJLOGIDX"``, uint32 version 1, uint32 0), then 16-byte little-endian records (float64 Unix time,
uint64 log size), in time order; a trailing partial record is ignored. A missing or unreadable index
means no window: the whole log is returned, with ``LogTail.windowed`` False.

Run statuses (DLC-like raw names): (Queuing ->) Creating -> Running -> (Stopping ->) Succeeded | Failed |
Stopped. Pod statuses: Pending -> Running -> Succeeded | Failed | Stopped (terminated by the supervisor, or
never started).

The queue (``scheduler.py``): a run launched with ``resources`` holds, from its allocation until it is
terminal, pods x those CPUs and memory and its own GPU indices (by spec, not by measured use). It starts
at once when that fits in what is free (and nobody waits ahead of it), else it waits in Queuing, ordered
by priority then arrival, strictly (position 1 starts next). Every scheduling step runs inside a
``BEGIN IMMEDIATE`` transaction, so servers and supervisors sharing a state directory never hand out the
same resources; allocation moves a run to Creating and only its own supervisor starts its pods. Runs
without ``resources`` neither wait nor hold anything (the behaviour before the queue existed).

Resource metrics (``metrics.py``), pre-flight checks (``sanity.py``) and the OOM evidence of a pod killed
by SIGKILL (its memory cgroup's OOM-kill counter) are taken by the supervisor too.

How it runs: ``launch`` records the run, then starts ``python -m cloudjobs_mcp.server.providers.local.supervisor``
in a new session, hands it the pods' commands and environments on stdin (never written to disk) and
waits for it to daemonize (double fork), so runs outlive the server that launched them. The supervisor
waits for its run's allocation when it is queued (woken by SIGUSR1 from whoever allocates it), runs the
sanity checks when asked, then starts each pod in its own process group (its own session: the session id
is the pod's PID), records starts and exits, samples metrics, enforces the max runtime (counted from the
start, not from the enqueue), schedules the queue when its run ends, and on
stop (SIGTERM to the supervisor, or the DB stop flag it polls) sends SIGTERM to every pod's group and
SIGKILL after the grace period. The first non-zero exit fails the run and terminates the other pods.
A reader that finds a non-terminal run whose supervisor is gone (verified through
``/proc/<pid>/cmdline`` so a reused PID is never mistaken for it) marks the run Failed and kills any
pod left behind.

Pods start from this process's environment (with ``inherit_env``), minus variables whose names start
with one of ``SCRUBBED_ENV_PREFIXES`` (cloud credentials, the server's own settings), plus the pod's env
and ``CLOUDJOBS_RUN_ID=<run_id>`` (which also lets the executor recognise its pods' processes).
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple, overload

from cloudjobs_mcp.server.errors import CloudJobsError, InvalidRequest, NotFound
from cloudjobs_mcp.server.providers.local import scheduler
from cloudjobs_mcp.server.providers.local.metrics import DEFAULT_INTERVAL_SECONDS, KINDS, MIN_INTERVAL_SECONDS

# Re-exported: callers (the provider, the supervisor, a sandbox) import these from here.
from cloudjobs_mcp.server.providers.local.sanity import SanityOptions as SanityOptions
from cloudjobs_mcp.server.providers.local.scheduler import DEFAULT_PRIORITY as DEFAULT_PRIORITY
from cloudjobs_mcp.server.providers.local.scheduler import INSUFFICIENT_RESOURCES as INSUFFICIENT_RESOURCES
from cloudjobs_mcp.server.providers.local.scheduler import Capacity as Capacity
from cloudjobs_mcp.server.providers.local.scheduler import Resources as Resources
from cloudjobs_mcp.server.providers.local.store import CREATING as CREATING
from cloudjobs_mcp.server.providers.local.store import EXECUTOR_SCHEMA, Database, to_datetime
from cloudjobs_mcp.server.providers.local.store import FAILED as FAILED
from cloudjobs_mcp.server.providers.local.store import PENDING as PENDING
from cloudjobs_mcp.server.providers.local.store import QUEUING as QUEUING
from cloudjobs_mcp.server.providers.local.store import RUNNING as RUNNING
from cloudjobs_mcp.server.providers.local.store import STOPPED as STOPPED
from cloudjobs_mcp.server.providers.local.store import STOPPING as STOPPING
from cloudjobs_mcp.server.providers.local.store import SUCCEEDED as SUCCEEDED
from cloudjobs_mcp.server.providers.local.store import TERMINAL as TERMINAL
from cloudjobs_mcp.server.providers.local.store import record_event as record_event

# reason_code values.
STOPPED_BY_USER = "JobStoppedByUser"
MAX_RUNTIME_EXCEEDED = "MaxRuntimeExceeded"
POD_FAILED = "PodFailed"
POD_START_FAILED = "PodStartFailed"
SANITY_CHECK_FAILED = "SanityCheckFailed"
SUPERVISOR_LOST = "SupervisorLost"
SUPERVISOR_ERROR = "SupervisorError"

RUN_ENV = "CLOUDJOBS_RUN_ID"
SCRUBBED_ENV_PREFIXES: tuple[str, ...] = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_", "CLOUDJOBS_")
SUPERVISOR_MODULE = "cloudjobs_mcp.server.providers.local.supervisor"
# A run with no supervisor PID this long after creation lost its launcher (it crashed mid-launch).
LAUNCH_TIMEOUT_SECONDS = 60.0
DEFAULT_TAIL_BYTES = 8 * 1024 * 1024  # most bytes read for a log's last N lines
FULL_LOG_BYTES = 64 * 1024 * 1024  # most bytes read for a whole log (from its end)
LOG_INDEX_SECONDS = 0.5  # the supervisor samples each pod's log size about this often (when it changed)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PodSpec(NamedTuple):
    """One pod to launch: a ``(pod_id, role, env, command)`` tuple works too."""

    pod_id: str
    role: str
    env: Mapping[str, str]
    command: str


@dataclass(frozen=True)
class PodState:
    pod_id: str
    role: str
    index: int
    status: str
    detail: str | None
    pid: int | None
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    signal: int | None
    log_path: Path
    gpus: tuple[int, ...] | None = None  # the GPU indices allocated to it (runs launched with resources)


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    reason: str | None
    reason_code: str | None
    workdir: Path
    max_runtime_seconds: float | None
    grace_seconds: float
    supervisor_pid: int | None
    stop_requested: bool
    pods: tuple[PodState, ...]
    # The queue (runs launched with resources; None/False otherwise). See scheduler.py.
    resources: Resources | None = None
    priority: int | None = None
    enqueued_at: datetime | None = None
    allocated_at: datetime | None = None  # when it left the queue (None while it waits, or if it never ran)
    queue_position: int | None = None  # 1-based, while Queuing
    sanity_checking: bool = False  # its pre-flight checks are running

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or datetime.now(self.started_at.tzinfo)
        return max(0.0, (end - self.started_at).total_seconds())

    def pod(self, pod_id: str) -> PodState | None:
        return next((p for p in self.pods if p.pod_id == pod_id), None)


@dataclass(frozen=True)
class RunEvent:
    time: datetime
    run_id: str
    pod_id: str | None
    message: str


@dataclass(frozen=True)
class SanityCheck:
    check_number: int
    phase: str
    status: str  # Running, Succeeded, Failed
    message: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class LogTail:
    lines: list[str]
    truncated: bool  # older lines (of the window, when one was applied) were left out
    windowed: bool = False  # since/until were applied through the log's time index


# --------------------------------------------------------------------------------------------------------
# Helpers shared with the supervisor


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def describe_exit(exit_code: int, signum: int | None, *, killed_by_us: bool = False, oom: bool | None = None) -> str:
    """'exited with code 3' / 'was killed by signal SIGSEGV (exit code 139)' / 'was OOM-killed ...'.

    A SIGKILL nobody here sent (``killed_by_us`` False; also exit code 137 of a shell whose program was
    killed) is explained through ``oom``: True when the pod's memory cgroup counted an OOM kill meanwhile,
    False when it counted none, None when no cgroup counter was readable ("most likely out of memory")."""
    if signum is not None:
        text = f"was killed by signal {signal_name(signum)} (exit code {exit_code})"
        killed = signum
    elif 128 < exit_code < 128 + 65:
        killed = exit_code - 128
        text = f"exited with code {exit_code} (128+{killed}: its program was killed by {signal_name(killed)})"
    else:
        return f"exited with code {exit_code}"
    if killed != signal.SIGKILL or killed_by_us:
        return text
    if oom is True:
        return (
            f"was OOM-killed: the kernel's out-of-memory killer ended it with SIGKILL (exit code {exit_code}); "
            "it needed more memory than the machine had free"
        )
    if oom is False:
        return (
            f"{text}, not by the kernel's out-of-memory killer (its memory cgroup counts no OOM kill since it "
            "started): something outside the job sent SIGKILL (a user, or a userspace OOM daemon such as "
            "systemd-oomd)"
        )
    return (
        f"{text}, most likely out of memory (the out-of-memory killer sends SIGKILL; no cgroup memory events "
        "were readable to confirm it)"
    )


def format_seconds(seconds: float) -> str:
    if seconds >= 60 and abs(seconds / 60 - round(seconds / 60)) < 1e-9:
        minutes = round(seconds / 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} s"


def _read_proc(pid: int, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return None


def supervisor_alive(pid: int | None, run_id: str) -> bool:
    """True when ``pid`` is a live supervisor of ``run_id`` (a reused PID does not count)."""
    if not pid or pid <= 0:
        return False
    cmdline = _read_proc(pid, "cmdline")
    if cmdline is None:
        if not Path("/proc/self").exists():  # no procfs: fall back to a bare existence check
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return False
            return True
        return False
    args = cmdline.split(b"\0")  # a zombie has an empty cmdline
    return run_id.encode() in args and SUPERVISOR_MODULE.encode() in args


def pod_process_alive(pid: int | None, run_id: str) -> bool:
    """True when ``pid`` is a live process started as a pod of ``run_id`` (checked via its environment)."""
    if not pid or pid <= 0:
        return False
    environ = _read_proc(pid, "environ")
    if not environ:
        return False
    return f"{RUN_ENV}={run_id}".encode() in environ.split(b"\0")


NUDGE_SIGNAL = signal.SIGUSR1  # wakes a waiting supervisor: its run was just allocated (or failed)


def nudge_supervisors(touched: Sequence[tuple[str, int | None]]) -> None:
    """Wake the supervisors of runs a scheduling step allocated (``scheduler.schedule``'s result); call it
    after the transaction committed. A PID that is no longer the run's supervisor is never signalled."""
    for run_id, pid in touched:
        if pid and supervisor_alive(pid, run_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, NUDGE_SIGNAL)


def killpg_quietly(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def base_env(inherit: bool = True) -> dict[str, str]:
    """This process's environment minus variables named with a ``SCRUBBED_ENV_PREFIXES`` prefix."""
    if not inherit:
        return {"PATH": os.defpath}
    return {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}


def tail_lines(path: Path, max_lines: int | None = None, max_bytes: int = DEFAULT_TAIL_BYTES) -> LogTail:
    """The last ``max_lines`` lines of ``path`` (all when None), reading backwards from the end.

    Reads at most ``max_bytes`` (plus one block): older content is dropped and reported as truncated.
    Decodes UTF-8 with replacement characters; a missing file is an empty log.
    """
    return read_lines(path, max_lines, max_bytes=max_bytes)


def read_lines(
    path: Path,
    max_lines: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    index_path: Path | None = None,
    max_bytes: int | None = None,
) -> LogTail:
    """The lines of ``path`` written in ``[since, until)`` (either bound optional), the last ``max_lines``.

    The window is mapped to a byte range through the log's time index (``index_path``, see
    ``LogIndexWriter``); only that range is read. A line belongs to the window when its first byte does:
    the window starts at the first whole line at or after the offset for ``since`` and ends with the line
    holding the last byte before the offset for ``until``, so windows ``[a, b)`` and ``[b, c)`` split a
    log without gaps or overlaps. Times are those of the index sample that first saw a byte (up to
    ~``LOG_INDEX_SECONDS`` after it was written); bytes no sample has seen yet count as written now.
    Naive datetimes are UTC. Without a usable index the bounds are ignored (``LogTail.windowed`` False).

    At most ``max_bytes`` are read, from the end of the range: ``FULL_LOG_BYTES`` when ``max_lines`` is
    None, else ``DEFAULT_TAIL_BYTES``; older bytes are dropped and reported as truncated. Decodes UTF-8
    with replacement characters; a missing file is an empty log.
    """
    if max_lines is not None and max_lines < 0:
        raise InvalidRequest(f"max_lines must be 0 or more, got {max_lines}")
    if max_bytes is None:
        max_bytes = FULL_LOG_BYTES if max_lines is None else DEFAULT_TAIL_BYTES
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return LogTail([], False)
    with f:
        now = time.time()
        size = f.seek(0, os.SEEK_END)
        lo, hi, at_line_start, windowed = 0, size, True, False
        if (since is not None or until is not None) and index_path is not None:
            with _open_index(index_path) as index:
                if index is not None:
                    windowed = True
                    if since is not None:
                        start = _offset_at(index, _timestamp(since), now, size)
                        if start > 0:  # keep the line starting there, if one does
                            lo, at_line_start = start - 1, False
                    if until is not None:
                        hi = _line_end(f, _offset_at(index, _timestamp(until), now, size), size)
        if hi <= lo or (not at_line_start and hi <= lo + 1):
            return LogTail([], False, windowed)
        return _read_range(f, lo, hi, max_lines, max_bytes, at_line_start, windowed)


def _timestamp(t: datetime) -> float:
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()


def _offset_at(index: _LogIndex, t: float, now: float, size: int) -> int:
    """The log's size at time ``t``: that of the last sample before ``t`` (the whole file from now on)."""
    if t > now:
        return size
    k = bisect.bisect_left(index, t, key=lambda record: record[0])
    return min(index[k - 1][1], size) if k else 0


def _line_end(f: BinaryIO, offset: int, size: int, scan_limit: int = 1024 * 1024) -> int:
    """``offset`` when it starts a line, else the end of the line around it (cut ``scan_limit`` further)."""
    if offset <= 0 or offset >= size:
        return max(0, min(offset, size))
    f.seek(offset - 1)
    if f.read(1) == b"\n":
        return offset
    pos = offset
    while pos < size and pos - offset < scan_limit:
        data = f.read(min(64 * 1024, size - pos))
        if not data:
            break
        nl = data.find(b"\n")
        if nl >= 0:
            return pos + nl + 1
        pos += len(data)
    return pos


def _read_range(
    f: BinaryIO,
    lo: int,
    hi: int,
    max_lines: int | None,
    max_bytes: int,
    at_line_start: bool,
    windowed: bool,
) -> LogTail:
    """The lines of bytes ``[lo, hi)``, the last ``max_lines``, reading at most ``max_bytes`` (plus one
    block) backwards from ``hi``. Unless ``at_line_start``, everything up to the first newline is dropped."""
    if max_lines == 0:
        return LogTail([], True, windowed)
    if max_lines is None:  # everything up to the cap: one read
        pos = max(lo, hi - max_bytes)
        f.seek(pos)
        buf = f.read(hi - pos)
    else:
        block = 64 * 1024
        pos = hi
        chunks: list[bytes] = []
        newlines = 0
        while pos > lo and hi - pos < max_bytes:
            step = min(block, pos - lo)
            pos -= step
            f.seek(pos)
            data = f.read(step)
            chunks.append(data)
            newlines += data.count(b"\n")
            if newlines > max_lines:
                break
        buf = b"".join(reversed(chunks))
    truncated = pos > lo
    text = buf.decode("utf-8", errors="replace")
    del buf
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if (truncated and len(lines) > 1) or (not truncated and not at_line_start):
        del lines[0]  # a partial line (cut by the cap, or begun before the window)
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[-max_lines:]
        truncated = True
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    return LogTail(lines, truncated, windowed)


# Time index of a pod's log, ``<logs>/<pod_id>.idx``: a 16-byte header (``_INDEX_MAGIC``, version, zero),
# then 16-byte little-endian records ``(unix time as float64, log size in bytes as uint64)``, appended by
# the supervisor in time order. A trailing partial record (a write cut short) is ignored.
_INDEX_MAGIC = b"CJLOGIDX"
_INDEX_VERSION = 1
_INDEX_HEADER = _INDEX_MAGIC + struct.pack("<II", _INDEX_VERSION, 0)
_INDEX_RECORD = struct.Struct("<dQ")


class LogIndexWriter:
    """Appends ``(time, size)`` samples of one pod's log to its index file; used by the supervisor.

    ``start()`` (before the pod starts) creates the file with a first sample; ``sample()`` appends one
    when the size changed (``force`` for the final one at the pod's exit). Never raises: a log without a
    usable index is read whole, so an error (a full disk) only disables the index.
    """

    def __init__(self, log: Path, index: Path) -> None:
        self.log = log
        self.index = index
        self.last_size: int | None = None
        self.enabled = True

    def start(self, now: float | None = None) -> None:
        self._write(os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _INDEX_HEADER, True, now)

    def sample(self, *, force: bool = False, now: float | None = None) -> None:
        """Append ``(now, size)`` when the log's size changed (always with ``force``); ``now`` defaults to
        the time just after reading the size, so every byte below it was written by then."""
        self._write(os.O_WRONLY | os.O_APPEND, b"", force, now)

    def _write(self, flags: int, prefix: bytes, force: bool, now: float | None) -> None:
        if not self.enabled:
            return
        try:
            size = os.stat(self.log).st_size
        except OSError:
            return
        if size == self.last_size and not force:
            return
        data = prefix + _INDEX_RECORD.pack(time.time() if now is None else now, size)
        try:
            fd = os.open(self.index, flags, 0o644)
        except OSError:
            self.enabled = False
            return
        try:
            end = os.lseek(fd, 0, os.SEEK_END)
            if os.write(fd, data) != len(data):
                raise OSError("short write")
            self.last_size = size
        except OSError:
            self.enabled = False
            with contextlib.suppress(OSError):
                os.ftruncate(fd, end)  # no partial record in the middle of the file
        finally:
            os.close(fd)


class _LogIndex(Sequence[tuple[float, int]]):
    """The records of an open index file, read on demand (``bisect`` reads about log2(n) of them)."""

    def __init__(self, fd: int, count: int) -> None:
        self.fd = fd
        self._n = count

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> tuple[float, int]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[tuple[float, int]]: ...

    def __getitem__(self, i: int | slice) -> tuple[float, int] | Sequence[tuple[float, int]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        size = _INDEX_RECORD.size
        data = os.pread(self.fd, size, len(_INDEX_HEADER) + i * size)
        if len(data) != size:
            raise IndexError(i)
        t, n = _INDEX_RECORD.unpack(data)
        return t, n


@contextlib.contextmanager
def _open_index(path: Path) -> Iterator[_LogIndex | None]:
    """The index at ``path``; None when it is missing, empty or not an index."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        fd = -1
    if fd < 0:
        yield None
        return
    try:
        size = os.fstat(fd).st_size
        count = (size - len(_INDEX_HEADER)) // _INDEX_RECORD.size
        if count <= 0 or os.pread(fd, len(_INDEX_HEADER), 0) != _INDEX_HEADER:
            yield None
        else:
            yield _LogIndex(fd, count)
    finally:
        os.close(fd)


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidRequest(
            f"invalid {kind} {value!r}: use 1-200 characters from letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )


def check_env(env: Mapping[str, str], what: str = "envs") -> None:
    """Raise InvalidRequest for names or values a process environment cannot hold."""
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_NAME_RE.match(key):
            raise InvalidRequest(
                f"{what}: invalid variable name {key!r}; names use letters, digits and '_' and do not "
                "start with a digit"
            )
        if not isinstance(value, str) or "\0" in value:
            raise InvalidRequest(f"{what}: the value of {key} must be a string without NUL characters")


# --------------------------------------------------------------------------------------------------------


class Executor:
    """Runs pods as detached local processes; see the module docstring."""

    DB_NAME = "executor.db"

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir).expanduser().absolute()  # supervisors run in another cwd
        self.db = Database(self.state_dir / self.DB_NAME)
        self.db.ensure_schema(EXECUTOR_SCHEMA)

    # ----- paths

    def run_dir(self, run_id: str) -> Path:
        _check_name("run id", run_id)
        return self.state_dir / "jobs" / run_id

    def log_path(self, run_id: str, pod_id: str) -> Path:
        _check_name("pod id", pod_id)
        return self.run_dir(run_id) / "logs" / f"{pod_id}.log"

    def index_path(self, run_id: str, pod_id: str) -> Path:
        """The time index of the pod's log (written by the supervisor; see ``LogIndexWriter``)."""
        _check_name("pod id", pod_id)
        return self.run_dir(run_id) / "logs" / f"{pod_id}.idx"

    # ----- launch

    def launch(
        self,
        run_id: str,
        pods: Sequence[PodSpec | tuple[str, str, Mapping[str, str], str]],
        workdir: Path | str | None = None,
        max_runtime_seconds: float | None = None,
        grace_seconds: float = 10.0,
        *,
        inherit_env: bool = True,
        record: Callable[[sqlite3.Connection], None] | None = None,
        resources: Resources | None = None,
        capacity: Capacity | None = None,
        priority: int | None = None,
        metrics_interval: float | None = None,
        sanity: SanityOptions | None = None,
    ) -> RunState:
        """Record the run and start its supervisor; returns the run's state (usually still Creating, or
        Queuing when it waits for resources).

        ``record`` runs inside the transaction that inserts the run, so the caller's own rows exist
        exactly when the run does. On a failed start nothing is left behind (rows, directories).

        ``resources`` (per pod) puts the run in the queue (see ``scheduler.py``): it starts at once when it
        fits in what ``capacity`` (default: the one stored by the previous launch) leaves free, else it
        waits in Queuing, ordered by ``priority`` (higher first; default 1) then arrival. Its max runtime
        counts from its start. With ``resources.set_cuda_visible_devices`` every pod gets
        CUDA_VISIBLE_DEVICES=<its own GPU indices> ("" for none). Runs without ``resources`` start at once
        and hold nothing. ``metrics_interval`` (seconds; default 2 s for runs with resources, no sampling
        for others) has the supervisor sample each pod's CPU, memory and GPU use (see ``metrics.py``).
        ``sanity`` runs pre-flight checks before any pod starts (see ``sanity.py``); a failed one fails
        the run (reason_code SanityCheckFailed).
        """
        _check_name("run id", run_id)
        specs = [PodSpec(*p) for p in pods]
        if not specs:
            raise InvalidRequest("a run needs at least one pod")
        seen: set[str] = set()
        for spec in specs:
            _check_name("pod id", spec.pod_id)
            if spec.pod_id in seen:
                raise InvalidRequest(f"pod id {spec.pod_id!r} appears twice; pod ids must be unique")
            seen.add(spec.pod_id)
            if not spec.command.strip():
                raise InvalidRequest(f"pod {spec.pod_id}: the command is empty")
            if "\0" in spec.command:
                raise InvalidRequest(f"pod {spec.pod_id}: the command contains a NUL character")
            check_env(spec.env, f"pod {spec.pod_id} env")
        if max_runtime_seconds is not None and not max_runtime_seconds > 0:
            raise InvalidRequest(f"max_runtime_seconds must be positive, got {max_runtime_seconds}")
        if not grace_seconds >= 0:
            raise InvalidRequest(f"grace_seconds must be 0 or more, got {grace_seconds}")
        if resources is not None:
            if not (resources.cpus >= 0 and resources.memory_gb >= 0 and resources.gpus >= 0):
                raise InvalidRequest(f"resources must not be negative: {resources}")
        elif capacity is not None or priority is not None:
            raise InvalidRequest("capacity and priority apply to runs launched with resources")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            raise InvalidRequest(f"priority must be an integer, got {priority!r}")
        if metrics_interval is None and resources is not None:
            metrics_interval = DEFAULT_INTERVAL_SECONDS
        if metrics_interval is not None:
            if not metrics_interval > 0:
                raise InvalidRequest(f"metrics_interval must be positive, got {metrics_interval}")
            metrics_interval = max(MIN_INTERVAL_SECONDS, float(metrics_interval))

        run_dir = self.run_dir(run_id)
        work = Path(workdir).expanduser().absolute() if workdir is not None else run_dir / "work"
        env0 = base_env(inherit_env)
        payload: dict[str, object] = {
            "pods": [
                {
                    "pod_id": s.pod_id,
                    "command": s.command,
                    "env": {**env0, **s.env, RUN_ENV: run_id},
                    "log": str(self.log_path(run_id, s.pod_id)),
                    "index": str(self.index_path(run_id, s.pod_id)),
                }
                for s in specs
            ],
            "metrics_interval": metrics_interval,
            "cpus": None if resources is None else resources.cpus,
            "memory_gb": None if resources is None else resources.memory_gb,
            "cuda_visible_devices": resources is not None and resources.set_cuda_visible_devices,
            "sanity": None if sanity is None else {"min_free_gb": sanity.min_free_gb, "port_env": sanity.port_env},
        }
        now = time.time()
        touched: list[tuple[str, int | None]] = []
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
                raise InvalidRequest(f"a run with id {run_id!r} already exists")
            if resources is not None:
                if capacity is not None:
                    scheduler.set_capacity(conn, capacity, now)
                elif scheduler.load_capacity(conn) is None:
                    raise InvalidRequest("a run with resources needs a capacity (none was stored yet)")
            conn.execute(
                "INSERT INTO runs (run_id, status, created_at, workdir, max_runtime_seconds, grace_seconds)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    CREATING if resources is None else QUEUING,
                    now,
                    str(work),
                    max_runtime_seconds,
                    float(grace_seconds),
                ),
            )
            conn.executemany(
                "INSERT INTO pods (run_id, pod_id, idx, role, status) VALUES (?, ?, ?, ?, ?)",
                [(run_id, s.pod_id, i, s.role, PENDING) for i, s in enumerate(specs)],
            )
            limit = f"max runtime {format_seconds(max_runtime_seconds)}" if max_runtime_seconds else "no max runtime"
            record_event(
                conn,
                run_id,
                None,
                f"created with {len(specs)} pod{'s' if len(specs) != 1 else ''} "
                f"({', '.join(s.pod_id for s in specs)}); working directory {work}; {limit}",
                now,
            )
            if resources is not None:
                scheduler.enqueue(
                    conn, run_id, len(specs), resources, DEFAULT_PRIORITY if priority is None else priority, now
                )
                touched = scheduler.schedule_guarded(conn, now)
                waiting = scheduler.waiting_reasons(conn).get(run_id)
                if waiting is not None:
                    record_event(conn, run_id, None, waiting[1], now)
            if record is not None:
                record(conn)
        try:
            (run_dir / "logs").mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            for spec in specs:
                self.log_path(run_id, spec.pod_id).touch()
            pid = self._start_supervisor(run_id, run_dir, payload)
        except Exception as exc:
            with self.db.write() as conn:
                conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
                touched += scheduler.schedule_guarded(conn)  # what it held or blocked is free again
            nudge_supervisors(touched)
            self._remove_dirs(run_dir, work)
            if isinstance(exc, CloudJobsError):
                raise
            raise CloudJobsError(f"could not start the job's supervisor process: {exc}") from exc
        with self.db.write() as conn:
            conn.execute("UPDATE runs SET supervisor_pid = COALESCE(supervisor_pid, ?) WHERE run_id = ?", (pid, run_id))
        nudge_supervisors([t for t in touched if t[0] != run_id])
        return self.get(run_id)

    def _start_supervisor(self, run_id: str, run_dir: Path, payload: Mapping[str, object]) -> int:
        env = base_env(True)
        cmd = [sys.executable, "-m", SUPERVISOR_MODULE, "--db", str(self.db.path), "--run", run_id]
        with open(run_dir / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=run_dir,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        try:
            out, _ = proc.communicate(json.dumps(payload).encode(), timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise CloudJobsError(
                f"the job's supervisor did not start within 60 s; see {run_dir / 'supervisor.log'}"
            ) from None
        text = out.decode(errors="replace").strip()
        if proc.returncode != 0 or not text.isdigit():
            raise CloudJobsError(
                f"the job's supervisor failed to start (exit code {proc.returncode}); see {run_dir / 'supervisor.log'}"
            )
        return int(text)

    # ----- reading

    def get(self, run_id: str) -> RunState:
        """The run's current state; NotFound when there is no such run."""
        states = self.get_many([run_id])
        if run_id not in states:
            raise NotFound(f"no run {run_id!r}")
        return states[run_id]

    def get_many(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        """States of the runs that exist among ``run_ids`` (missing ones are left out)."""
        if not run_ids:
            return {}
        states = self._load(run_ids)
        for run_id, state in list(states.items()):
            if not state.terminal and self._supervisor_lost(state):
                self._reconcile_lost(run_id)
                states[run_id] = self._load([run_id])[run_id]
        return states

    def run_ids(self, limit: int | None = None) -> list[str]:
        """Ids of every run, newest first."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT run_id FROM runs ORDER BY created_at DESC, run_id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [r["run_id"] for r in rows]

    def _load(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        ids = list(dict.fromkeys(run_ids))
        runs: dict[str, sqlite3.Row] = {}
        pods: dict[str, list[sqlite3.Row]] = {}
        checking: set[str] = set()
        with self.db.read() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in conn.execute(f"SELECT * FROM runs WHERE run_id IN ({marks})", chunk):
                    runs[row["run_id"]] = row
                for row in conn.execute(f"SELECT * FROM pods WHERE run_id IN ({marks}) ORDER BY run_id, idx", chunk):
                    pods.setdefault(row["run_id"], []).append(row)
                for row in conn.execute(
                    f"SELECT DISTINCT run_id FROM sanity_checks WHERE status = 'Running' AND run_id IN ({marks})", chunk
                ):
                    checking.add(row["run_id"])
            entries = scheduler.entries_of(conn, [rid for rid in ids if rid in runs])
            waiting = scheduler.waiting_reasons(conn) if any(runs[r]["status"] == QUEUING for r in entries) else {}
        return {
            rid: self._state(runs[rid], pods.get(rid, []), entries.get(rid), waiting.get(rid), rid in checking)
            for rid in ids
            if rid in runs
        }

    def _state(
        self,
        row: sqlite3.Row,
        pod_rows: list[sqlite3.Row],
        entry: scheduler.QueueEntry | None = None,
        waiting: tuple[int, str] | None = None,
        checking: bool = False,
    ) -> RunState:
        run_id = row["run_id"]
        created = to_datetime(row["created_at"])
        assert created is not None
        allocation = entry.allocation if entry is not None else None
        reason = row["reason"]
        if waiting is not None and row["status"] == QUEUING and reason is None:
            reason = waiting[1]
        return RunState(
            run_id=run_id,
            status=row["status"],
            created_at=created,
            started_at=to_datetime(row["started_at"]),
            finished_at=to_datetime(row["finished_at"]),
            reason=reason,
            reason_code=row["reason_code"],
            workdir=Path(row["workdir"]),
            max_runtime_seconds=row["max_runtime_seconds"],
            grace_seconds=row["grace_seconds"],
            supervisor_pid=row["supervisor_pid"],
            stop_requested=row["stop_requested_at"] is not None,
            pods=tuple(
                PodState(
                    pod_id=p["pod_id"],
                    role=p["role"],
                    index=p["idx"],
                    status=p["status"],
                    detail=p["detail"],
                    pid=p["pid"],
                    started_at=to_datetime(p["started_at"]),
                    finished_at=to_datetime(p["finished_at"]),
                    exit_code=p["exit_code"],
                    signal=p["signal"],
                    log_path=self.log_path(run_id, p["pod_id"]),
                    gpus=None if allocation is None else allocation.get(p["pod_id"], ()),
                )
                for p in pod_rows
            ),
            resources=None if entry is None else entry.resources,
            priority=None if entry is None else entry.priority,
            enqueued_at=None if entry is None else to_datetime(entry.enqueued_at),
            allocated_at=None if entry is None else to_datetime(entry.allocated_at),
            queue_position=None if waiting is None or row["status"] != QUEUING else waiting[0],
            sanity_checking=checking,
        )

    def _supervisor_lost(self, state: RunState) -> bool:
        if state.supervisor_pid is None:
            return time.time() - state.created_at.timestamp() > LAUNCH_TIMEOUT_SECONDS
        return not supervisor_alive(state.supervisor_pid, state.run_id)

    def _reconcile_lost(self, run_id: str) -> None:
        """Mark a run whose supervisor is gone Failed, under the write lock (the supervisor may have just
        finished it), and kill any pod process it left behind."""
        orphans: list[int] = []
        touched: list[tuple[str, int | None]] = []
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT status, supervisor_pid, created_at FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None or row["status"] in TERMINAL:
                return
            pid = row["supervisor_pid"]
            if pid is None:
                if time.time() - row["created_at"] <= LAUNCH_TIMEOUT_SECONDS:
                    return
                reason = "the job's supervisor process never started (the server launching it stopped)"
            elif supervisor_alive(pid, run_id):
                return
            else:
                reason = (
                    f"the job's supervisor process (pid {pid}) is gone, most likely because the machine "
                    "restarted or the process was killed; the job's processes are no longer tracked"
                )
            now = time.time()
            for pod in conn.execute(
                "SELECT pod_id, pid FROM pods WHERE run_id = ? AND status IN (?, ?)", (run_id, PENDING, RUNNING)
            ).fetchall():
                if pod_process_alive(pod["pid"], run_id):
                    orphans.append(pod["pid"])
                conn.execute(
                    "UPDATE pods SET status = ?, detail = ?, finished_at = COALESCE(finished_at, ?) "
                    "WHERE run_id = ? AND pod_id = ?",
                    (FAILED, "lost with the job's supervisor", now, run_id, pod["pod_id"]),
                )
            conn.execute(
                "UPDATE runs SET status = ?, reason = ?, reason_code = ?, finished_at = ? WHERE run_id = ?",
                (FAILED, reason, SUPERVISOR_LOST, now, run_id),
            )
            record_event(conn, run_id, None, f"failed: {reason}", now)
            touched = scheduler.schedule_guarded(conn, now)  # what it held is free again
        for pid in orphans:
            killpg_quietly(pid, signal.SIGKILL)
        nudge_supervisors(touched)

    # ----- stop / wait / delete

    def stop(self, run_id: str, wait_seconds: float = 0.0) -> RunState:
        """Ask the run to stop (SIGTERM, SIGKILL after its grace period). A terminal run comes back
        unchanged. Waits up to ``wait_seconds`` for the run to reach a terminal status."""
        state = self.get(run_id)
        if state.terminal:
            return state
        pid: int | None = None
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT status, stop_requested_at, supervisor_pid FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            if row["status"] not in TERMINAL:
                pid = row["supervisor_pid"]
                if row["stop_requested_at"] is None:
                    now = time.time()
                    conn.execute(
                        "UPDATE runs SET stop_requested_at = ?, status = ? WHERE run_id = ?",
                        (now, STOPPING, run_id),
                    )
                    record_event(conn, run_id, None, "stop requested", now)
        if pid is not None and supervisor_alive(pid, run_id):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        if wait_seconds > 0:
            return self.wait(run_id, wait_seconds)
        return self.get(run_id)

    def wait(self, run_id: str, timeout: float, poll: float = 0.05) -> RunState:
        """Poll until the run is terminal or ``timeout`` seconds passed; returns the last state."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.get(run_id)
            if state.terminal or time.monotonic() >= deadline:
                return state
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))

    def delete(self, run_id: str) -> None:
        """Remove a terminal run: its rows (and callers' rows referencing it), logs and working directory
        (the latter only when it lies inside the state directory)."""
        with self.db.write() as conn:
            row = conn.execute("SELECT status, workdir FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise NotFound(f"no run {run_id!r}")
            if row["status"] not in TERMINAL:
                raise InvalidRequest(f"run {run_id} is {row['status']}; stop it first, then delete it")
            conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
        self._remove_dirs(self.run_dir(run_id), Path(row["workdir"]))

    def _remove_dirs(self, run_dir: Path, workdir: Path) -> None:
        shutil.rmtree(run_dir, ignore_errors=True)
        root = self.state_dir.resolve()
        try:
            inside = workdir.resolve().is_relative_to(root) and workdir.resolve() != root
        except OSError:
            inside = False
        if inside:
            shutil.rmtree(workdir, ignore_errors=True)

    # ----- logs and events

    def tail_log(self, run_id: str, pod_id: str, max_lines: int | None = None) -> LogTail:
        """The pod's log (stdout and stderr merged), the last ``max_lines`` lines when given; reads at most
        ``DEFAULT_TAIL_BYTES`` from the end (``read_log`` reads up to ``FULL_LOG_BYTES`` for a whole log)."""
        self._check_pod(run_id, pod_id)
        return tail_lines(self.log_path(run_id, pod_id), max_lines)

    def read_log(
        self,
        run_id: str,
        pod_id: str,
        max_lines: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> LogTail:
        """The pod's log lines written in ``[since, until)`` (either optional; naive datetimes are UTC),
        the last ``max_lines`` of them when given, else all up to ``FULL_LOG_BYTES`` read from the end.

        The window comes from the log's time index (accurate to about ``LOG_INDEX_SECONDS``); a log without
        one (a run started before indexes existed, a deleted index) is read whole: ``windowed`` is False.
        See ``read_lines``."""
        self._check_pod(run_id, pod_id)
        return read_lines(
            self.log_path(run_id, pod_id), max_lines, since, until, index_path=self.index_path(run_id, pod_id)
        )

    def _check_pod(self, run_id: str, pod_id: str) -> None:
        state = self.get(run_id)
        if state.pod(pod_id) is None:
            raise NotFound(
                f"run {run_id} has no pod {pod_id!r}; its pods are: {', '.join(p.pod_id for p in state.pods)}"
            )

    def events(self, run_id: str, pod_id: str | None = None) -> list[RunEvent]:
        """The run's events and its pods' (only ``pod_id``'s when given), oldest first."""
        state = self.get(run_id)
        if pod_id is not None and state.pod(pod_id) is None:
            raise NotFound(
                f"run {run_id} has no pod {pod_id!r}; its pods are: {', '.join(p.pod_id for p in state.pods)}"
            )
        with self.db.read() as conn:
            if pod_id is None:
                rows = conn.execute("SELECT * FROM events WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
            else:
                rows = conn.execute(
                    "SELECT * FROM events WHERE run_id = ? AND pod_id = ? ORDER BY id", (run_id, pod_id)
                ).fetchall()
        out = []
        for r in rows:
            t = to_datetime(r["time"])
            assert t is not None
            out.append(RunEvent(t, r["run_id"], r["pod_id"], r["message"]))
        return out

    # ----- metrics, sanity checks, queue

    def metrics(
        self, run_id: str, metric: str, since: datetime | None = None, pod_id: str | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """Raw samples of ``metric`` (cpu, memory, gpu_core, gpu_memory; see ``metrics.py``) per pod:
        ``pod_id -> [(unix time, value %), ...]`` oldest first, from ``since`` on (naive = UTC). Every
        pod of the run is a key (an empty list when it has no sample). NotFound for an unknown run/pod."""
        if metric not in KINDS:
            raise InvalidRequest(f"unknown metric {metric!r}; known: {', '.join(KINDS)}")
        state = self.get(run_id)
        pod_ids = [p.pod_id for p in state.pods]
        if pod_id is not None:
            if pod_id not in pod_ids:
                raise NotFound(f"run {run_id} has no pod {pod_id!r}; its pods are: {', '.join(pod_ids)}")
            pod_ids = [pod_id]
        out: dict[str, list[tuple[float, float]]] = {p: [] for p in pod_ids}
        t0 = -1e18 if since is None else _timestamp(since)
        with self.db.read() as conn:
            for row in conn.execute(
                "SELECT pod_id, time, value FROM metrics WHERE run_id = ? AND metric = ? "
                "AND ROUND(time, 6) >= ROUND(?, 6) ORDER BY pod_id, time",  # datetimes keep microseconds
                (run_id, metric, t0),
            ):
                if row["pod_id"] in out:
                    out[row["pod_id"]].append((row["time"], row["value"]))
        return out

    def sanity_checks(self, run_id: str) -> list[SanityCheck]:
        """The run's pre-flight checks in order (empty when it was launched without ``sanity``)."""
        self.get(run_id)
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM sanity_checks WHERE run_id = ? ORDER BY check_number", (run_id,)
            ).fetchall()
        return [
            SanityCheck(
                r["check_number"],
                r["phase"],
                r["status"],
                r["message"],
                to_datetime(r["started_at"]),
                to_datetime(r["finished_at"]),
            )
            for r in rows
        ]

    def capacity(self) -> Capacity | None:
        """What the queue hands out (stored by the last launch with resources); None before any."""
        with self.db.read() as conn:
            return scheduler.load_capacity(conn)

    def queue(self) -> list[str]:
        """Ids of the runs waiting in the queue, position 1 first."""
        with self.db.read() as conn:
            return [e.run_id for e in scheduler.waiting_order(scheduler.active_entries(conn))]

    def schedule(self) -> list[str]:
        """Run one scheduling step now (supervisors and launches do this themselves; see scheduler.py);
        returns the runs it allocated or failed."""
        with self.db.write() as conn:
            touched = scheduler.schedule(conn)
        nudge_supervisors(touched)
        return [run_id for run_id, _ in touched]
