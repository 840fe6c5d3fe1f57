"""Which provider runs which job: job id → provider name, in SQLite beside the quotes.

Filled when a job is created and when a listing or a lookup first shows a job, so that a bare job id
finds its provider after a restart without asking every platform again. A row is a hint, never a
proof: the engine still asks that provider, and forgets the row when the provider no longer knows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cloudjobs_mcp.server.sqlite import Database


class JobIndex:
    DB_NAME = "jobs.db"

    def __init__(self, state_dir: Path) -> None:
        self._db = Database(state_dir / self.DB_NAME)
        self._db.ensure_schema(
            ["CREATE TABLE IF NOT EXISTS job_providers (job_id TEXT PRIMARY KEY, provider TEXT NOT NULL)"]
        )

    def get(self, job_id: str) -> str | None:
        with self._db.read() as db:
            row = db.execute("SELECT provider FROM job_providers WHERE job_id = ?", (job_id,)).fetchone()
        return str(row[0]) if row else None

    def remember(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (job id, provider) pairs; one short write, skipped when there is nothing new."""
        rows = list(dict(pairs).items())
        if not rows:
            return
        with self._db.read() as db:  # a listing mostly shows known jobs: then nothing is written
            marks = ",".join("?" * len(rows))
            known = db.execute(
                f"SELECT job_id, provider FROM job_providers WHERE job_id IN ({marks})", [r[0] for r in rows]
            ).fetchall()
        rows = [r for r in rows if r not in {(str(k[0]), str(k[1])) for k in known}]
        if not rows:
            return
        with self._db.write() as db:
            db.executemany("INSERT OR REPLACE INTO job_providers (job_id, provider) VALUES (?, ?)", rows)

    def forget(self, job_id: str) -> None:
        with self._db.write() as db:
            db.execute("DELETE FROM job_providers WHERE job_id = ?", (job_id,))
