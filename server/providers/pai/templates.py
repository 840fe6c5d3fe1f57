"""PAI-DLC job templates (pai-dlc 2020-12-03 ``/api/v1/jobtemplates``) as a ``TemplateBackend``.

A DLC template version keeps ``Content`` — a JSON *string* of a CreateJob body — and ``Constraints``,
paths into that body (seed 001: ``{"JobSpecs[0].Image": "locked", "UserCommand": "locked"}``, no
leading ``$.``) mapped to ``locked`` | ``overridable`` | ``required``. :class:`DlcTemplates` maps the
server's :class:`~server.models.TemplateConfig` and its constraints (``$.ecs_spec``, ``$.envs.LR``) onto
those and back:

==============================  ==========================================================
TemplateConfig                  Content (CreateJob body)        / Constraints key
==============================  ==========================================================
display_name                    ``DisplayName``
user_command                    ``UserCommand``
job_type                        ``JobType``
ecs_spec / image / worker_count ``JobSpecs[].EcsSpec`` / ``.Image`` / ``PodCount`` summed
                                (constraints: ``JobSpecs[0].EcsSpec`` ...)
envs.K                          ``Envs.K``
hyperparameters.K               ``Envs.HP_<K>`` + ``Envs.CLOUDJOBS_HYPERPARAMETERS`` (JSON)
thirdparty_libs                 ``ThirdpartyLibs``
resource_id                     ``ResourceId``
max_runtime_minutes             ``JobMaxRunningTimeMinutes`` (whole minutes, rounded up)
priority                        ``Priority``
==============================  ==========================================================

Content also carries ``WorkspaceId`` (required by the API next to it, as in the seed). Constraint keys
of fields this server does not model (set in the console) are left out of ``JobTemplate.constraints``.
"""

from __future__ import annotations

import builtins
import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, get_args

import anyio

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.hyperparameters import HP_PREFIX, env_name
from cloudjobs_mcp.server.models import JobTemplate, TemplateConfig, TemplateConstraint
from cloudjobs_mcp.server.providers.pai import studio
from cloudjobs_mcp.server.providers.pai.api import PaiApi

logger = logging.getLogger("cloudjobs.pai.templates")

SOURCE = "PAI-DLC job templates"
HYPERPARAMETERS_ENV = "CLOUDJOBS_HYPERPARAMETERS"
RESERVED_ENV_PREFIX = "CLOUDJOBS_"
CONSTRAINT_VALUES: tuple[str, ...] = get_args(TemplateConstraint)
TEMPLATE_PAGE_SIZE = 50
MAX_TEMPLATES = 200
MAX_CONCURRENCY = 8
LEAD_ROLES = {"XGBoostJob": "Master", "RayJob": "Head"}

# TemplateConfig field → the Constraints key of the Content field it becomes.
SCALAR_PATHS: dict[str, str] = {
    "display_name": "DisplayName",
    "user_command": "UserCommand",
    "job_type": "JobType",
    "ecs_spec": "JobSpecs[0].EcsSpec",
    "image": "JobSpecs[0].Image",
    "worker_count": "JobSpecs[0].PodCount",
    "envs": "Envs",
    "thirdparty_libs": "ThirdpartyLibs",
    "resource_id": "ResourceId",
    "max_runtime_minutes": "JobMaxRunningTimeMinutes",
    "priority": "Priority",
    "hyperparameters": f"Envs.{HYPERPARAMETERS_ENV}",
}
_REVERSE_PATHS = {v: k for k, v in SCALAR_PATHS.items()}


hp_env_name = env_name  # the one naming rule, shared with the local provider and the sandbox


def hyperparameter_envs(hyperparameters: Mapping[str, str]) -> dict[str, str]:
    """``HP_<NAME>`` per hyperparameter plus ``CLOUDJOBS_HYPERPARAMETERS`` (JSON), for ``Envs``."""
    if not hyperparameters:
        return {}
    envs: dict[str, str] = {}
    for name, value in hyperparameters.items():
        env = hp_env_name(name)
        if env in envs:
            raise InvalidRequest(
                f"hyperparameters {name!r} and another name both become the environment variable {env}; "
                "rename one of them"
            )
        envs[env] = str(value)
    envs[HYPERPARAMETERS_ENV] = json.dumps(
        {k: str(v) for k, v in hyperparameters.items()}, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )
    return envs


def hyperparameters_from_envs(envs: Mapping[str, Any]) -> dict[str, str]:
    """``CLOUDJOBS_HYPERPARAMETERS`` parsed back; without it, the ``HP_*`` variables (names as they are)."""
    raw = envs.get(HYPERPARAMETERS_ENV)
    if isinstance(raw, str) and raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    return {k[len(HP_PREFIX) :]: str(v) for k, v in envs.items() if k.startswith(HP_PREFIX) and len(k) > len(HP_PREFIX)}


def user_envs(envs: Mapping[str, Any], hyperparameters: Mapping[str, str]) -> dict[str, str]:
    """The envs without the ones this server adds (``HP_<name>`` of each hyperparameter, ``CLOUDJOBS_*``)."""
    ours = {hp_env_name(n) for n in hyperparameters}
    return {str(k): str(v) for k, v in envs.items() if k not in ours and not str(k).startswith(RESERVED_ENV_PREFIX)}


def _strip_root(key: str) -> str:
    """PAI keys with or without a JSONPath root: ``$.UserCommand``, ``UserCommand``."""
    return key[2:] if key.startswith("$.") else key.removeprefix("$")


# ------------------------------------------------------------------------------ content


def content_from(config: TemplateConfig, workspace_id: str | None) -> dict[str, Any]:
    """TemplateConfig → a CreateJob body (what ``Content`` holds, before JSON-encoding)."""
    body: dict[str, Any] = {}
    if workspace_id:
        body["WorkspaceId"] = workspace_id
    if config.display_name is not None:
        body["DisplayName"] = config.display_name
    if config.job_type is not None:
        body["JobType"] = config.job_type
    if config.user_command is not None:
        body["UserCommand"] = config.user_command
    role: dict[str, Any] = {}
    if config.image is not None:
        role["Image"] = config.image
    if config.ecs_spec is not None:
        role["EcsSpec"] = config.ecs_spec
    if config.worker_count is not None or role:
        lead = LEAD_ROLES.get(config.job_type or "")
        count = config.worker_count
        if lead and count:
            specs = [{"Type": lead, "PodCount": 1, **role}]
            if count > 1:
                specs.append({"Type": "Worker", "PodCount": count - 1, **role})
        else:
            specs = [{"Type": "Worker", **({"PodCount": count} if count is not None else {}), **role}]
        body["JobSpecs"] = specs
    envs = {**config.envs, **hyperparameter_envs(config.hyperparameters)}
    if envs:
        body["Envs"] = envs
    if config.thirdparty_libs:
        body["ThirdpartyLibs"] = list(config.thirdparty_libs)
    if config.resource_id is not None:
        body["ResourceId"] = config.resource_id
    if config.max_runtime_minutes is not None:
        body["JobMaxRunningTimeMinutes"] = math.ceil(config.max_runtime_minutes)
    if config.priority is not None:
        body["Priority"] = config.priority
    return body


def encode_content(config: TemplateConfig, workspace_id: str | None) -> str:
    return json.dumps(content_from(config, workspace_id), ensure_ascii=False, separators=(",", ":"))


def parse_content(raw: Any) -> dict[str, Any]:
    """``Content`` as the API returns it: a JSON string (as given), or already an object."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            data = json.loads(raw)
        except ValueError:
            logger.warning("job template Content is not JSON; read as empty")
            return {}
        return data if isinstance(data, dict) else {}
    return {}


def config_from(content: Mapping[str, Any]) -> TemplateConfig:
    """A CreateJob body (template Content) → TemplateConfig."""
    specs = [s for s in content.get("JobSpecs") or [] if isinstance(s, dict)]
    counts = [studio.as_int(s.get("PodCount")) for s in specs]
    main = next((s for s in specs if s.get("Type") == "Worker"), specs[0] if specs else {})
    raw_envs = studio.as_dict(content.get("Envs"))
    hyperparameters = hyperparameters_from_envs(raw_envs)
    libs = content.get("ThirdpartyLibs")
    minutes = studio.as_float(content.get("JobMaxRunningTimeMinutes"))
    return TemplateConfig(
        display_name=studio.as_str(content.get("DisplayName")),
        user_command=studio.as_str(content.get("UserCommand")),
        job_type=studio.as_str(content.get("JobType")),
        ecs_spec=studio.as_str(main.get("EcsSpec")),
        worker_count=sum(c for c in counts if c) if any(counts) else None,
        image=studio.as_str(main.get("Image")),
        envs=user_envs(raw_envs, hyperparameters),
        thirdparty_libs=[str(x) for x in libs] if isinstance(libs, list) else [],
        resource_id=studio.as_str(content.get("ResourceId")),
        max_runtime_minutes=minutes if minutes else None,
        priority=studio.as_int(content.get("Priority")),
        hyperparameters=hyperparameters,
    )


# -------------------------------------------------------------------------- constraints


def constraints_to_pai(constraints: Mapping[str, str]) -> dict[str, str]:
    """``{"$.ecs_spec": "locked", "$.envs.LR": "required"}`` → ``{"JobSpecs[0].EcsSpec": "locked",
    "Envs.LR": "required"}``; an unknown path or value → InvalidRequest."""
    out: dict[str, str] = {}
    bad: list[str] = []
    for path, value in constraints.items():
        if value not in CONSTRAINT_VALUES:
            bad.append(f"{path}={value}")
            continue
        field, _, key = path.removeprefix("$.").partition(".")
        if not path.startswith("$.") or field not in SCALAR_PATHS:
            bad.append(path)
        elif not key:
            out[SCALAR_PATHS[field]] = value
        elif field == "envs":
            out[f"Envs.{key}"] = value
        elif field == "hyperparameters":
            out[f"Envs.{hp_env_name(key)}"] = value
        else:
            bad.append(path)
    if bad:
        raise InvalidRequest(
            f"Invalid template constraints {', '.join(bad)}: keys are $.<config field> or $.envs.KEY / "
            f"$.hyperparameters.KEY, values {', '.join(CONSTRAINT_VALUES)}"
        )
    return out


def constraints_from_pai(raw: Any, config: TemplateConfig) -> dict[str, TemplateConstraint]:
    """PAI Constraints → the server's JSONPaths; keys for fields this server does not model are left out."""
    if not isinstance(raw, dict):
        return {}
    hp_names = {hp_env_name(n): n for n in config.hyperparameters}
    out: dict[str, TemplateConstraint] = {}
    for key, value in raw.items():
        if value not in CONSTRAINT_VALUES:
            continue
        pai = _strip_root(str(key))
        if pai in _REVERSE_PATHS:
            out[f"$.{_REVERSE_PATHS[pai]}"] = value
        elif pai.startswith("Envs."):
            env = pai[len("Envs.") :]
            if env in hp_names:
                out[f"$.hyperparameters.{hp_names[env]}"] = value
            elif env.startswith(HP_PREFIX) and len(env) > len(HP_PREFIX):
                out[f"$.hyperparameters.{env[len(HP_PREFIX) :]}"] = value
            elif not env.startswith(RESERVED_ENV_PREFIX):
                out[f"$.envs.{env}"] = value
        else:
            logger.debug("job template constraint %s is not a field this server models; left out", key)
    return out


# ------------------------------------------------------------------------------ backend


class DlcTemplates:
    """``TemplateBackend`` on PAI-DLC's CreateJobTemplate / UpdateJobTemplate / GetJobTemplate /
    ListJobTemplates / DeleteJobTemplate / SetJobTemplateDefaultVersion, in the provider's workspace."""

    source = SOURCE

    def __init__(self, api: PaiApi, workspace_id: Callable[..., Awaitable[str | None]]) -> None:
        """``workspace_id(create=...)``: the provider's workspace (created for the first template)."""
        self.api = api
        self._workspace_id = workspace_id

    async def _workspace(self, *, create: bool = False) -> str:
        workspace = await self._workspace_id(create=create)
        if not workspace:
            raise NotFound("PAI has no workspace yet, so no job templates (create_job_template makes one)")
        return workspace

    async def _find_by_name(self, name: str) -> dict[str, Any] | None:
        """The ListJobTemplates item named exactly ``name`` (TemplateName filters fuzzily)."""
        workspace = await self._workspace()
        data = await self.api.list_job_templates(
            {"WorkspaceId": workspace, "TemplateName": name, "PageNumber": 1, "PageSize": TEMPLATE_PAGE_SIZE}
        )
        for item in data.get("JobTemplates") or []:
            if isinstance(item, dict) and item.get("TemplateName") == name and item.get("TemplateId"):
                return item
        return None

    async def create(
        self, name: str, config: TemplateConfig, constraints: dict[str, TemplateConstraint], description: str
    ) -> JobTemplate:
        if not name or not name.strip():
            raise InvalidRequest("a template needs a name")
        pai_constraints = constraints_to_pai(constraints)
        workspace = await self._workspace(create=True)
        if await self._find_by_name(name) is not None:
            raise InvalidRequest(f"a PAI-DLC job template named {name!r} exists: update it instead")
        body: dict[str, Any] = {
            "TemplateName": name,
            "WorkspaceId": workspace,
            "Content": encode_content(config, workspace),
            "Constraints": pai_constraints,
            "Description": description,
        }
        data = await self.api.create_job_template(body)
        template_id = studio.as_str(data.get("TemplateId"))
        if not template_id:
            raise NotFound("PAI-DLC CreateJobTemplate returned no TemplateId")
        version = studio.as_int(data.get("Version")) or 1
        return JobTemplate(
            template_id=template_id,
            name=studio.as_str(data.get("TemplateName")) or name,
            version=version,
            default_version=studio.as_int(data.get("DefaultVersion")) or version,
            versions=[version],
            description=description,
            config=config_from(parse_content(body["Content"])),
            constraints=constraints_from_pai(pai_constraints, config),
            created_at=studio.parse_time(data.get("GmtCreateTime")),
            source=SOURCE,
        )

    async def update(
        self,
        template_id: str,
        config: TemplateConfig,
        constraints: dict[str, TemplateConstraint],
        description: str | None = None,
    ) -> JobTemplate:
        pai_constraints = constraints_to_pai(constraints)
        template_id = (await self.get(template_id)).template_id  # a name works too; NotFound early
        workspace = await self._workspace()
        body: dict[str, Any] = {
            "Content": encode_content(config, workspace),
            "Constraints": pai_constraints,
            "SetAsDefault": False,
        }
        if description is not None:
            body["Description"] = description
        data = await self.api.update_job_template(template_id, body)
        return await self.get(template_id, studio.as_int(data.get("Version")))

    async def list(self) -> builtins.list[JobTemplate]:
        """Every template of the workspace (at most MAX_TEMPLATES), each at its default version."""
        try:
            workspace = await self._workspace()
        except NotFound:
            return []
        ids: builtins.list[str] = []
        for number in range(1, MAX_TEMPLATES // TEMPLATE_PAGE_SIZE + 1):
            data = await self.api.list_job_templates(
                {
                    "WorkspaceId": workspace,
                    "PageNumber": number,
                    "PageSize": TEMPLATE_PAGE_SIZE,
                    "SortBy": "GmtCreateTime",
                    "Order": "desc",
                }
            )
            items = [i for i in data.get("JobTemplates") or [] if isinstance(i, dict) and i.get("TemplateId")]
            ids.extend(str(i["TemplateId"]) for i in items)
            total = studio.as_int(data.get("TotalCount"))
            if len(items) < TEMPLATE_PAGE_SIZE or (total is not None and len(ids) >= total):
                break
        results: dict[str, JobTemplate] = {}
        limiter = anyio.CapacityLimiter(MAX_CONCURRENCY)

        async def one(tid: str) -> None:
            async with limiter:
                try:
                    results[tid] = await self.get(tid)
                except NotFound:  # deleted meanwhile
                    return

        async with anyio.create_task_group() as tg:
            for tid in dict.fromkeys(ids):
                tg.start_soon(functools.partial(one, tid))
        return [results[t] for t in dict.fromkeys(ids) if t in results]

    async def get(self, template_id: str, version: int | None = None) -> JobTemplate:
        """GetJobTemplate ``Version=all`` (every version's number is needed), then the one asked for."""
        if not template_id or any(c.isspace() or c in "/?#" for c in template_id):
            raise InvalidRequest(f"{template_id!r} is not a PAI-DLC job template id")
        try:
            data = await self.api.get_job_template(template_id, "all")
        except NotFound:
            found = await self._find_by_name(template_id)
            if found is None:
                raise NotFound(f"PAI-DLC has no job template {template_id!r}") from None
            data = await self.api.get_job_template(str(found["TemplateId"]), "all")
        return template_from(data, version)

    async def delete(self, template_id: str) -> None:
        template = await self.get(template_id)
        await self.api.delete_job_template(template.template_id)

    async def set_default_version(self, template_id: str, version: int) -> JobTemplate:
        template = await self.get(template_id)
        if version not in template.versions:
            raise NotFound(
                f"job template {template.template_id} has no version {version} "
                f"(versions: {', '.join(map(str, template.versions))})"
            )
        await self.api.set_job_template_default_version(template.template_id, version)
        return await self.get(template.template_id, version)


def template_from(data: Mapping[str, Any], version: int | None) -> JobTemplate:
    """A GetJobTemplate (``Version=all``) body → the JobTemplate at ``version`` (default: the default)."""
    template_id = str(data.get("TemplateId") or "")
    versions = {
        v: item
        for item in data.get("Versions") or []
        if isinstance(item, dict) and (v := studio.as_int(item.get("Version"))) is not None
    }
    default = studio.as_int(data.get("DefaultVersion")) or (max(versions) if versions else 1)
    wanted = version if version is not None else default
    item = versions.get(wanted)
    if item is None:
        known = ", ".join(map(str, sorted(versions))) or "none"
        raise NotFound(f"job template {template_id} has no version {wanted} (versions: {known})")
    config = config_from(parse_content(item.get("Content")))
    return JobTemplate(
        template_id=template_id,
        name=str(data.get("TemplateName") or template_id),
        version=wanted,
        default_version=default,
        versions=sorted(versions),
        description=str(data.get("Description") or ""),
        config=config,
        constraints=constraints_from_pai(item.get("Constraints"), config),
        created_at=studio.parse_time(data.get("GmtCreateTime")),
        source=SOURCE,
    )
