"""Resource tags of PAI-DLC jobs: TagResources, UntagResources and ListTagResources on ``/api/v1/tags``.

Served under both versions, DLC 2020-12-03 and PaiStudio 2022-01-12 (the same routes, the same tags): the
DLC SDK has TagResources / UntagResources, the PaiStudio SDK those and ListTagResources; the DLC
ListTagResources answers the PaiStudio shape. ``ResourceType`` is ``Job`` and the resource ids are ``dlc…``
job ids (a training job's tags are its DLC job's; PaiStudio training jobs have Labels, see ``studio.py``).

A job's tags are its ``Settings.Tags`` — where CreateJob puts them — so GetJob and ListJobs show them in
``Settings.Tags`` and ListJobs' ``Tags`` filter matches them, whichever way they were set.

* TagResources (``POST``, JSON ``{RegionId, ResourceId: [...], ResourceType, Tag: [{Key, Value}]}``): adds or
  overwrites; at most 50 resources and 20 tags a call, 20 tags a job; keys of 1-128 characters not starting
  with ``aliyun`` or ``acs:`` nor containing ``http://`` / ``https://``, values of at most 128.
* UntagResources (``DELETE``, query ``ResourceId`` and ``TagKey`` as JSON arrays — the SDK's ``json`` style —
  or comma lists, ``All=true``): removes those keys, or every tag with All (TagKey wins when both are given).
* ListTagResources (``GET``, query ``ResourceId`` (JSON array), ``Tag`` (JSON array of ``{Key, Value}``; a
  Key alone matches any value), ``NextToken``): ``TagResources`` [{ResourceId, ResourceType, TagKey,
  TagValue}] of the jobs that match, 50 a page, ``NextToken`` "" on the last.

Every call checks ``RegionId`` (when given) against the sandbox's region (400 ``InvalidRegionId``) and
refuses unknown jobs with 404 ``JobNotFound`` before changing anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from cloudjobs_mcp.server.sandbox.errors import ApiError, invalid, missing
from cloudjobs_mcp.server.sandbox.jobs import JobRecord

if TYPE_CHECKING:
    from cloudjobs_mcp.server.sandbox.app import Ctx, Sandbox

RESOURCE_TYPE = "Job"
MAX_RESOURCES = 50
MAX_TAGS = 20
MAX_LENGTH = 128
PAGE = 50
RESERVED_PREFIXES = ("aliyun", "acs:")


def _list_param(raw: str | None, name: str) -> list[str]:
    """A query list: a JSON array (the SDK's ``json`` style) or a comma list."""
    if not raw:
        return []
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise invalid(name, 'must be a JSON array, e.g. ["dlc-1"]') from None
        if not isinstance(value, list):
            raise invalid(name, 'must be a JSON array, e.g. ["dlc-1"]')
        return [str(v) for v in value if str(v)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _check_key(key: Any, name: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise missing(name)
    if len(key) > MAX_LENGTH:
        raise invalid(name, f"at most {MAX_LENGTH} characters")
    if key.lower().startswith(RESERVED_PREFIXES) or "http://" in key or "https://" in key:
        raise invalid(name, f"{key!r}: tag keys may not start with 'aliyun' or 'acs:' nor contain http(s)://")
    return key


@dataclass
class TagApi:
    """The tag handlers of one sandbox."""

    sandbox: Sandbox

    def _region(self, raw: Any) -> None:
        if raw not in (None, "") and raw != self.sandbox.settings.region:
            raise ApiError(
                400,
                "InvalidRegionId",
                f"The specified RegionId {raw} does not exist (the PAI sandbox serves {self.sandbox.settings.region}).",
            )

    @staticmethod
    def _type(raw: Any) -> None:
        if raw in (None, ""):
            raise missing("ResourceType")
        if raw != RESOURCE_TYPE:
            raise invalid("ResourceType", f"{raw!r} is not a resource type; valid values: {RESOURCE_TYPE}")

    def _records(self, ids: list[str]) -> list[JobRecord]:
        records = []
        for job_id in ids:
            record = self.sandbox.store.job(job_id)
            if record is None:
                raise ApiError(404, "JobNotFound", f"job {job_id} not found")
            records.append(record)
        return records

    def _edit(self, ids: list[str], change: Any) -> None:
        """Apply ``change(tags)`` to each job's Settings.Tags (synchronous; all jobs checked first)."""
        self._records(ids)
        for job_id in ids:

            def edit(body: dict[str, Any]) -> None:
                settings = body.get("Settings")
                if not isinstance(settings, dict):
                    settings = body["Settings"] = {}
                tags = dict(settings.get("Tags") or {})
                change(tags)
                settings["Tags"] = tags

            self.sandbox.store.edit_job_body(job_id, edit)

    async def tag(self, ctx: Ctx) -> dict[str, Any]:
        body = ctx.json()
        if not isinstance(body, dict):
            raise invalid("body", "the request body must be a JSON object")
        self._region(body.get("RegionId"))
        self._type(body.get("ResourceType"))
        ids = body.get("ResourceId")
        if not ids:
            raise missing("ResourceId")
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise invalid("ResourceId", "must be a list of job ids")
        if len(ids) > MAX_RESOURCES:
            raise invalid("ResourceId", f"at most {MAX_RESOURCES} resources a call")
        raw_tags = body.get("Tag")
        if not raw_tags:
            raise missing("Tag")
        if not isinstance(raw_tags, list) or not all(isinstance(t, dict) for t in raw_tags):
            raise invalid("Tag", 'must be a list of {"Key", "Value"} objects')
        if len(raw_tags) > MAX_TAGS:
            raise invalid("Tag", f"at most {MAX_TAGS} tags a call")
        new: dict[str, str] = {}
        for i, tag in enumerate(raw_tags, start=1):
            key = _check_key(tag.get("Key"), f"Tag.{i}.Key")
            value = tag.get("Value")
            value = "" if value is None else value
            if not isinstance(value, str) or len(value) > MAX_LENGTH:
                raise invalid(f"Tag.{i}.Value", f"a string of at most {MAX_LENGTH} characters")
            new[key] = value

        def run() -> None:
            for record in self._records(list(ids)):
                if len({**record.tags, **new}) > MAX_TAGS:
                    raise ApiError(
                        400,
                        "QuotaExceed.TagsPerResource",
                        f"job {record.job_id} would have more than {MAX_TAGS} tags; remove some first (UntagResources)",
                    )
            self._edit(list(ids), lambda tags: tags.update(new))

        await anyio.to_thread.run_sync(run)
        return {}

    async def untag(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        self._region(q.get("RegionId"))
        self._type(q.get("ResourceType"))
        ids = _list_param(q.get("ResourceId"), "ResourceId")
        if not ids:
            raise missing("ResourceId")
        if len(ids) > MAX_RESOURCES:
            raise invalid("ResourceId", f"at most {MAX_RESOURCES} resources a call")
        keys = _list_param(q.get("TagKey"), "TagKey")
        remove_all = ctx.flag("All", False)
        if not keys and not remove_all:
            raise missing("TagKey")

        def change(tags: dict[str, str]) -> None:
            if keys:
                for key in keys:
                    tags.pop(key, None)
            else:
                tags.clear()

        await anyio.to_thread.run_sync(self._edit, ids, change)
        return {}

    async def list(self, ctx: Ctx) -> dict[str, Any]:
        q = ctx.query
        self._region(q.get("RegionId"))
        if q.get("ResourceType"):
            self._type(q["ResourceType"])
        ids = _list_param(q.get("ResourceId"), "ResourceId")
        wanted: list[tuple[str, str | None]] = []
        if q.get("Tag"):
            try:
                raw = json.loads(q["Tag"])
            except ValueError:
                raise invalid("Tag", 'must be a JSON array of {"Key", "Value"}') from None
            if not isinstance(raw, list) or not all(isinstance(t, dict) and t.get("Key") for t in raw):
                raise invalid("Tag", 'must be a JSON array of {"Key", "Value"}')
            wanted = [(str(t["Key"]), None if t.get("Value") is None else str(t["Value"])) for t in raw]
        try:
            offset = int(q.get("NextToken") or 0)
        except ValueError:
            raise invalid("NextToken", "is not a token this API returned") from None

        def load() -> list[JobRecord]:
            if ids:
                return self._records(ids)
            return list(reversed(self.sandbox.store.jobs()))

        records = await anyio.to_thread.run_sync(load)
        rows = [
            {"ResourceId": r.job_id, "ResourceType": RESOURCE_TYPE, "TagKey": k, "TagValue": v}
            for r in records
            if all(k in r.tags and (v is None or r.tags[k] == v) for k, v in wanted)
            for k, v in sorted(r.tags.items())
        ]
        chosen = rows[offset : offset + PAGE]
        more = offset + PAGE < len(rows)
        return {"TagResources": chosen, "NextToken": str(offset + PAGE) if more else ""}
