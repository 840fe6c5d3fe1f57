"""The sandbox's own tables, in the executor's SQLite file (``<state_dir>/executor.db``).

``sandbox_jobs`` holds every job from CreateJob on; its executor run (same id) exists only once the
job was launched, so the table does not reference ``runs`` — DeleteJob removes both.
``sandbox_workspaces`` holds the AIWorkspace workspaces; ``sandbox_training_jobs`` the PaiStudio training
jobs, each with the id of the ``sandbox_jobs`` row (its PAI-DLC job) that runs it; ``sandbox_job_templates``
the DLC job templates (one JSON document each, versions included, see ``templates.py``). All methods are
synchronous (call them from a worker thread in async code), each one a short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from cloudjobs_mcp.server.providers.local.store import Database
from cloudjobs_mcp.server.sandbox.jobs import JobRecord, PodPlan, iso

SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS sandbox_jobs (
        job_id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        job_type TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        queue_at REAL NOT NULL,
        launch_at REAL NOT NULL,
        body TEXT NOT NULL,
        pods TEXT NOT NULL,
        faults TEXT NOT NULL,
        launched_at REAL,
        stop_requested_at REAL,
        launch_error TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS sandbox_jobs_by_created ON sandbox_jobs(created_at)",
    """
    CREATE TABLE IF NOT EXISTS sandbox_workspaces (
        workspace_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        description TEXT NOT NULL,
        env_types TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sandbox_training_jobs (
        training_job_id TEXT PRIMARY KEY,
        dlc_job_id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        body TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sandbox_job_templates (
        template_id TEXT PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        data TEXT NOT NULL
    )
    """,
)

FIRST_WORKSPACE_ID = 100001


class _WithBody(Protocol):
    @property
    def body(self) -> dict[str, Any]: ...


B = TypeVar("B", bound=_WithBody)


@dataclass(frozen=True)
class TrainingJob:
    """One row of ``sandbox_training_jobs``: a PaiStudio training job and the DLC job that runs it."""

    training_job_id: str
    dlc_job_id: str
    name: str
    workspace_id: str
    created_at: float
    body: dict[str, Any]  # the CreateTrainingJob body as stored (known fields only)


def _training(row: sqlite3.Row) -> TrainingJob:
    return TrainingJob(
        row["training_job_id"],
        row["dlc_job_id"],
        row["name"],
        row["workspace_id"],
        row["created_at"],
        json.loads(row["body"]),
    )


@dataclass(frozen=True)
class Workspace:
    workspace_id: str
    name: str
    display_name: str
    description: str
    env_types: list[str]
    status: str
    created_at: float


def _record(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        job_id=row["job_id"],
        display_name=row["display_name"],
        job_type=row["job_type"],
        workspace_id=row["workspace_id"],
        created_at=row["created_at"],
        queue_at=row["queue_at"],
        launch_at=row["launch_at"],
        body=json.loads(row["body"]),
        pods=[PodPlan(*p) for p in json.loads(row["pods"])],
        faults=json.loads(row["faults"]),
        launched_at=row["launched_at"],
        stop_requested_at=row["stop_requested_at"],
        launch_error=row["launch_error"],
    )


def _workspace(row: sqlite3.Row) -> Workspace:
    return Workspace(
        workspace_id=row["workspace_id"],
        name=row["name"],
        display_name=row["display_name"],
        description=row["description"],
        env_types=json.loads(row["env_types"]),
        status=row["status"],
        created_at=row["created_at"],
    )


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.ensure_schema(SCHEMA)

    # ------------------------------------------------------------------------------------ jobs

    def insert_job(self, record: JobRecord, training: TrainingJob | None = None) -> None:
        """Insert a job (and, for a PaiStudio training job, its training job row, in the same transaction)."""
        with self.db.write() as conn:
            if training is not None:
                conn.execute(
                    "INSERT INTO sandbox_training_jobs (training_job_id, dlc_job_id, name, workspace_id, created_at, "
                    "body) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        training.training_job_id,
                        training.dlc_job_id,
                        training.name,
                        training.workspace_id,
                        training.created_at,
                        json.dumps(training.body, ensure_ascii=False),
                    ),
                )
            conn.execute(
                "INSERT INTO sandbox_jobs (job_id, display_name, job_type, workspace_id, created_at, queue_at, "
                "launch_at, body, pods, faults) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.job_id,
                    record.display_name,
                    record.job_type,
                    record.workspace_id,
                    record.created_at,
                    record.queue_at,
                    record.launch_at,
                    json.dumps(record.body, ensure_ascii=False),
                    json.dumps([[p.pod_id, p.role, p.rank] for p in record.pods]),
                    json.dumps(record.faults),
                ),
            )

    def job(self, job_id: str) -> JobRecord | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM sandbox_jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def jobs(self) -> list[JobRecord]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM sandbox_jobs ORDER BY created_at DESC, job_id DESC").fetchall()
        return [_record(r) for r in rows]

    def jobs_with_faults(self) -> list[JobRecord]:
        """Jobs that a job fault matched (what the scheduler's fault ticks look at)."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM sandbox_jobs WHERE faults != '[]' ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def due(self, now: float) -> list[JobRecord]:
        """Jobs whose queuing time is over and that were neither launched nor stopped."""
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM sandbox_jobs WHERE launched_at IS NULL AND stop_requested_at IS NULL "
                "AND launch_error IS NULL AND launch_at <= ? ORDER BY launch_at",
                (now,),
            ).fetchall()
        return [_record(r) for r in rows]

    @staticmethod
    def mark_launched(conn: sqlite3.Connection, job_id: str, now: float) -> bool:
        """Inside the executor's launch transaction: claim the launch (False: stopped or launched already)."""
        cur = conn.execute(
            "UPDATE sandbox_jobs SET launched_at = ? WHERE job_id = ? AND launched_at IS NULL "
            "AND stop_requested_at IS NULL",
            (now, job_id),
        )
        return cur.rowcount == 1

    def launch_failed(self, job_id: str, error: str) -> None:
        with self.db.write() as conn:
            conn.execute("UPDATE sandbox_jobs SET launch_error = ? WHERE job_id = ?", (error[:2000], job_id))

    def request_stop(self, job_id: str, now: float) -> tuple[bool, bool]:
        """Record a stop: ``(stopped_before_launch, launched)``. A second stop keeps the first time."""
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT launched_at, stop_requested_at FROM sandbox_jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return False, False
            if row["stop_requested_at"] is None:
                conn.execute("UPDATE sandbox_jobs SET stop_requested_at = ? WHERE job_id = ?", (now, job_id))
            return row["launched_at"] is None, row["launched_at"] is not None

    def edit_job_body(self, job_id: str, edit: Callable[[dict[str, Any]], None]) -> JobRecord | None:
        """Change a job's stored CreateJob body in place (``edit`` mutates it); None: no such job."""
        return self._edit_body("sandbox_jobs", "job_id", job_id, _record, edit)

    def _edit_body(
        self, table: str, key: str, value: str, load: Callable[[sqlite3.Row], B], edit: Callable[[dict[str, Any]], None]
    ) -> B | None:
        """Read the row whose ``key`` is ``value``, let ``edit`` change its body, write the body back (one
        transaction); None: no such row. ``table`` and ``key`` are this module's constants, never input."""
        with self.db.write() as conn:
            row = conn.execute(f"SELECT * FROM {table} WHERE {key} = ?", (value,)).fetchone()
            if row is None:
                return None
            item = load(row)
            edit(item.body)
            body = json.dumps(item.body, ensure_ascii=False)
            conn.execute(f"UPDATE {table} SET body = ? WHERE {key} = ?", (body, value))
        return item

    def delete_job(self, job_id: str) -> None:
        """Delete a job (and the training job it runs, if any)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM sandbox_jobs WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM sandbox_training_jobs WHERE dlc_job_id = ?", (job_id,))

    # ---------------------------------------------------------------------------- training jobs

    def training_job(self, training_job_id: str) -> TrainingJob | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT * FROM sandbox_training_jobs WHERE training_job_id = ?", (training_job_id,)
            ).fetchone()
        return _training(row) if row else None

    def training_jobs(self) -> list[TrainingJob]:
        with self.db.read() as conn:
            rows = conn.execute(
                "SELECT * FROM sandbox_training_jobs ORDER BY created_at DESC, training_job_id DESC"
            ).fetchall()
        return [_training(r) for r in rows]

    def training_for(self, dlc_job_id: str) -> TrainingJob | None:
        """The training job that the DLC job ``dlc_job_id`` runs (None: a plain DLC job)."""
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM sandbox_training_jobs WHERE dlc_job_id = ?", (dlc_job_id,)).fetchone()
        return _training(row) if row else None

    def edit_training_body(self, training_job_id: str, edit: Callable[[dict[str, Any]], None]) -> TrainingJob | None:
        """Change a training job's stored body in place (``edit`` mutates it); None: no such training job."""
        return self._edit_body("sandbox_training_jobs", "training_job_id", training_job_id, _training, edit)

    # ------------------------------------------------------------------------------ templates

    def insert_template(self, template_id: str, workspace_id: str, created_at: float, data: dict[str, Any]) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO sandbox_job_templates (template_id, workspace_id, created_at, data) VALUES (?, ?, ?, ?)",
                (template_id, workspace_id, created_at, json.dumps(data, ensure_ascii=False)),
            )

    def template(self, template_id: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT data FROM sandbox_job_templates WHERE template_id = ?", (template_id,)
            ).fetchone()
        return dict(json.loads(row["data"])) if row else None

    def templates(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT data FROM sandbox_job_templates ORDER BY created_at, template_id").fetchall()
        return [dict(json.loads(r["data"])) for r in rows]

    def edit_template(self, template_id: str, edit: Callable[[dict[str, Any] | None], Any]) -> Any:
        """Run ``edit`` on a template's data inside one write transaction and store it; returns what ``edit``
        returned (an exception leaves the template unchanged). ``None`` data: no such template."""
        with self.db.write() as conn:
            row = conn.execute(
                "SELECT data FROM sandbox_job_templates WHERE template_id = ?", (template_id,)
            ).fetchone()
            data = dict(json.loads(row["data"])) if row else None
            result = edit(data)
            if data is not None:
                conn.execute(
                    "UPDATE sandbox_job_templates SET data = ? WHERE template_id = ?",
                    (json.dumps(data, ensure_ascii=False), template_id),
                )
        return result

    def delete_template(self, template_id: str) -> bool:
        with self.db.write() as conn:
            cur = conn.execute("DELETE FROM sandbox_job_templates WHERE template_id = ?", (template_id,))
        return cur.rowcount == 1

    def training_ids(self) -> dict[str, str]:
        """DLC job id → training job id, for every training job."""
        with self.db.read() as conn:
            rows = conn.execute("SELECT dlc_job_id, training_job_id FROM sandbox_training_jobs").fetchall()
        return {r["dlc_job_id"]: r["training_job_id"] for r in rows}

    # ------------------------------------------------------------------------------ workspaces

    def workspaces(self) -> list[Workspace]:
        with self.db.read() as conn:
            rows = conn.execute("SELECT * FROM sandbox_workspaces ORDER BY created_at, workspace_id").fetchall()
        return [_workspace(r) for r in rows]

    def workspace(self, workspace_id: str) -> Workspace | None:
        with self.db.read() as conn:
            row = conn.execute("SELECT * FROM sandbox_workspaces WHERE workspace_id = ?", (workspace_id,)).fetchone()
        return _workspace(row) if row else None

    def create_workspace(
        self, name: str, display_name: str = "", description: str = "", env_types: list[str] | None = None
    ) -> Workspace | None:
        """The new workspace, or None when the name is taken."""
        now = time.time()
        with self.db.write() as conn:
            if conn.execute("SELECT 1 FROM sandbox_workspaces WHERE name = ?", (name,)).fetchone():
                return None
            row = conn.execute("SELECT MAX(CAST(workspace_id AS INTEGER)) AS m FROM sandbox_workspaces").fetchone()
            workspace_id = str(max(FIRST_WORKSPACE_ID, (row["m"] or 0) + 1))
            conn.execute(
                "INSERT INTO sandbox_workspaces (workspace_id, name, display_name, description, env_types, status, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    workspace_id,
                    name,
                    display_name or name,
                    description,
                    json.dumps(env_types or ["prod"]),
                    "ENABLED",
                    now,
                ),
            )
        return Workspace(workspace_id, name, display_name or name, description, env_types or ["prod"], "ENABLED", now)

    def workspace_names(self) -> dict[str, str]:
        return {w.workspace_id: w.name for w in self.workspaces()}


def workspace_item(ws: Workspace, account_id: str) -> dict[str, Any]:
    """A ListWorkspaces ``Workspaces[]`` element (note the API's lower-case ``resourceGroupId``)."""
    created = datetime_ms(ws.created_at)
    return {
        "WorkspaceId": ws.workspace_id,
        "WorkspaceName": ws.name,
        "DisplayName": ws.display_name,
        "Description": ws.description,
        "Status": ws.status,
        "EnvTypes": ws.env_types,
        "Creator": account_id,
        "AdminNames": [],
        "IsDefault": ws.workspace_id == str(FIRST_WORKSPACE_ID),
        "GmtCreateTime": created,
        "GmtModifiedTime": (iso(ws.created_at) or "")[:16] + "Z",
        "ExtraInfos": {"TenantId": account_id},
        "resourceGroupId": "rg-sandbox",
    }


def datetime_ms(ts: float) -> str:
    """``yyyy-MM-ddTHH:mm:ss.SSSZ`` (ListWorkspaces' GmtCreateTime format)."""
    value = datetime.fromtimestamp(ts, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
