"""SQLite access shared by the executor, its supervisor processes and the local provider.

One database file per state directory. Several processes use it at once (one or more MCP servers and
one supervisor per running job), so every connection runs in WAL mode with a busy timeout, every write
is a short ``BEGIN IMMEDIATE`` transaction, and connections are opened per operation (cheap for SQLite,
and safe from any thread).

This module imports only the standard library and ``server.errors`` so that supervisor processes start
fast.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

from cloudjobs_mcp.server.sqlite import BUSY_TIMEOUT_SECONDS as BUSY_TIMEOUT_SECONDS
from cloudjobs_mcp.server.sqlite import Database as Database

# Run statuses (DLC-like raw names), shared by the executor, its scheduler and its supervisors.
QUEUING = "Queuing"
CREATING = "Creating"
RUNNING = "Running"
STOPPING = "Stopping"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
STOPPED = "Stopped"
TERMINAL = frozenset({SUCCEEDED, FAILED, STOPPED})
# Pod statuses (plus Running/Succeeded/Failed/Stopped above).
PENDING = "Pending"

# The executor's own tables. Callers (the local provider, a sandbox) add their own tables to the same file,
# referencing runs(run_id) ON DELETE CASCADE so that deleting a run removes their rows too.
EXECUTOR_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        workdir TEXT NOT NULL,
        max_runtime_seconds REAL,
        grace_seconds REAL NOT NULL,
        supervisor_pid INTEGER,
        stop_requested_at REAL,
        reason TEXT,
        reason_code TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS pods (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        pod_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        role TEXT NOT NULL,
        status TEXT NOT NULL,
        detail TEXT,
        pid INTEGER,
        started_at REAL,
        finished_at REAL,
        exit_code INTEGER,
        signal INTEGER,
        PRIMARY KEY (run_id, pod_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        pod_id TEXT,
        time REAL NOT NULL,
        message TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS events_by_run ON events(run_id, id)",
    "CREATE INDEX IF NOT EXISTS runs_by_created ON runs(created_at)",
    # The queue (see scheduler.py): one row per run launched with resources; the allocation (JSON
    # {pod_id: [GPU index, ...]}) is set once, when the run leaves the queue.
    """
    CREATE TABLE IF NOT EXISTS run_queue (
        run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        enqueued_at REAL NOT NULL,
        pod_count INTEGER NOT NULL,
        cpus REAL NOT NULL,
        memory_gb REAL NOT NULL,
        gpus INTEGER NOT NULL,
        gpu_pool TEXT,
        allocated_at REAL,
        allocation TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS run_queue_by_seq ON run_queue(seq)",
    # What the queue hands out: one row, written by whoever launches a run with resources.
    """
    CREATE TABLE IF NOT EXISTS queue_capacity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        cpus REAL NOT NULL,
        memory_gb REAL NOT NULL,
        gpus TEXT NOT NULL,
        updated_at REAL NOT NULL
    )
    """,
    # Resource samples of each pod, written by the supervisor (see metrics.py).
    """
    CREATE TABLE IF NOT EXISTS metrics (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        pod_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        time REAL NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run_id, pod_id, metric, time)
    ) WITHOUT ROWID
    """,
    # Pre-flight checks run by the supervisor before the pods start.
    """
    CREATE TABLE IF NOT EXISTS sanity_checks (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        check_number INTEGER NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        message TEXT NOT NULL,
        started_at REAL,
        finished_at REAL,
        PRIMARY KEY (run_id, check_number)
    )
    """,
)


def record_event(
    conn: sqlite3.Connection, run_id: str, pod_id: str | None, message: str, now: float | None = None
) -> None:
    """Add an event of the run (of one of its pods when ``pod_id`` is given) inside ``conn``'s transaction."""
    conn.execute(
        "INSERT INTO events (run_id, pod_id, time, message) VALUES (?, ?, ?, ?)",
        (run_id, pod_id, time.time() if now is None else now, message),
    )


def to_datetime(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)
