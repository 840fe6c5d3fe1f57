"""The sandbox's ModelArts face: one ASGI app that answers ModelArts training-job v2, pool, IAM and BSS calls.

=======  ===============================================================  ==============================
method   path                                                              action
=======  ===============================================================  ==============================
GET      /v3/projects?name=<region>                                        IAM KeystoneListProjects
GET      /v3/auth/domains                                                  IAM KeystoneListAuthDomains
POST     /v2/bills/ratings/on-demand-resources                             BSS ListOnDemandResourceRatings
GET      /v2/{pid}/training-job-flavors[?flavor_type]                      ShowTrainingJobFlavors
GET      /v2/{pid}/training-job-engines                                    ShowTrainingJobEngines
POST     /v2/{pid}/training-jobs                                     (201)  CreateTrainingJob
GET      /v2/{pid}/training-jobs/{id}                                      ShowTrainingJobDetails
DELETE   /v2/{pid}/training-jobs/{id}                                (202)  DeleteTrainingJob
POST     /v2/{pid}/training-jobs/{id}/actions                        (202)  StopTrainingJob
POST     /v2/{pid}/training-job-searches                                   ListTrainingJobs
GET      /v2/{pid}/training-jobs/{id}/events                               ListTrainingJobEvents
GET      /v2/{pid}/training-jobs/{id}/tasks                                ListTrainingJobTasks
GET      /v2/{pid}/training-jobs/{id}/tasks/{task}/logs/preview  (200/204)  ShowTrainingJobLogsPreview
GET      /v2/{pid}/training-jobs/{id}/logs/{task}                          ShowTrainingJobLogsFromAom
GET      /v2/{pid}/training-jobs/{id}/metrics/{task}                       ShowTrainingJobMetrics
GET      /v2/{pid}/pools, /v2/{pid}/pools/{pool}                           ListPools, ShowPool
GET      /v2/{pid}/pools/{pool}/workloads                                  ListWorkloads
=======  ===============================================================  ==============================

Every call: route (404 ``APIG.0101`` otherwise), SDK-HMAC-SHA256 (``auth.py``, 401 ``APIG.0301``), the
path's project id (403 ``ModelArts.0212`` when it is not the sandbox's), request faults, the handler. Errors
are ``{"error_code", "error_msg"}`` with ``X-Request-Id``; the shared fault switches answer in ModelArts'
words (throttling → 429 ``APIG.0308``, 503 → ``ModelArts.0010``). Jobs are the shared sandbox's jobs
(``server/sandbox/app.py``: the local executor, the timeline, the job faults), created here with the
ModelArts body kept beside them; a job on a dedicated pool queues in it (``ResourceId`` = the pool, so the
``quota_queue`` fault holds it at a ``pendingPosition``). ``auto_stop`` is enforced (× ``minute_seconds``
per minute). Unsigned admin routes (loopback only): ``/_sandbox/info``, ``/_sandbox/faults`` (as the PAI face).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.providers.modelarts import signing
from cloudjobs_mcp.server.sandbox import observe
from cloudjobs_mcp.server.sandbox.app import CallRecord, Sandbox
from cloudjobs_mcp.server.sandbox.errors import ApiError, new_request_id
from cloudjobs_mcp.server.sandbox.faults import Call, Faults, job_faults
from cloudjobs_mcp.server.sandbox.jobs import JobRecord, JobView, plan_pods
from cloudjobs_mcp.server.sandbox.modelarts import catalog, shapes
from cloudjobs_mcp.server.sandbox.modelarts.auth import Gateway
from cloudjobs_mcp.server.sandbox.settings import AccessKey, SandboxSettings

logger = logging.getLogger("cloudjobs.sandbox.modelarts")

JSON_TYPE = "application/json;charset=UTF-8"
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INTERNAL_JOB_TYPE = "ElasticBatchJob"  # Worker pods only; the shared timeline's job type, never shown
USER = "sandbox-user"
LOG_PREVIEW_BYTES = 5 * 1024 * 1024
_UPPER = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits


def generate_access_key() -> AccessKey:
    """A Huawei-style permanent AK/SK: 20 upper-case letters and digits, a 40-character secret."""
    return AccessKey(
        "".join(secrets.choice(_UPPER) for _ in range(20)), "".join(secrets.choice(_ALNUM) for _ in range(40))
    )


def load_or_create(path: Path) -> tuple[list[AccessKey], str, str]:
    """Keys, project id and account (domain) id kept in ``path`` (JSON, 0600); created on first use."""
    if path.exists():
        data = json.loads(path.read_text())
        keys = [AccessKey(k["ak"], k["sk"], k.get("security_token")) for k in data["access_keys"]]
        return keys, str(data["project_id"]), str(data["domain_id"])
    key, project, domain = generate_access_key(), uuid.uuid4().hex, uuid.uuid4().hex
    path.parent.mkdir(parents=True, exist_ok=True)
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(
            {
                "access_keys": [{"ak": key.access_key_id, "sk": key.access_key_secret}],
                "project_id": project,
                "domain_id": domain,
            },
            f,
        )
    return [key], project, domain


def error(status: int, code: str, message: str, **extra: str) -> ApiError:
    err = ApiError(status, code, message)
    err.headers.update(extra)
    return err


def bad(message: str, code: str = "ModelArts.2788") -> ApiError:
    return ApiError(400, code, message)


def job_not_found(job_id: str) -> ApiError:
    return ApiError(400, "ModelArts.2775", f"Training job {job_id} not found.")


def pool_not_found(name: str) -> ApiError:
    return ApiError(404, "ModelArts.50015001", f"Pool {name} not found.")


@dataclass
class Ctx:
    key: AccessKey
    query: list[tuple[str, str]]
    params: dict[str, str]
    raw_body: bytes
    headers: dict[str, str]
    now: float

    def one(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    def json(self) -> Any:
        if not self.raw_body:
            raise bad("The request body is empty.", "ModelArts.2787")
        try:
            return json.loads(self.raw_body)
        except ValueError:
            raise bad("The request body is not valid JSON.", "ModelArts.2787") from None

    def number(self, name: str, default: int, low: int, high: int, code: str = "ModelArts.2788") -> int:
        raw = self.one(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad(f"Invalid parameter {name}: {raw!r} is not an integer.", code) from None
        if not low <= value <= high:
            raise bad(f"Invalid parameter {name}: must be {low} to {high}, got {value}.", code)
        return value


Handler = Callable[[Ctx], Awaitable["Answer"]]


@dataclass
class Answer:
    body: Any
    status: int = 200


@dataclass(frozen=True)
class Route_:
    action: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler = field(compare=False)
    project: bool = True  # /v2/{project_id}/... : the project id must be the sandbox's


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


class ModelArtsSandbox:
    """The ModelArts face over a shared :class:`~server.sandbox.app.Sandbox` (jobs, executor, faults)."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        project_id: str | None = None,
        domain_id: str | None = None,
        bss_prices: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        keys = settings.access_keys or (generate_access_key(),)
        self.core = Sandbox(settings if settings.access_keys else _with_keys(settings, keys), clock=clock)
        self.settings = self.core.settings
        self.clock = clock
        self.project_id = project_id or uuid.uuid4().hex
        self.domain_id = domain_id or uuid.uuid4().hex
        self.bss_prices = bss_prices
        self.gateway = Gateway(keys, window_seconds=settings.date_window_seconds, clock=clock)
        self.started = clock()
        self.calls: deque[CallRecord] = deque(maxlen=settings.call_history)
        self._routes: list[Route_] = []
        self._register()
        self.app = Starlette(
            routes=[
                Route("/_sandbox/info", self._admin_info, methods=["GET"]),
                Route("/_sandbox/faults", self.core._admin_faults, methods=["GET", "POST", "DELETE"]),
                Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
            ],
            lifespan=self._lifespan,
        )

    # ------------------------------------------------------------------------------------ public

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def access_key(self) -> AccessKey:
        return self.gateway.keys[0]

    @property
    def region(self) -> str:
        return self.settings.region

    def add_access_key(self, key: AccessKey) -> AccessKey:
        self.gateway.add(key)
        return key

    async def stop_all(self, wait_seconds: float = 10.0) -> None:
        await self.core.stop_all(wait_seconds)

    async def job_view(self, job_id: str) -> JobView | None:
        return await self.core.job_view(job_id)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with self.core._lifespan(self.core.app):
            yield

    # ----------------------------------------------------------------------------------- routing

    def _register(self) -> None:
        v2 = "/v2/{project_id}"
        table: list[tuple[str, str, str, Handler, bool]] = [
            ("KeystoneListProjects", "GET", "/v3/projects", self.iam_projects, False),
            ("KeystoneListAuthDomains", "GET", "/v3/auth/domains", self.iam_domains, False),
            ("ListOnDemandResourceRatings", "POST", "/v2/bills/ratings/on-demand-resources", self.bss_rate, False),
            ("ShowTrainingJobFlavors", "GET", f"{v2}/training-job-flavors", self.flavors, True),
            ("ShowTrainingJobEngines", "GET", f"{v2}/training-job-engines", self.engines, True),
            ("CreateTrainingJob", "POST", f"{v2}/training-jobs", self.create_job, True),
            ("ShowTrainingJobDetails", "GET", f"{v2}/training-jobs/{{job_id}}", self.show_job, True),
            ("DeleteTrainingJob", "DELETE", f"{v2}/training-jobs/{{job_id}}", self.delete_job, True),
            ("StopTrainingJob", "POST", f"{v2}/training-jobs/{{job_id}}/actions", self.stop_job, True),
            ("ListTrainingJobs", "POST", f"{v2}/training-job-searches", self.search, True),
            ("ListTrainingJobEvents", "GET", f"{v2}/training-jobs/{{job_id}}/events", self.events, True),
            ("ListTrainingJobTasks", "GET", f"{v2}/training-jobs/{{job_id}}/tasks", self.tasks, True),
            (
                "ShowTrainingJobLogsPreview",
                "GET",
                f"{v2}/training-jobs/{{job_id}}/tasks/{{task}}/logs/preview",
                self.log_preview,
                True,
            ),
            ("ShowTrainingJobLogsFromAom", "GET", f"{v2}/training-jobs/{{job_id}}/logs/{{task}}", self.log_lines, True),
            ("ShowTrainingJobMetrics", "GET", f"{v2}/training-jobs/{{job_id}}/metrics/{{task}}", self.metrics, True),
            ("ListPools", "GET", f"{v2}/pools", self.list_pools, True),
            ("ShowPool", "GET", f"{v2}/pools/{{pool}}", self.show_pool, True),
            ("ListWorkloads", "GET", f"{v2}/pools/{{pool}}/workloads", self.workloads, True),
        ]
        self._routes = [Route_(a, m, _pattern(p), h, proj) for a, m, p, h, proj in table]

    def _match(self, method: str, raw_path: str) -> tuple[Route_, dict[str, str]]:
        for route in self._routes:
            found = route.pattern.match(raw_path)
            if found and route.method == method:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        raise ApiError(404, "APIG.0101", "The API does not exist or has not been published in the environment.")

    @staticmethod
    def _translate(err: ApiError) -> ApiError:
        """The shared fault switches answer in Alibaba's words; say it as Huawei's gateway and ModelArts do."""
        if err.code.startswith("Throttling"):
            return ApiError(
                429,
                "APIG.0308",
                "The throttling threshold has been reached: policy user over ratelimit,limit:20,time:1 second",
            )
        if err.code == "ServiceUnavailable":
            return ApiError(503, "ModelArts.0010", "Internal error, please try again later.")
        return err

    async def _dispatch(self, request: Request) -> Response:
        request_id = new_request_id().lower().replace("-", "")
        method = request.method.upper()
        raw_path = Sandbox._raw_path(request.scope)
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        query = signing.parse_query(raw_query)
        action = "Unknown"
        try:
            route, params = self._match(method, raw_path)
            action = route.action
            key = self.gateway.check(method, raw_path, raw_query, headers, body)
            if route.project and params.get("project_id") != self.project_id:
                raise ApiError(
                    403,
                    "ModelArts.0212",
                    f"The project id {params.get('project_id')} in the URL is not this account's project.",
                )
            if route.project and headers.get("x-project-id") not in (None, self.project_id):
                raise ApiError(403, "ModelArts.0212", "X-Project-Id does not match the project id in the URL.")
            call = Call("modelarts", action, method, unquote(raw_path), dict(query))
            fault = await self.faults.before(call)
            if fault is not None:
                raise self._translate(fault)
            answer = await route.handler(Ctx(key, query, params, body, headers, self.clock()))
            fault = self.faults.after(call)
            if fault is not None:
                raise self._translate(fault)
        except ApiError as err:
            payload: dict[str, Any] = {"error_code": err.code, "error_msg": err.message}
            if err.code.startswith("APIG"):
                payload["request_id"] = request_id
            self._record(action, method, raw_path, err.status, err.code, payload)
            return _json(payload, err.status, {"X-Request-Id": request_id, **err.headers})
        except Exception:
            logger.exception("modelarts sandbox: %s %s failed", method, raw_path)
            payload = {"error_code": "ModelArts.0010", "error_msg": "Internal error."}
            self._record(action, method, raw_path, 500, "ModelArts.0010", payload)
            return _json(payload, 500, {"X-Request-Id": request_id})
        self._record(action, method, raw_path, answer.status, "", answer.body if isinstance(answer.body, dict) else {})
        if answer.status == 204:
            return Response(status_code=204, headers={"X-Request-Id": request_id})
        return _json(answer.body, answer.status, {"X-Request-Id": request_id})

    def _record(self, action: str, method: str, path: str, status: int, code: str, body: dict[str, Any]) -> None:
        self.calls.append(CallRecord(self.clock(), "modelarts", action, method, path, status, code, body))

    async def _admin_info(self, request: Request) -> Response:
        if not Sandbox._loopback(request):
            return _json({"error": "the sandbox's admin routes answer loopback clients only"}, 403)
        return _json(
            {
                "cloud": "modelarts",
                "region": self.region,
                "project_id": self.project_id,
                "state_dir": str(self.settings.state_dir),
                "access_keys": [k.access_key_id for k in self.gateway.keys],
                "pools": [p.name for p in catalog.POOLS],
                "faults": self.faults.describe(),
            }
        )

    # ------------------------------------------------------------------------------------ IAM/BSS

    async def iam_projects(self, ctx: Ctx) -> Answer:
        name = ctx.one("name")
        projects = []
        if name in (None, self.region):
            projects.append(
                {
                    "id": self.project_id,
                    "name": self.region,
                    "domain_id": self.domain_id,
                    "parent_id": self.domain_id,
                    "enabled": True,
                    "is_domain": False,
                    "description": "",
                }
            )
        return Answer({"projects": projects, "links": {"self": "/v3/projects", "next": None, "previous": None}})

    async def iam_domains(self, ctx: Ctx) -> Answer:
        return Answer({"domains": [{"id": self.domain_id, "name": "sandbox-account", "enabled": True}]})

    async def bss_rate(self, ctx: Ctx) -> Answer:
        if not self.bss_prices:
            raise ApiError(403, "CBC.0151", "Access denied.")
        if ctx.headers.get("x-domain-id") != self.domain_id:
            raise ApiError(400, "CBC.0100", "Invalid parameter: X-Domain-Id.")
        body = ctx.json()
        infos = body.get("product_infos") if isinstance(body, dict) else None
        if not isinstance(infos, list) or not infos:
            raise ApiError(400, "CBC.0100", "Invalid parameter: product_infos.")
        china = self.region.startswith("cn-")
        results, total = [], 0.0
        for info in infos:
            flavor = catalog.BY_ID.get(str(info.get("resource_spec") or "")) if isinstance(info, dict) else None
            if flavor is None or info.get("cloud_service_type") != "hws.service.type.modelarts":
                raise ApiError(400, "CBC.0100", "Invalid parameter: the product is not on sale.")
            hours = float(info.get("usage_value") or 1)
            amount = round(flavor.price_cny * hours / (1.0 if china else 7.2), 6)
            total += amount
            results.append(
                {
                    "id": info.get("id"),
                    "product_id": f"OFFI{flavor.flavor_id}",
                    "amount": amount,
                    "discount_amount": 0,
                    "official_website_amount": amount,
                    "measure_id": 1,
                }
            )
        return Answer(
            {
                "amount": round(total, 6),
                "discount_amount": 0,
                "official_website_amount": round(total, 6),
                "measure_id": 1,
                "currency": "CNY" if china else "USD",
                "product_rating_results": results,
            }
        )

    # ---------------------------------------------------------------------------- catalog calls

    async def flavors(self, ctx: Ctx) -> Answer:
        kind = ctx.one("flavor_type")
        if kind not in (None, "", "CPU", "GPU", "Ascend"):
            raise bad(f"Invalid parameter flavor_type: {kind}.")
        items = [f.item() for f in catalog.FLAVORS if not kind or f.kind == kind]
        return Answer({"total_count": len(items), "flavors": items})

    async def engines(self, ctx: Ctx) -> Answer:
        return Answer({"total": len(catalog.ENGINES), "items": list(catalog.ENGINES)})

    # -------------------------------------------------------------------------------------- jobs

    async def _view(self, job_id: str) -> JobView:
        view = await self.core.job_view(job_id)
        if view is None or "ModelArts" not in view.record.body:
            raise job_not_found(job_id)
        return view

    def _validate(self, body: Any, names: set[str]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object.", "ModelArts.2787")
        if body.get("kind", "job") != "job":
            raise bad(f"kind {body.get('kind')!r} is not supported by the sandbox (only job).")
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            raise bad("metadata.name is required.")
        name = meta["name"]
        if not NAME.match(name):
            raise bad("metadata.name must be 1 to 64 letters, digits, '-' and '_'.")
        if len(str(meta.get("description") or "")) > 256:
            raise bad("metadata.description is longer than 256 characters.")
        if name in names:
            raise ApiError(400, "ModelArts.2751", f"Duplicate training job name {name}.")
        algorithm = body.get("algorithm")
        engine = algorithm.get("engine") if isinstance(algorithm, dict) else None
        if (
            not isinstance(algorithm, dict)
            or not algorithm.get("command")
            or not isinstance(engine, dict)
            or not engine.get("image_url")
        ):
            raise ApiError(
                400, "ModelArts.2806", "A custom-image job must have algorithm.command and algorithm.engine.image_url."
            )
        envs = algorithm.get("environments") or {}
        if not isinstance(envs, dict) or not all(isinstance(v, str) and ENV_NAME.match(k) for k, v in envs.items()):
            raise bad("algorithm.environments must map names ([A-Za-z_][A-Za-z0-9_]*) to strings.")
        if len(envs) > 100:
            raise bad("algorithm.environments has more than 100 variables.")
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise bad("spec is required.")
        resource = spec.get("resource")
        if not isinstance(resource, dict):
            raise bad("spec.resource is required.")
        count = resource.get("node_count")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise bad("spec.resource.node_count must be an integer of at least 1.")
        flavor = catalog.BY_ID.get(str(resource.get("flavor_id") or ""))
        if flavor is None:
            raise ApiError(400, "ModelArts.2763", f"Flavor {resource.get('flavor_id')} does not exist.")
        if count > flavor.max_num:
            raise ApiError(400, "ModelArts.2763", f"Flavor {flavor.flavor_id} allows at most {flavor.max_num} node(s).")
        if count > self.settings.max_pods_per_job:
            raise bad(f"The sandbox runs every node as a process here: at most {self.settings.max_pods_per_job}.")
        pool = resource.get("pool_id")
        if pool:
            found = catalog.POOLS_BY_NAME.get(str(pool))
            if found is None:
                raise ApiError(404, "ModelArts.2890", f"Pool {pool} not found.")
            if "Train" not in found.scopes:
                raise ApiError(400, "ModelArts.2886", f"Pool {pool} is not a training pool.")
        auto_stop = spec.get("auto_stop")
        if auto_stop is not None:
            duration = auto_stop.get("duration") if isinstance(auto_stop, dict) else None
            if (
                not isinstance(auto_stop, dict)
                or auto_stop.get("time_unit") != "HOURS"
                or isinstance(duration, bool)
                or not isinstance(duration, int)
                or duration < 1
            ):
                raise bad('spec.auto_stop must be {"time_unit": "HOURS", "duration": <hours, at least 1>}.')
        priority = (spec.get("schedule_policy") or {}).get("priority")
        if priority is not None and (not isinstance(priority, int) or not 1 <= priority <= 3 or not pool):
            raise bad("spec.schedule_policy.priority is 1 to 3, and only on a dedicated pool.")
        return {"kind": "job", "metadata": meta, "algorithm": algorithm, "spec": spec}

    def _insert(self, ma: dict[str, Any], now: float) -> str:
        names = {r.body["ModelArts"]["metadata"]["name"] for r in self.core.store.jobs() if "ModelArts" in r.body}
        ma = self._validate(ma, names)
        job_id = str(uuid.uuid4())
        resource = ma["spec"]["resource"]
        flavor = catalog.BY_ID[str(resource["flavor_id"])]
        config = {"CPU": str(flavor.cpu), "Memory": f"{flavor.memory_gb}Gi"}
        if flavor.accelerators:
            config.update(GPU=str(flavor.accelerators), GPUType=flavor.product)
        algorithm = ma["algorithm"]
        hours = (ma["spec"].get("auto_stop") or {}).get("duration")
        stored: dict[str, Any] = {
            "DisplayName": ma["metadata"]["name"],
            "JobType": INTERNAL_JOB_TYPE,
            "JobSpecs": [
                {
                    "Type": "Worker",
                    "Image": algorithm["engine"]["image_url"],
                    "PodCount": resource["node_count"],
                    "ResourceConfig": config,
                }
            ],
            "UserCommand": algorithm["command"],
            "WorkspaceId": str(ma["metadata"].get("workspace_id") or "0"),
            "Envs": {**dict(algorithm.get("environments") or {}), "MA_NUM_HOSTS": str(resource["node_count"])},
            "Priority": (ma["spec"].get("schedule_policy") or {}).get("priority", 1),
            "ModelArts": ma,
        }
        if hours:
            stored["JobMaxRunningTimeMinutes"] = int(hours) * 60
        if resource.get("pool_id"):
            stored["ResourceId"] = str(resource["pool_id"])
        queue_at = now + self.settings.creating_seconds
        record = JobRecord(
            job_id=job_id,
            display_name=ma["metadata"]["name"],
            job_type=INTERNAL_JOB_TYPE,
            workspace_id=stored["WorkspaceId"],
            created_at=now,
            queue_at=queue_at,
            launch_at=queue_at + self.settings.queuing_seconds,
            body=stored,
            pods=plan_pods(shapes.pod_prefix(job_id), INTERNAL_JOB_TYPE, stored["JobSpecs"]),
            faults=[],
        )
        record.faults = self.faults.for_new_job(record)
        self.core.store.insert_job(record)
        return job_id

    async def create_job(self, ctx: Ctx) -> Answer:
        body = ctx.json()
        job_id = await anyio.to_thread.run_sync(self._insert, body, ctx.now)
        self.core._wake()
        return Answer(shapes.job_body(await self._view(job_id), user=USER), 201)

    async def show_job(self, ctx: Ctx) -> Answer:
        return Answer(shapes.job_body(await self._view(ctx.params["job_id"]), user=USER))

    async def stop_job(self, ctx: Ctx) -> Answer:
        job_id = ctx.params["job_id"]
        body = ctx.json()
        if not isinstance(body, dict) or body.get("action_type") != "terminate":
            raise bad('The action must be {"action_type": "terminate"}.')
        view = await self._view(job_id)
        if view.terminal:
            raise ApiError(
                409, "ModelArts.2796", f"Training job {job_id} is {shapes.phase(view)[0]} and cannot be terminated."
            )
        await anyio.to_thread.run_sync(self.core.stop_dlc_job, job_id)
        view = await self._view(job_id)
        out = shapes.job_body(view, user=USER)
        if not view.terminal:
            out["status"]["phase"] = out["status"]["secondary_phase"] = "Terminating"
        return Answer(out, 202)

    async def delete_job(self, ctx: Ctx) -> Answer:
        job_id = ctx.params["job_id"]
        view = await self._view(job_id)

        def remove() -> None:
            if not view.terminal:
                self.core.stop_dlc_job(job_id)
                if view.record.launched_at is not None:
                    try:
                        self.core.executor.wait(job_id, self.settings.stop_grace_seconds + 5.0)
                    except NotFound:
                        pass
            current = self.core._load_view(job_id)
            if current is not None:
                self.core.delete_dlc_job(current)

        await anyio.to_thread.run_sync(remove)
        return Answer({}, 202)

    async def search(self, ctx: Ctx) -> Answer:
        body = ctx.json()
        if not isinstance(body, dict):
            raise bad("The request body must be a JSON object.", "ModelArts.2787")
        limit, offset = body.get("limit", 10), body.get("offset", 0)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 50:
            raise bad("limit must be 1 to 50.", "ModelArts.2808")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise bad("offset must be 0 or more.", "ModelArts.2808")
        order = body.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad("order must be asc or desc.", "ModelArts.2808")
        if body.get("sort_by", "create_time") != "create_time":
            raise bad("The sandbox sorts by create_time only.", "ModelArts.2808")
        checks: list[Callable[[JobView], bool]] = []
        for f in body.get("filters") or []:
            key, op, values = (f or {}).get("key"), (f or {}).get("operator"), (f or {}).get("value") or []
            if key not in ("name", "phase", "create_time") or op not in ("like", "in", "between", "not"):
                raise ApiError(400, "ModelArts.2807", f"Unsupported condition {key} {op}.")
            checks.append(_condition(str(key), str(op), [str(v) for v in values]))
        views = [v for v in await anyio.to_thread.run_sync(self.core._load_views) if "ModelArts" in v.record.body]
        matching = [v for v in views if all(c(v) for c in checks)]
        matching.sort(key=lambda v: v.record.created_at, reverse=order == "desc")
        page = matching[offset * limit : (offset + 1) * limit]  # offset is a page index
        return Answer(
            {
                "total": len(matching),
                "count": len(page),
                "limit": limit,
                "offset": offset,
                "sort_by": "create_time",
                "order": order,
                "group_by": "",
                "workspace_id": "0",
                "ai_project": "",
                "train_type": "job",
                "items": [shapes.job_body(v, user=USER) for v in page],
            }
        )

    async def events(self, ctx: Ctx) -> Answer:
        view = await self._view(ctx.params["job_id"])
        offset = ctx.number("offset", 0, 0, 10**9)
        limit = ctx.number("limit", 50, 1, 100)
        order = ctx.one("order") or "desc"
        if order not in ("asc", "desc"):
            raise bad("order must be asc or desc.")
        items = shapes.events(view)
        level, pattern = ctx.one("level"), ctx.one("pattern")
        if level:
            items = [e for e in items if e["level"] == level]
        if pattern:
            items = [e for e in items if pattern in e["message"]]
        if order == "desc":
            items.reverse()
        return Answer(
            {
                "total": len(items),
                "limit": limit,
                "offset": offset,
                "order": order,
                "events": items[offset : offset + limit],
            }
        )

    async def tasks(self, ctx: Ctx) -> Answer:
        view = await self._view(ctx.params["job_id"])
        job_id = view.record.job_id
        return Answer(
            [
                {
                    "task": shapes.task_of(job_id, p.pod_id),
                    "ip": "127.0.0.1" if p.started_at else "",
                    "host_ip": "127.0.0.1" if p.started_at else "",
                    "schedule_count": 1,
                }
                for p in view.pods
            ]
        )

    def _pod(self, view: JobView, task: str) -> str:
        pod_id = f"{shapes.pod_prefix(view.record.job_id)}-{task}"
        if pod_id not in {p.pod_id for p in view.pods}:
            raise ApiError(400, "ModelArts.2820", f"Task {task} of training job {view.record.job_id} not found.")
        return pod_id

    async def _log_lines(self, view: JobView, pod_id: str) -> list[str] | None:
        if view.record.launched_at is None:
            return None
        try:
            return await anyio.to_thread.run_sync(lambda: self.core.executor.read_log(view.record.job_id, pod_id).lines)
        except NotFound:
            return None

    async def log_preview(self, ctx: Ctx) -> Answer:
        view = await self._view(ctx.params["job_id"])
        lines = await self._log_lines(view, self._pod(view, ctx.params["task"]))
        if lines is None:
            return Answer({}, 204)  # ModelArts.2776: the log is not ready yet
        text = "".join(line + "\n" for line in lines)
        data = text.encode("utf-8")
        shown = data[-LOG_PREVIEW_BYTES:].decode("utf-8", "ignore")
        return Answer({"content": shown, "current_size": len(shown.encode()), "full_size": len(data)})

    async def log_lines(self, ctx: Ctx) -> Answer:
        view = await self._view(ctx.params["job_id"])
        lines = await self._log_lines(view, self._pod(view, ctx.params["task"])) or []
        count = ctx.number("lines", 50, 1, 500)
        order = ctx.one("order") or "desc"
        base = ctx.one("base_line")
        numbered = list(enumerate(lines, start=1))
        if order == "desc":
            upto = int(base) - 1 if base else len(numbered)
            chosen = numbered[max(0, upto - count) : upto]
        else:
            start = int(base) + 1 if base else 1
            chosen = numbered[start - 1 : start - 1 + count]
        return Answer(
            {
                "start_line": str(chosen[0][0]) if chosen else "",
                "end_line": str(chosen[-1][0]) if chosen else "",
                "lines": len(chosen),
                "content": "".join(text + "\n" for _, text in chosen),
            }
        )

    async def metrics(self, ctx: Ctx) -> Answer:
        view = await self._view(ctx.params["job_id"])
        pod_id = self._pod(view, ctx.params["task"])
        if view.running_at is None:
            return Answer({}, 204)  # ModelArts.2777: no metrics yet
        start = view.running_at
        end = view.finished_at if view.finished_at is not None else view.now
        minutes = max(1, int((end - start) // 60) + 1)
        faults = job_faults(view.record.faults)
        out = []
        for name, kind in (
            ("cpuUsage", "cpu"),
            ("memUsage", "memory"),
            ("gpuUtil", "gpu_core"),
            ("gpuMemUsage", "gpu_memory"),
        ):
            series = await anyio.to_thread.run_sync(observe.samples, self.core.executor, view, kind, start, end, faults)
            points = next((s.points for s in series if s.pod_id == pod_id), [])
            means = dict(observe.buckets(points, start, 60.0))
            out.append(
                {
                    "metric": name,
                    "value": [
                        observe.value(means[start + i * 60.0]) if (start + i * 60.0) in means else -1
                        for i in range(minutes)
                    ],
                }
            )
        return Answer({"metrics": out})

    # ------------------------------------------------------------------------------------ pools

    def _pool(self, name: str) -> catalog.PoolDef:
        pool = catalog.POOLS_BY_NAME.get(name)
        if pool is None:
            raise pool_not_found(name)
        return pool

    async def list_pools(self, ctx: Ctx) -> Answer:
        status = ctx.one("status")
        if status not in (None, "", "created", "failed", "creating"):
            raise ApiError(400, "ModelArts.50004000", "Bad request.")
        items = [p.item(shapes.iso_now(self.started)) for p in catalog.POOLS if status in (None, "", "created")]
        return Answer({"apiVersion": "v2", "kind": "PoolList", "metadata": {}, "items": items})

    async def show_pool(self, ctx: Ctx) -> Answer:
        return Answer(self._pool(ctx.params["pool"]).item(shapes.iso_now(self.started)))

    async def workloads(self, ctx: Ctx) -> Answer:
        pool = self._pool(ctx.params["pool"])
        types = ctx.all("type")
        status, sort, ascend = ctx.one("status"), ctx.one("sort"), ctx.one("ascend")
        if any(t not in ("train", "infer", "notebook", "x-infer") for t in types) or (
            status is not None and status not in {*shapes.WORKLOAD_STATUS.values(), "Abnormal"}
        ):
            raise ApiError(400, "ModelArts.50004000", "Bad request.")
        if sort not in (None, "create_time") or ascend not in (None, "true", "false") or (ascend and not sort):
            raise ApiError(400, "ModelArts.50004000", "Bad request.")
        offset = ctx.number("offset", 0, 0, 2147483647, "ModelArts.50004000")
        limit = ctx.number("limit", 0, 0, 500, "ModelArts.50004000") or 500
        namespace = shapes.namespace_of(pool.name)
        views = [
            v
            for v in await anyio.to_thread.run_sync(self.core._load_views)
            if "ModelArts" in v.record.body and v.record.resource_id == pool.name
        ]
        views.sort(key=lambda v: v.record.created_at)
        queued = [v for v in views if shapes.WORKLOAD_STATUS.get(v.status) == "Queue"]
        items = [
            shapes.workload(
                v,
                user=USER,
                namespace=namespace,
                position=shapes.queue_position(v, queued.index(v) + 1) if v in queued else None,
            )
            for v in views
        ]
        if "Train" in pool.scopes:
            items += shapes.foreign_workloads(pool.name, namespace, self.started)
        items = [w for w in items if (not types or w["type"] in types) and (status is None or w["status"] == status)]
        if sort:
            items.sort(key=lambda w: w["createTime"], reverse=ascend != "true")
        page = items[offset : offset + limit]
        return Answer({"apiVersion": "v1", "kind": "WorkloadList", "metadata": {}, "items": page, "total": len(items)})


def _condition(key: str, op: str, values: list[str]) -> Callable[[JobView], bool]:
    def value_of(view: JobView) -> str:
        if key == "name":
            return str(view.record.body["ModelArts"]["metadata"]["name"])
        if key == "phase":
            return shapes.phase(view)[0]
        return str(shapes.ms(view.record.created_at))

    if op == "like":
        return lambda v: any(x in value_of(v) for x in values)
    if op == "in":
        return lambda v: value_of(v) in values
    if op == "not":
        return lambda v: value_of(v) not in values
    low, high = (float(values[0]), float(values[1])) if len(values) == 2 else (0.0, float("inf"))
    return lambda v: low <= float(value_of(v)) <= high


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=JSON_TYPE)


def _with_keys(settings: SandboxSettings, keys: tuple[AccessKey, ...]) -> SandboxSettings:
    from dataclasses import replace

    return replace(settings, access_keys=keys)
