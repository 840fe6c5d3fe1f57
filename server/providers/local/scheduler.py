"""The local queue: runs launched with resources wait in ``Queuing`` until what they need is free.

Capacity (``queue_capacity``, one row per state directory) is what the machine hands out: CPUs, memory
(GiB) and GPU indices, written by whoever launches a run with resources (the local provider passes what
``machine.py`` detected). A run launched with ``Resources`` (per pod: CPUs, memory, GPU count, and the GPU
indices it may get) has a ``run_queue`` row, and from the moment it is allocated until it is terminal it
holds pods x its CPUs and memory, and its own GPU indices: by spec allocation, not by measured use. Each
GPU index is held by one run at a time; the allocation gives every pod its own indices, in pod order.

Order: priority (higher first), then enqueue order. The queue is strict: a run is allocated only when
every run ahead of it was, so position 1 is always the next to start and a big job is never starved by
smaller ones behind it. A waiting run that could never fit the current capacity (it shrank since the run
was accepted) is failed (reason_code ``InsufficientResources``) rather than blocking the queue forever.

``schedule(conn)`` is one scheduling step: it allocates to waiting runs, in order, while they fit. It runs
inside a write (``BEGIN IMMEDIATE``) transaction, so two processes never hand out the same CPUs or GPUs,
and it is run by everyone who changes what is held or waiting: the launcher (in the transaction that
records a run), a supervisor (in the one that finishes its run), a reader (in the one that fails a run
whose supervisor is gone) and, every ``SAFETY_STEP_SECONDS``, each waiting supervisor. An allocated run goes
``Queuing`` -> ``Creating``; only its own supervisor (woken by SIGUSR1, else at its next poll) then starts
its pods, so no run is ever started twice, whichever processes share the state directory.

Stdlib only (imported by supervisor processes).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass, field

from cloudjobs_mcp.server.providers.local.store import (
    CREATING,
    FAILED,
    PENDING,
    QUEUING,
    STOPPED,
    TERMINAL,
    record_event,
)

INSUFFICIENT_RESOURCES = "InsufficientResources"
DEFAULT_PRIORITY = 1
SAFETY_STEP_SECONDS = 5.0  # a waiting supervisor runs a scheduling step this often, whatever happened
_EPS = 1e-9
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Capacity:
    """What the queue hands out: CPUs, memory in GiB and the GPU indices of the machine."""

    cpus: float
    memory_gb: float
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class Resources:
    """What each pod of a run holds while the run is allocated (by spec, not by measured use)."""

    cpus: float
    memory_gb: float
    gpus: int = 0
    gpu_pool: tuple[int, ...] | None = None  # the GPU indices the run may get (e.g. one model's); None: any
    set_cuda_visible_devices: bool = True  # each pod gets CUDA_VISIBLE_DEVICES=<its indices> ("" without GPUs)


@dataclass(frozen=True)
class QueueEntry:
    run_id: str
    seq: int
    priority: int
    enqueued_at: float
    pod_count: int
    resources: Resources
    allocated_at: float | None
    allocation: dict[str, tuple[int, ...]] | None
    status: str
    supervisor_pid: int | None

    @property
    def waiting(self) -> bool:
        return self.allocated_at is None and self.status == QUEUING

    @property
    def holding(self) -> bool:
        return self.allocated_at is not None and self.status not in TERMINAL


@dataclass
class Free:
    cpus: float
    memory_gb: float
    gpus: set[int] = field(default_factory=set)


def _fmt(x: float) -> str:
    return f"{round(x, 2):g}"


def _plural(n: float, word: str) -> str:
    return f"{_fmt(n)} {word}{'' if n == 1 else 's'}"


def describe_need(pods: int, res: Resources) -> str:
    """'2 CPUs, 22 GiB memory and 2 GPUs (2 pods x 1 CPU, 11 GiB, 1 GPU)'."""
    parts = [_plural(pods * res.cpus, "CPU"), f"{_fmt(pods * res.memory_gb)} GiB memory"]
    if res.gpus:
        parts.append(_plural(pods * res.gpus, "GPU"))
    text = f"{', '.join(parts[:-1])} and {parts[-1]}"
    if pods > 1:
        each = [_plural(res.cpus, "CPU"), f"{_fmt(res.memory_gb)} GiB"] + (
            [_plural(res.gpus, "GPU")] if res.gpus else []
        )
        text += f" ({pods} pods x {', '.join(each)})"
    return text


def describe_free(free: Free, cap: Capacity) -> str:
    parts = [
        f"{_fmt(max(0.0, free.cpus))} of {_plural(cap.cpus, 'CPU')}",
        f"{_fmt(max(0.0, free.memory_gb))} of {_fmt(cap.memory_gb)} GiB memory",
    ]
    if cap.gpus:
        names = ", ".join(str(g) for g in sorted(free.gpus)) or "none"
        parts.append(f"GPUs free: {names} (of {', '.join(str(g) for g in cap.gpus)})")
    return "; ".join(parts)


def describe_allocation(allocation: dict[str, tuple[int, ...]]) -> str:
    given = [(pod, gpus) for pod, gpus in allocation.items() if gpus]
    if not given:
        return ""
    return "; ".join(f"GPU{'s' if len(g) != 1 else ''} {','.join(map(str, g))} to {pod}" for pod, g in given)


# ----------------------------------------------------------------------------------------------- storage


def set_capacity(conn: sqlite3.Connection, cap: Capacity, now: float | None = None) -> None:
    conn.execute(
        "INSERT INTO queue_capacity (id, cpus, memory_gb, gpus, updated_at) VALUES (1, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET cpus = excluded.cpus, memory_gb = excluded.memory_gb, "
        "gpus = excluded.gpus, updated_at = excluded.updated_at",
        (float(cap.cpus), float(cap.memory_gb), json.dumps(sorted(cap.gpus)), time.time() if now is None else now),
    )


def load_capacity(conn: sqlite3.Connection) -> Capacity | None:
    row = conn.execute("SELECT cpus, memory_gb, gpus FROM queue_capacity WHERE id = 1").fetchone()
    if row is None:
        return None
    return Capacity(row["cpus"], row["memory_gb"], tuple(int(g) for g in json.loads(row["gpus"])))


def enqueue(conn: sqlite3.Connection, run_id: str, pod_count: int, res: Resources, priority: int, now: float) -> None:
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM run_queue").fetchone()[0]
    conn.execute(
        "INSERT INTO run_queue (run_id, seq, priority, enqueued_at, pod_count, cpus, memory_gb, gpus, gpu_pool) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run_id,
            seq,
            int(priority),
            now,
            pod_count,
            float(res.cpus),
            float(res.memory_gb),
            int(res.gpus),
            None if res.gpu_pool is None else json.dumps(sorted(res.gpu_pool)),
        ),
    )


def _entry(row: sqlite3.Row) -> QueueEntry:
    pool = row["gpu_pool"]
    alloc = row["allocation"]
    return QueueEntry(
        run_id=row["run_id"],
        seq=row["seq"],
        priority=row["priority"],
        enqueued_at=row["enqueued_at"],
        pod_count=row["pod_count"],
        resources=Resources(
            row["cpus"],
            row["memory_gb"],
            row["gpus"],
            None if pool is None else tuple(int(g) for g in json.loads(pool)),
        ),
        allocated_at=row["allocated_at"],
        allocation=None if alloc is None else {k: tuple(v) for k, v in json.loads(alloc).items()},
        status=row["status"],
        supervisor_pid=row["supervisor_pid"],
    )


_ENTRY_SQL = (
    "SELECT q.*, r.status AS status, r.supervisor_pid AS supervisor_pid FROM run_queue q "
    "JOIN runs r ON r.run_id = q.run_id"
)


def active_entries(conn: sqlite3.Connection) -> list[QueueEntry]:
    """Entries of the runs that hold resources or wait for them."""
    marks = ",".join("?" * len(TERMINAL))
    rows = conn.execute(
        f"{_ENTRY_SQL} WHERE r.status NOT IN ({marks}) ORDER BY q.seq", tuple(sorted(TERMINAL))
    ).fetchall()
    return [_entry(r) for r in rows]


def entries_of(conn: sqlite3.Connection, run_ids: list[str]) -> dict[str, QueueEntry]:
    out: dict[str, QueueEntry] = {}
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"{_ENTRY_SQL} WHERE q.run_id IN ({marks})", chunk):
            out[row["run_id"]] = _entry(row)
    return out


def waiting_order(entries: list[QueueEntry]) -> list[QueueEntry]:
    return sorted((e for e in entries if e.waiting), key=lambda e: (-e.priority, e.seq))


def free_now(cap: Capacity, entries: list[QueueEntry]) -> Free:
    free = Free(cap.cpus, cap.memory_gb, set(cap.gpus))
    for e in entries:
        if e.holding:
            free.cpus -= e.pod_count * e.resources.cpus
            free.memory_gb -= e.pod_count * e.resources.memory_gb
            for gpus in (e.allocation or {}).values():
                free.gpus.difference_update(gpus)
    return free


def _usable_gpus(pool: set[int], res: Resources) -> list[int]:
    return sorted(g for g in pool if res.gpu_pool is None or g in res.gpu_pool)


def never_fits(entry: QueueEntry, cap: Capacity) -> str | None:
    """Why ``entry`` could not run even on an idle machine of capacity ``cap``; None when it could."""
    n, res = entry.pod_count, entry.resources
    short = []
    if n * res.cpus > cap.cpus + _EPS:
        short.append(f"{_fmt(n * res.cpus)} CPUs (the machine has {_fmt(cap.cpus)})")
    if n * res.memory_gb > cap.memory_gb + _EPS:
        short.append(f"{_fmt(n * res.memory_gb)} GiB memory (the machine has {_fmt(cap.memory_gb)})")
    if res.gpus and n * res.gpus > len(_usable_gpus(set(cap.gpus), res)):
        short.append(f"{n * res.gpus} GPUs (the machine has {len(_usable_gpus(set(cap.gpus), res))} it may use)")
    return "; ".join(short) or None


def try_fit(entry: QueueEntry, free: Free, pod_ids: list[str]) -> dict[str, tuple[int, ...]] | None:
    """The allocation (GPU indices per pod) when ``entry`` fits in ``free``, else None."""
    n, res = entry.pod_count, entry.resources
    if n * res.cpus > free.cpus + _EPS or n * res.memory_gb > free.memory_gb + _EPS:
        return None
    gpus = _usable_gpus(free.gpus, res)
    if n * res.gpus > len(gpus):
        return None
    return {pod: tuple(gpus[i * res.gpus : (i + 1) * res.gpus]) for i, pod in enumerate(pod_ids)}


# ---------------------------------------------------------------------------------------------- the step


def schedule(conn: sqlite3.Connection, now: float | None = None) -> list[tuple[str, int | None]]:
    """One scheduling step inside ``conn``'s write transaction; see the module docstring.

    Returns ``(run_id, supervisor_pid)`` of every run it allocated (or failed), whose supervisor should be
    woken once the transaction committed (``Executor``'s ``nudge_supervisors``)."""
    cap = load_capacity(conn)
    if cap is None:
        return []
    now = time.time() if now is None else now
    entries = active_entries(conn)
    free = free_now(cap, entries)
    touched: list[tuple[str, int | None]] = []
    for entry in waiting_order(entries):
        why = never_fits(entry, cap)
        if why is not None:
            reason = f"it can never run on this machine as it is now: it needs {why}"
            conn.execute(
                "UPDATE runs SET status = ?, reason = ?, reason_code = ?, finished_at = ? WHERE run_id = ? "
                "AND status = ?",
                (FAILED, reason, INSUFFICIENT_RESOURCES, now, entry.run_id, QUEUING),
            )
            conn.execute(
                "UPDATE pods SET status = ?, detail = ?, finished_at = ? WHERE run_id = ? AND status = ?",
                (STOPPED, "not started", now, entry.run_id, PENDING),
            )
            record_event(conn, entry.run_id, None, f"failed: {reason}", now)
            touched.append((entry.run_id, entry.supervisor_pid))
            continue
        pod_ids = [r[0] for r in conn.execute("SELECT pod_id FROM pods WHERE run_id = ? ORDER BY idx", (entry.run_id,))]
        allocation = try_fit(entry, free, pod_ids)
        if allocation is None:
            break  # strict order: nobody behind it goes first
        conn.execute(
            "UPDATE run_queue SET allocated_at = ?, allocation = ? WHERE run_id = ?",
            (now, json.dumps({k: list(v) for k, v in allocation.items()}), entry.run_id),
        )
        conn.execute("UPDATE runs SET status = ? WHERE run_id = ? AND status = ?", (CREATING, entry.run_id, QUEUING))
        free.cpus -= entry.pod_count * entry.resources.cpus
        free.memory_gb -= entry.pod_count * entry.resources.memory_gb
        for held in allocation.values():
            free.gpus.difference_update(held)
        waited = now - entry.enqueued_at
        gpus = describe_allocation(allocation)
        record_event(
            conn,
            entry.run_id,
            None,
            f"resources allocated{f' after {waited:.1f} s in the queue' if waited >= 0.05 else ''}: "
            f"{describe_need(entry.pod_count, entry.resources)}{f'; {gpus}' if gpus else ''}",
            now,
        )
        touched.append((entry.run_id, entry.supervisor_pid))
    return touched


def schedule_guarded(conn: sqlite3.Connection, now: float | None = None) -> list[tuple[str, int | None]]:
    """``schedule`` inside a savepoint: should it fail, its changes are undone and the caller's transaction
    (finishing a run, say) still commits; the queue is then scheduled by the next step."""
    conn.execute("SAVEPOINT schedule")
    try:
        touched = schedule(conn, now)
    except Exception:
        conn.execute("ROLLBACK TO schedule")
        conn.execute("RELEASE schedule")
        logger.exception("local queue: a scheduling step failed")
        return []
    conn.execute("RELEASE schedule")
    return touched


def positions(entries: list[QueueEntry]) -> dict[str, int]:
    """1-based queue positions of the waiting runs among ``entries`` (all active entries)."""
    return {e.run_id: i for i, e in enumerate(waiting_order(entries), start=1)}


def waiting_reasons(conn: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """``run_id -> (position, why it waits)`` for every waiting run."""
    entries = active_entries(conn)
    order = waiting_order(entries)
    if not order:
        return {}
    cap = load_capacity(conn)
    free = f"; free now: {describe_free(free_now(cap, entries), cap)}" if cap is not None else ""
    out: dict[str, tuple[int, str]] = {}
    for pos, entry in enumerate(order, start=1):
        need = describe_need(entry.pod_count, entry.resources)
        ahead = ""
        if pos == 2:
            ahead = "; 1 job ahead of it starts first"
        elif pos > 2:
            ahead = f"; {pos - 1} jobs ahead of it start first"
        out[entry.run_id] = (pos, f"queued at position {pos} of {len(order)}: needs {need}{free}{ahead}")
    return out
