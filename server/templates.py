"""The server's own job templates, with versions: ``TemplateStore`` implements ``TemplateBackend``.

Providers without templates of their own (``Provider.template_backend()`` is None, e.g. ``local``) get
their templates here, in ``<state_dir>/templates.db`` (``server.sqlite.Database``: WAL, short
``BEGIN IMMEDIATE`` writes, so several server processes may share one state directory).

A template has an id ``tpl-<16 hex>``, a unique name (1-64 characters from letters, digits, '.', '_'
and '-'), and versions 1..n. ``create`` makes version 1 (the default); ``update`` adds the next version
and leaves the default where it was; ``set_default_version`` moves it. ``get`` without a version gives the
default version. Each version keeps its config (``TemplateConfig``), its constraints (JSONPath of a config
field → locked | overridable | required) and its description.

Template ids are looked up first; a name is accepted wherever an id is (``get("my-template")``).
"""

from __future__ import annotations

import builtins
import json
import re
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import anyio.to_thread

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import JobTemplate, TemplateConfig, TemplateConstraint
from cloudjobs_mcp.server.sqlite import Database

SOURCE = "server state"
DB_NAME = "templates.db"
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_DESCRIPTION = 2000
CONSTRAINT_VALUES: tuple[str, ...] = get_args(TemplateConstraint)
# Config fields that are maps: a constraint may name one of their keys ("$.envs.LR").
MAP_FIELDS = ("envs", "hyperparameters")
_PATH_RE = re.compile(r"^\$\.([A-Za-z_][A-Za-z0-9_]*)(?:\.(.+))?$")

_SCHEMA: tuple[str, ...] = (
    """
    CREATE TABLE IF NOT EXISTS templates (
        template_id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        default_version INTEGER NOT NULL,
        created_at REAL NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS template_versions (
        template_id TEXT NOT NULL REFERENCES templates(template_id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        config TEXT NOT NULL,
        constraints TEXT NOT NULL,
        description TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (template_id, version)
    )
    """,
    "CREATE INDEX IF NOT EXISTS templates_by_created ON templates(created_at)",
)


def new_template_id() -> str:
    return f"tpl-{secrets.token_hex(8)}"


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidRequest(
            f"invalid template name {name!r}: use 1-64 characters from letters, digits, '.', '_' and '-'"
        )


def check_constraints(config: TemplateConfig, constraints: dict[str, Any]) -> dict[str, TemplateConstraint]:
    """The constraints, checked: each key a JSONPath of a ``TemplateConfig`` field, each value one of
    locked / overridable / required; a locked field must have a value in the config."""
    fields = list(TemplateConfig.model_fields)
    paths_help = ", ".join(f"$.{f}" for f in fields) + ", " + ", ".join(f"$.{f}.KEY" for f in MAP_FIELDS)
    out: dict[str, TemplateConstraint] = {}
    for path, value in constraints.items():
        m = _PATH_RE.match(path) if isinstance(path, str) else None
        if m is None or m.group(1) not in fields:
            raise InvalidRequest(f"constraint {path!r}: keys are JSONPaths of template config fields: {paths_help}")
        field, key = m.group(1), m.group(2)
        if key is not None and field not in MAP_FIELDS:
            raise InvalidRequest(
                f"constraint {path!r}: {field} has no keys; use '$.{field}' "
                f"(only {' and '.join(MAP_FIELDS)} take a key, e.g. '$.envs.LR')"
            )
        if value not in CONSTRAINT_VALUES:
            raise InvalidRequest(
                f"constraint {path!r}: {value!r} is not a constraint; use one of {', '.join(CONSTRAINT_VALUES)}"
            )
        if value == "locked":
            current = getattr(config, field)
            missing = key not in current if key is not None else current is None
            if missing:
                raise InvalidRequest(
                    f"constraint {path!r} is locked but the template config sets no value for it; "
                    "give it a value in the config, or mark it required (each run must give it) or overridable"
                )
        out[path] = value
    return out


def check_config(config: TemplateConfig) -> None:
    if config.worker_count is not None and config.worker_count < 1:
        raise InvalidRequest(f"worker_count must be at least 1, got {config.worker_count}")
    if config.max_runtime_minutes is not None and not config.max_runtime_minutes > 0:
        raise InvalidRequest(f"max_runtime_minutes must be positive, got {config.max_runtime_minutes}")


def _check_description(description: str) -> str:
    if not isinstance(description, str):
        raise InvalidRequest("description must be a string")
    if len(description) > MAX_DESCRIPTION:
        raise InvalidRequest(f"description is {len(description)} characters; at most {MAX_DESCRIPTION}")
    return description


class TemplateStore:
    """Job templates kept in ``<state_dir>/templates.db``; see the module docstring."""

    source = SOURCE

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir).expanduser().absolute()
        self.db = Database(self.state_dir / DB_NAME)
        self._ready = False

    def _database(self) -> Database:
        if not self._ready:
            self.db.ensure_schema(_SCHEMA)
            self._ready = True
        return self.db

    # ----- TemplateBackend

    async def create(
        self,
        name: str,
        config: TemplateConfig,
        constraints: dict[str, TemplateConstraint],
        description: str = "",
    ) -> JobTemplate:
        """A new template at version 1; an existing name → InvalidRequest (update it instead)."""
        return await anyio.to_thread.run_sync(self._create, name, config, constraints, description)

    async def update(
        self,
        template_id: str,
        config: TemplateConfig,
        constraints: dict[str, TemplateConstraint],
        description: str | None = None,
    ) -> JobTemplate:
        """A new version (the default version stays unless set); None keeps the latest description."""
        return await anyio.to_thread.run_sync(self._update, template_id, config, constraints, description)

    async def list(self) -> list[JobTemplate]:
        """Every template, newest first, each at its default version."""
        return await anyio.to_thread.run_sync(self._list)

    async def get(self, template_id: str, version: int | None = None) -> JobTemplate:
        """The given version, else the default one; NotFound for an unknown id (or name) or version."""
        return await anyio.to_thread.run_sync(self._get, template_id, version)

    async def delete(self, template_id: str) -> None:
        """Remove the template with all its versions."""
        await anyio.to_thread.run_sync(self._delete, template_id)

    async def set_default_version(self, template_id: str, version: int) -> JobTemplate:
        return await anyio.to_thread.run_sync(self._set_default, template_id, version)

    # ----- implementation (synchronous)

    def _create(
        self, name: str, config: TemplateConfig, constraints: dict[str, TemplateConstraint], description: str
    ) -> JobTemplate:
        check_name(name)
        config = TemplateConfig.model_validate(config)
        check_config(config)
        checked = check_constraints(config, constraints)
        description = _check_description(description)
        template_id = new_template_id()
        now = time.time()
        try:
            with self._database().write() as conn:
                row = conn.execute("SELECT template_id FROM templates WHERE name = ?", (name,)).fetchone()
                if row is not None:
                    raise InvalidRequest(
                        f"a template named {name!r} exists ({row['template_id']}); update it to add a version, "
                        "or choose another name"
                    )
                conn.execute(
                    "INSERT INTO templates (template_id, name, default_version, created_at) VALUES (?, ?, 1, ?)",
                    (template_id, name, now),
                )
                _insert_version(conn, template_id, 1, config, checked, description, now)
                return _load(conn, template_id, None)
        except sqlite3.IntegrityError:  # pragma: no cover - the check above runs in the same transaction
            raise InvalidRequest(f"a template named {name!r} exists; update it, or choose another name") from None

    def _update(
        self,
        template_id: str,
        config: TemplateConfig,
        constraints: dict[str, TemplateConstraint],
        description: str | None,
    ) -> JobTemplate:
        config = TemplateConfig.model_validate(config)
        check_config(config)
        checked = check_constraints(config, constraints)
        if description is not None:
            description = _check_description(description)
        with self._database().write() as conn:
            tid = _resolve(conn, template_id)
            last = conn.execute(
                "SELECT version, description FROM template_versions WHERE template_id = ? "
                "ORDER BY version DESC LIMIT 1",
                (tid,),
            ).fetchone()
            version = (last["version"] if last else 0) + 1
            if description is None:
                description = last["description"] if last else ""
            _insert_version(conn, tid, version, config, checked, description, time.time())
            return _load(conn, tid, version)

    def _list(self) -> builtins.list[JobTemplate]:
        with self._database().read() as conn:
            ids = [
                r["template_id"]
                for r in conn.execute("SELECT template_id FROM templates ORDER BY created_at DESC, template_id DESC")
            ]
            return [_load(conn, tid, None) for tid in ids]

    def _get(self, template_id: str, version: int | None) -> JobTemplate:
        with self._database().read() as conn:
            return _load(conn, _resolve(conn, template_id), version)

    def _delete(self, template_id: str) -> None:
        with self._database().write() as conn:
            tid = _resolve(conn, template_id)
            conn.execute("DELETE FROM templates WHERE template_id = ?", (tid,))

    def _set_default(self, template_id: str, version: int) -> JobTemplate:
        with self._database().write() as conn:
            tid = _resolve(conn, template_id)
            versions = _versions(conn, tid)
            if version not in versions:
                raise _no_version(tid, version, versions)
            conn.execute("UPDATE templates SET default_version = ? WHERE template_id = ?", (version, tid))
            return _load(conn, tid, version)


def _insert_version(
    conn: sqlite3.Connection,
    template_id: str,
    version: int,
    config: TemplateConfig,
    constraints: dict[str, TemplateConstraint],
    description: str,
    now: float,
) -> None:
    conn.execute(
        "INSERT INTO template_versions (template_id, version, config, constraints, description, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            template_id,
            version,
            config.model_dump_json(exclude_defaults=True),
            json.dumps(constraints, sort_keys=True),
            description,
            now,
        ),
    )


def _resolve(conn: sqlite3.Connection, template_id: str) -> str:
    """The id of the template named by ``template_id`` (an id, or else a name); NotFound otherwise."""
    if not isinstance(template_id, str) or not template_id:
        raise InvalidRequest("template_id must be a non-empty string")
    row = conn.execute("SELECT template_id FROM templates WHERE template_id = ?", (template_id,)).fetchone()
    if row is None:
        row = conn.execute("SELECT template_id FROM templates WHERE name = ?", (template_id,)).fetchone()
    if row is None:
        raise NotFound(f"no template {template_id!r}; list the templates to see the ids and names that exist")
    return str(row["template_id"])


def _versions(conn: sqlite3.Connection, template_id: str) -> list[int]:
    return [
        int(r["version"])
        for r in conn.execute(
            "SELECT version FROM template_versions WHERE template_id = ? ORDER BY version", (template_id,)
        )
    ]


def _no_version(template_id: str, version: int, versions: list[int]) -> NotFound:
    return NotFound(
        f"template {template_id} has no version {version}; its versions are: {', '.join(map(str, versions))}"
    )


def _load(conn: sqlite3.Connection, template_id: str, version: int | None) -> JobTemplate:
    head = conn.execute("SELECT * FROM templates WHERE template_id = ?", (template_id,)).fetchone()
    if head is None:
        raise NotFound(f"no template {template_id!r}; list the templates to see the ids that exist")
    versions = _versions(conn, template_id)
    shown = head["default_version"] if version is None else version
    if isinstance(shown, bool) or shown not in versions:
        raise _no_version(template_id, shown, versions)
    row = conn.execute(
        "SELECT * FROM template_versions WHERE template_id = ? AND version = ?", (template_id, shown)
    ).fetchone()
    return JobTemplate(
        template_id=template_id,
        name=head["name"],
        version=shown,
        default_version=head["default_version"],
        versions=versions,
        description=row["description"],
        config=TemplateConfig.model_validate_json(row["config"]),
        constraints=json.loads(row["constraints"]),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        source=SOURCE,
    )
