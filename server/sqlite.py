"""A SQLite file used safely by several processes at once: the gate's quotes, the local executor's runs.

Every connection runs in WAL mode with a busy timeout, and every write is a short ``BEGIN IMMEDIATE``
transaction. Each thread of each process keeps one connection per file and reuses it between
transactions: opening one costs ~0.3 ms, a hundred times an indexed read, and ``get_job`` reads the gate
on every call. A transaction that starts while the thread's connection is inside another one (a nested
call, or a coroutine that awaits inside its transaction) gets a connection of its own, closed after.
This module imports only the standard library and ``server.errors`` so that the local supervisor
processes, which use it, start fast.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from cloudjobs_mcp.server.errors import CloudJobsError

BUSY_TIMEOUT_SECONDS = 30.0


class Database:
    """A SQLite file used concurrently by several processes; see the module docstring."""

    def __init__(self, path: Path, *, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> None:
        self.path = Path(path)
        self.busy_timeout = busy_timeout
        self._local = threading.local()

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _lease(self) -> tuple[sqlite3.Connection, bool]:
        """(connection, whether it is this thread's kept one) for one transaction."""
        local = self._local
        kept: sqlite3.Connection | None = getattr(local, "conn", None)
        if kept is not None and local.pid == os.getpid() and not kept.in_transaction:
            return kept, True
        conn = self.connect()
        if kept is None or local.pid != os.getpid():  # a forked child must not share its parent's connection
            local.conn, local.pid = conn, os.getpid()
            return conn, True
        return conn, False

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        try:
            conn, kept = self._lease()
        except sqlite3.Error as exc:
            raise CloudJobsError(f"cannot open the state database {self.path}: {exc}") from exc
        failed = True
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
            failed = False
        finally:
            if not kept:
                conn.close()
            elif failed and conn.in_transaction:  # a connection left mid-transaction is not reused
                conn.close()
                self._local.conn = None

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
