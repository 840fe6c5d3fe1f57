"""PAI-DLC job templates in the sandbox (``/api/v1/jobtemplates``), in the shapes of the SDK's models.

A template is one row of ``sandbox_job_templates`` (a JSON document): ``TemplateId`` (``jt-`` + 16 lower-case
letters and digits, our format), ``TemplateName``, ``WorkspaceId``, ``Description``, ``Metadata`` (a map),
``DefaultVersion`` and its ``Versions``: each ``{"Version": n, "Content": <the CreateJob body, an object>,
"Constraints": {JSONPath: "locked" | "overridable" | "required"}, "CreatedBy", "GmtCreateTime"}``.

* CreateJobTemplate (``POST``): ``Content`` is a JSON string (an object once parsed, the fields of a CreateJob
  body); version 1 is the default.
* UpdateJobTemplate (``PUT /{TemplateId}``): ``Content`` (with or without ``Constraints``) adds version n+1
  (``VersionCreated`` true), the default only with ``SetAsDefault``; ``Constraints`` alone is refused (the
  SDK: "must be provided together with Content"); ``TemplateName`` / ``Description`` / ``Metadata`` change
  the template itself.
* GetJobTemplate (``GET /{TemplateId}``): the default version, or ``Version=<n>`` (also accepted as
  ``TemplateVersion``), or every version, newest first, with ``Version=all`` (the SDK's documented values);
  ``TotalCount`` is the number of versions returned. Content comes back as an object (the model's ``Any``).
* ListJobTemplates: filters WorkspaceId, TemplateId, TemplateName and Description (substrings, any case),
  UserId; SortBy GmtCreateTime (default) / GmtModifyTime / TemplateName, Order desc (default) / asc.
* SetJobTemplateDefaultVersion (``PUT /{TemplateId}/defaultversion``), DeleteJobTemplate (``DELETE``).

Times are ``yyyy-MM-ddTHH:mmZ`` (UTC), as the models document them. An unknown template answers 404
``JobTemplateNotFound``, an unknown version 404 ``JobTemplateVersionNotFound`` (codes ours).

CreateJob with ``TemplateId`` (and optionally ``TemplateVersion``; default: the default version) starts from
that version's Content and lays the request on top: top-level fields of the request win, except ``Envs`` and
``Settings`` (and ``Settings.Tags``), which are merged key by key. Constraints (paths ``$.Field``,
``$.Field.Key``, ``$.JobSpecs[0].EcsSpec``): ``locked`` refuses a request that sets the field to another
value than the template's; ``required`` refuses a request that does not set it; ``overridable`` is the
default. The job records ``TemplateId`` and ``TemplateVersion``; ListJobs reports ``TemplateId`` and
``TemplateName`` (``JobItem`` has both; GetJob's model has neither), and the template's ``LastUsedTime`` is
set.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from cloudjobs_mcp.server.sandbox.errors import ApiError, invalid, missing
from cloudjobs_mcp.server.sandbox.jobs import iso

if TYPE_CHECKING:
    from cloudjobs_mcp.server.sandbox.app import Ctx, Sandbox

CONSTRAINT_TYPES = ("locked", "overridable", "required")
MERGED_MAPS = ("Envs", "Settings")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING = object()


def minute_iso(ts: float | None) -> str | None:
    """``yyyy-MM-ddTHH:mmZ``."""
    value = iso(ts)
    return value[:16] + "Z" if value else None


def new_template_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "jt-" + "".join(alphabet[b % len(alphabet)] for b in uuid.uuid4().bytes[:16])


def template_not_found(template_id: str) -> ApiError:
    return ApiError(404, "JobTemplateNotFound", f"job template {template_id} not found")


def version_not_found(template_id: str, version: int) -> ApiError:
    return ApiError(404, "JobTemplateVersionNotFound", f"job template {template_id} has no version {version}")


def _content(raw: Any, name: str = "Content") -> dict[str, Any]:
    if isinstance(raw, dict):
        return dict(raw)
    if not isinstance(raw, str) or not raw.strip():
        raise missing(name)
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid(name, "must be a JSON object (a CreateJob body) passed as a string") from None
    if not isinstance(value, dict):
        raise invalid(name, "must be a JSON object (a CreateJob body) passed as a string")
    return value


def _constraints(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("Constraints", 'must be a map of JSONPath to a constraint type, e.g. {"$.EcsSpec": "locked"}')
    out: dict[str, str] = {}
    for path, kind in raw.items():
        if not isinstance(path, str) or not path.strip():
            raise invalid("Constraints", f"{path!r} is not a JSONPath such as $.JobSpecs[0].EcsSpec")
        if kind not in CONSTRAINT_TYPES:
            raise invalid("Constraints", f"{path}: {kind!r} is not one of {', '.join(CONSTRAINT_TYPES)}")
        _parts(path)
        out[path] = str(kind)
    return out


def _metadata(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("Metadata", "must be a map")
    return dict(raw)


def _parts(path: str) -> list[str | int]:
    text = path.strip()
    text = text[2:] if text.startswith("$.") else text.lstrip("$")
    parts: list[str | int] = []
    pos = 0
    for match in _PATH_PART.finditer(text):
        gap = text[pos : match.start()].strip(".")
        if gap:
            raise invalid("Constraints", f"{path!r} is not a JSONPath such as $.JobSpecs[0].EcsSpec")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not parts:
        raise invalid("Constraints", f"{path!r} is not a JSONPath such as $.JobSpecs[0].EcsSpec")
    return parts


def lookup(doc: Any, path: str) -> Any:
    """The value at ``path`` in ``doc`` (``_MISSING`` when absent)."""
    value = doc
    for part in _parts(path):
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return _MISSING
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
    return value


def merge(content: dict[str, Any], request: dict[str, Any], constraints: dict[str, str]) -> dict[str, Any]:
    """The CreateJob body of a job created from a template version (see the module docstring)."""
    for path, kind in constraints.items():
        given = lookup(request, path)
        if kind == "required" and (given is _MISSING or given in (None, "")):
            raise invalid(path.removeprefix("$."), "the job template requires it: set it in the CreateJob request")
        if kind == "locked" and given is not _MISSING and given != lookup(content, path):
            raise invalid(path.removeprefix("$."), "the job template locks this field; leave it out of the request")
    out = json.loads(json.dumps(content))
    for key, value in request.items():
        if key in MERGED_MAPS and isinstance(value, dict) and isinstance(out.get(key), dict):
            merged = {**out[key], **value}
            if key == "Settings" and isinstance(out[key].get("Tags"), dict) and isinstance(value.get("Tags"), dict):
                merged["Tags"] = {**out[key]["Tags"], **value["Tags"]}
            out[key] = merged
        else:
            out[key] = value
    return out


def _version_number(raw: Any, name: str) -> int:
    if isinstance(raw, bool):
        raise invalid(name, "must be a positive integer")
    try:
        number = int(str(raw))
    except ValueError:
        raise invalid(name, f"{raw!r} is not a version number") from None
    if number < 1:
        raise invalid(name, "must be a positive integer")
    return number


def resolve(data: dict[str, Any] | None, template_id: str, version: Any) -> dict[str, Any]:
    """The version of ``data`` a CreateJob names (its default when ``version`` is None)."""
    if data is None:
        raise template_not_found(template_id)
    number = _version_number(version, "TemplateVersion") if version not in (None, "") else data["DefaultVersion"]
    found = next((v for v in data["Versions"] if v["Version"] == number), None)
    if found is None:
        raise version_not_found(template_id, number)
    return dict(found)


def _version_item(version: dict[str, Any]) -> dict[str, Any]:
    return {
        "Version": version["Version"],
        "Content": version["Content"],
        "Constraints": version.get("Constraints") or {},
        "CreatedBy": version.get("CreatedBy"),
        "GmtCreateTime": minute_iso(version.get("CreatedAt")),
    }


def _summary(data: dict[str, Any]) -> dict[str, Any]:
    out = {
        "TemplateId": data["TemplateId"],
        "TemplateName": data["TemplateName"],
        "WorkspaceId": data["WorkspaceId"],
        "Description": data.get("Description") or "",
        "Metadata": data.get("Metadata") or {},
        "DefaultVersion": data["DefaultVersion"],
        "UserId": data["UserId"],
        "TenantId": data["UserId"],
        "ModifiedBy": data.get("ModifiedBy") or data["UserId"],
        "GmtCreateTime": minute_iso(data["CreatedAt"]),
        "GmtModifyTime": minute_iso(data["ModifiedAt"]),
    }
    if data.get("LastUsedAt"):
        out["LastUsedTime"] = minute_iso(data["LastUsedAt"])
    return out


@dataclass
class TemplateApi:
    """The DLC job template handlers of one sandbox."""

    sandbox: Sandbox

    def _body(self, ctx: Ctx) -> dict[str, Any]:
        body = ctx.json()
        if not isinstance(body, dict):
            raise invalid("body", "the request body must be a JSON object")
        return body

    def _name(self, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise missing("TemplateName")
        if len(raw) > 128:
            raise invalid("TemplateName", "at most 128 characters")
        return raw

    async def create(self, ctx: Ctx) -> dict[str, Any]:
        sb = self.sandbox
        body = self._body(ctx)
        name = self._name(body.get("TemplateName"))
        workspace = body.get("WorkspaceId")
        if not workspace:
            raise missing("WorkspaceId")
        known = {w.workspace_id for w in await anyio.to_thread.run_sync(sb.store.workspaces)}
        if str(workspace) not in known:
            raise ApiError(
                403,
                "OperationForbidden",
                f"The operation is forbidden: workspace {workspace} does not exist or you have no access to it.",
            )
        content = _content(body.get("Content"))
        constraints = _constraints(body.get("Constraints"))
        description = body.get("Description") or ""
        if not isinstance(description, str):
            raise invalid("Description", "must be a string")
        user = sb.settings.account_id
        now = ctx.now
        data: dict[str, Any] = {
            "TemplateId": new_template_id(),
            "TemplateName": name,
            "WorkspaceId": str(workspace),
            "Description": description,
            "Metadata": _metadata(body.get("Metadata")),
            "DefaultVersion": 1,
            "UserId": user,
            "ModifiedBy": user,
            "CreatedAt": now,
            "ModifiedAt": now,
            "LastUsedAt": None,
            "Versions": [
                {"Version": 1, "Content": content, "Constraints": constraints, "CreatedBy": user, "CreatedAt": now}
            ],
        }
        await anyio.to_thread.run_sync(sb.store.insert_template, data["TemplateId"], data["WorkspaceId"], now, data)
        summary = {k: v for k, v in _summary(data).items() if k != "ModifiedBy"}  # not in the create model
        return {**summary, "Version": 1}

    async def update(self, ctx: Ctx) -> dict[str, Any]:
        sb = self.sandbox
        template_id = ctx.params["TemplateId"]
        body = self._body(ctx)
        has_content = body.get("Content") not in (None, "")
        if body.get("Constraints") is not None and not has_content:
            raise invalid("Constraints", "must be provided together with Content (a new version)")
        content = _content(body["Content"]) if has_content else None
        constraints = _constraints(body.get("Constraints"))
        name = self._name(body["TemplateName"]) if body.get("TemplateName") is not None else None
        metadata = _metadata(body["Metadata"]) if body.get("Metadata") is not None else None
        description = body.get("Description")
        if description is not None and not isinstance(description, str):
            raise invalid("Description", "must be a string")
        set_default = body.get("SetAsDefault")
        if set_default is not None and not isinstance(set_default, bool):
            raise invalid("SetAsDefault", "must be a boolean")
        user = sb.settings.account_id

        def edit(data: dict[str, Any] | None) -> dict[str, Any]:
            if data is None:
                raise template_not_found(template_id)
            version = max(v["Version"] for v in data["Versions"])
            if content is not None:
                version += 1
                data["Versions"].append(
                    {
                        "Version": version,
                        "Content": content,
                        "Constraints": constraints,
                        "CreatedBy": user,
                        "CreatedAt": ctx.now,
                    }
                )
                if set_default:
                    data["DefaultVersion"] = version
            if name is not None:
                data["TemplateName"] = name
            if description is not None:
                data["Description"] = description
            if metadata is not None:
                data["Metadata"] = metadata
            data["ModifiedAt"] = ctx.now
            data["ModifiedBy"] = user
            return {
                "DefaultVersion": data["DefaultVersion"],
                "GmtModifyTime": minute_iso(ctx.now),
                "Version": version,
                "VersionCreated": content is not None,
            }

        result: dict[str, Any] = await anyio.to_thread.run_sync(sb.store.edit_template, template_id, edit)
        return result

    async def get(self, ctx: Ctx) -> dict[str, Any]:
        template_id = ctx.params["TemplateId"]
        data = await anyio.to_thread.run_sync(self.sandbox.store.template, template_id)
        if data is None:
            raise template_not_found(template_id)
        raw = (ctx.query.get("Version") or ctx.query.get("TemplateVersion") or "").strip()
        versions = sorted(data["Versions"], key=lambda v: v["Version"], reverse=True)
        if raw.lower() != "all":
            number = _version_number(raw, "Version") if raw else int(data["DefaultVersion"])
            versions = [v for v in versions if v["Version"] == number]
            if not versions:
                raise version_not_found(template_id, number)
        return {**_summary(data), "TotalCount": len(versions), "Versions": [_version_item(v) for v in versions]}

    async def list(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        page = ctx.number("PageNumber", 1)
        size = ctx.number("PageSize", 20, maximum=100)
        sort_by = ctx.choice("SortBy", ("GmtCreateTime", "GmtModifyTime", "TemplateName"), "GmtCreateTime")
        order = ctx.choice("Order", ("desc", "asc"), "desc")
        items = await anyio.to_thread.run_sync(self.sandbox.store.templates)

        def like(field: str, value: str) -> bool:
            wanted = q.get(field)
            return not wanted or wanted.lower() in value.lower()

        matching = [
            d
            for d in items
            if (not q.get("WorkspaceId") or d["WorkspaceId"] == q["WorkspaceId"])
            and (not q.get("TemplateId") or d["TemplateId"] == q["TemplateId"])
            and (not q.get("UserId") or d["UserId"] == q["UserId"])
            and like("TemplateName", d["TemplateName"])
            and like("Description", d.get("Description") or "")
        ]
        key = {"GmtCreateTime": "CreatedAt", "GmtModifyTime": "ModifiedAt", "TemplateName": "TemplateName"}[
            sort_by or "GmtCreateTime"
        ]
        matching.sort(key=lambda d: (d[key], d["TemplateId"]), reverse=order == "desc")
        chosen = matching[(page - 1) * size : page * size]
        return {
            "TotalCount": len(matching),
            "PageNumber": page,
            "PageSize": size,
            "JobTemplates": [_summary(d) for d in chosen],
        }

    async def set_default(self, ctx: Ctx) -> dict[str, Any]:
        template_id = ctx.params["TemplateId"]
        body = self._body(ctx)
        if body.get("Version") in (None, ""):
            raise missing("Version")
        number = _version_number(body["Version"], "Version")

        def edit(data: dict[str, Any] | None) -> dict[str, Any]:
            if data is None:
                raise template_not_found(template_id)
            if not any(v["Version"] == number for v in data["Versions"]):
                raise version_not_found(template_id, number)
            data["DefaultVersion"] = number
            data["ModifiedAt"] = ctx.now
            return {"DefaultVersion": number, "GmtModifyTime": minute_iso(ctx.now)}

        result: dict[str, Any] = await anyio.to_thread.run_sync(self.sandbox.store.edit_template, template_id, edit)
        return result

    async def delete(self, ctx: Ctx) -> dict[str, Any]:
        template_id = ctx.params["TemplateId"]
        if not await anyio.to_thread.run_sync(self.sandbox.store.delete_template, template_id):
            raise template_not_found(template_id)
        return {"TemplateId": template_id}

    # -- CreateJob
    def apply(self, body: Any) -> Any:
        """A CreateJob body with ``TemplateId``: the merged body, with TemplateId / TemplateVersion / TemplateName
        recorded (synchronous). Other bodies come back unchanged."""
        if not isinstance(body, dict) or not body.get("TemplateId"):
            return body
        template_id = str(body["TemplateId"])
        request = {k: v for k, v in body.items() if k not in ("TemplateId", "TemplateVersion")}
        data = self.sandbox.store.template(template_id)
        version = resolve(data, template_id, body.get("TemplateVersion"))
        assert data is not None
        merged = merge(version["Content"], request, version.get("Constraints") or {})
        merged.update(TemplateId=template_id, TemplateVersion=version["Version"], TemplateName=data["TemplateName"])
        return merged

    def used(self, template_id: str, now: float) -> None:
        """Record a job created from the template (its LastUsedTime; synchronous)."""

        def edit(data: dict[str, Any] | None) -> None:
            if data is not None:
                data["LastUsedAt"] = now

        self.sandbox.store.edit_template(template_id, edit)
