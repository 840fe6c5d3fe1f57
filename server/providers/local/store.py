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
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from server.errors import CloudJobsError

BUSY_TIMEOUT_SECONDS = 30.0

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


class Database:
    """A SQLite file used concurrently by several processes; see the module docstring."""

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        try:
            conn = self.connect()
        except sqlite3.Error as exc:
            raise CloudJobsError(f"cannot open the state database {self.path}: {exc}") from exc
        try:
            try:
                conn.execute(begin)
            except sqlite3.OperationalError as exc:
                raise CloudJobsError(
                    f"the state database {self.path} stayed locked for {self.busy_timeout:g} s ({exc}); try again"
                ) from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for every query inside it."""
        return self._transaction("BEGIN DEFERRED")

    def write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): keep it short."""
        return self._transaction("BEGIN IMMEDIATE")

    def ensure_schema(self, statements: Iterable[str]) -> None:
        """Create the file (WAL mode) and run idempotent ``CREATE ... IF NOT EXISTS`` statements."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn = self.connect()
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                finally:
                    conn.close()
                break
            except sqlite3.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise CloudJobsError(f"cannot open the state database {self.path}: {exc}") from exc
                time.sleep(0.05)
        with self.write() as conn:
            for statement in statements:
                conn.execute(statement)
