"""The workload sandbox: one ASGI app that answers as a Primus-SaFE apiserver does (its code, not the seed).

Routes (under ``api_prefix``, ``/api/v1`` as in the platform's code; the seed's ``/api/custom`` only when
configured so): ``POST /login``; ``GET /workspaces``, ``/workspaces/{id}``, ``/nodeflavors``,
``/nodeflavors/{id}/avail``, ``/images``; ``POST /workloads``, ``GET /workloads``, ``GET``/``DELETE
/workloads/{id}``, ``POST /workloads/{id}/stop``, ``POST /workloads/{stop|delete|clone}`` (batch),
``GET /workloads/{id}/pods/{pod}/logs``, ``…/containers``, ``GET /workloads/{id}/service``,
``POST /workloads/{id}/logs`` (log search).

As the code does (and the seed does not say): every success is HTTP 200, ``null`` where the seed says 204;
errors are ``{"errorCode", "errorMessage"}``; an empty listing's ``items`` is ``null``; times are
``YYYY-MM-DDTHH:MM:SS`` (UTC, no zone); ids are ``<displayName>-<5 chars>``; create's body is validated as
the admission webhook does (400 ``Primus.00002``) and refused with 503 ``Primus.00008`` when it asks more
than a node can allocate or more replicas than the workspace has nodes; GET and list lag behind create
(the database mirror); a workload's pods, logs and service disappear ``ttlSecondsAfterFinished`` after
its end (404 with the plain Kubernetes code ``NotFound``) while GET keeps answering from the database;
stopping a finished workload whose CR still exists overwrites its phase with ``Stopped`` (the seed-era
bug); clone answers ``null`` without the new ids.

Workloads really run: each pod is ``bash -c <decoded entryPoint>`` through the local provider's executor,
with PyTorchJob's ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``; ``timeout`` is enforced (the
workload ends ``Stopped``, "the workload has timed out"). Images are recorded, not pulled.

Request faults (``sandbox.faults``: ``fail_503``, ``latency``, ``throttle``) are the PAI sandbox's; their
actions are this face's handler names (``CreateWorkload``, ``GetWorkload``, …).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cloudjobs_mcp.server.errors import NotFound
from cloudjobs_mcp.server.providers.local.executor import Executor, PodSpec, RunState
from cloudjobs_mcp.server.sandbox.app import free_port
from cloudjobs_mcp.server.sandbox.common import in_background
from cloudjobs_mcp.server.sandbox.faults import Call, Faults
from cloudjobs_mcp.server.sandbox.pods import pod_env
from cloudjobs_mcp.server.sandbox.workload.settings import (
    GIB,
    Flavor,
    WorkloadSandboxSettings,
    WorkspaceDef,
    generate_api_key,
    generate_password,
)
from cloudjobs_mcp.server.sandbox.workload.views import Workload, conditions, ended_at, phase_of, pod_items
from cloudjobs_mcp.server.sandbox.workload.wire import (
    PrimusError,
    bad_request,
    cr_not_found,
    decode_entry_point,
    go_duration,
    json_response,
    parse_time,
    quantity,
    stamp,
    webhook_denied,
    workload_not_found,
)

logger = logging.getLogger("cloudjobs.sandbox.workload")

DISPLAY_NAME = re.compile(r"^[a-z][-a-z0-9]{0,43}[a-z0-9]$")
ID_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes utilrand's alphabet
KINDS = {"PyTorchJob": "Train", "Deployment": "Infer", "StatefulSet": "Infer", "Authoring": "Authoring"}
MAX_BODY = 2 * 1024 * 1024
IMAGES = (
    ("harbor.sandbox.internal/ai/pytorch:2.5-rocm6.3-py311", "PyTorch 2.5 for ROCm 6.3 (MI300X)", 1735689600),
    ("harbor.sandbox.internal/ai/pytorch:2.5-cpu-py311", "PyTorch 2.5, CPU only", 1735603200),
    ("harbor.sandbox.internal/ai/vllm:0.8-rocm6.3", "vLLM 0.8 for ROCm 6.3", 1735776000),
)

SEED_FIELDS = ("resource", "image", "entryPoint")  # the create fields of seed-era builds
PLURAL_FIELDS = ("resources", "images", "entryPoints")  # …and of builds after 2026-01-09


def seed_fields(body: dict[str, Any], kind: str, problems: list[str]) -> tuple[str, str, list[dict[str, Any]]]:
    """(image, entryPoint, [resource]) of a seed-era create body, with what its webhook says is missing."""
    image = str(body.get("image") or "").strip()
    if not image:
        problems.append("the image is empty")
    entry = str(body.get("entryPoint") or "").strip()
    if not entry and kind != "Authoring":
        problems.append("the entryPoint is empty")
    return image, entry, [body["resource"] if isinstance(body.get("resource"), dict) else {}]


def plural_fields(body: dict[str, Any], kind: str, problems: list[str]) -> tuple[str, str, list[dict[str, Any]]]:
    """The same from a body for a build after 2026-01-09: one entry per role in resources[], images[] and
    entryPoints[] (this sandbox runs the first role's image and command in every pod)."""

    def listed(name: str) -> list[Any]:
        value = body.get(name)
        return value if isinstance(value, list) else []

    roles = [r if isinstance(r, dict) else {} for r in listed("resources")]
    images = [str(i or "").strip() for i in listed("images")]
    entries = [str(e or "").strip() for e in listed("entryPoints")]
    if not roles:
        problems.append("the resources are empty")
    if not any(images):
        problems.append("the images are empty")
    elif len(images) != len(roles):
        problems.append("the number of images and resources is not equal")
    if not any(entries) and kind != "Authoring":
        problems.append("the entryPoints are empty")
    return (images[0] if images else ""), (entries[0] if entries else ""), roles


def with_defaults(res: dict[str, Any]) -> dict[str, Any]:
    """A role's resources after the mutating webhook: no ``gpu: "0"``, shared memory = memory / 2, 50Gi disk."""
    res = dict(res)
    if str(res.get("gpu") or "0") == "0":
        res.pop("gpu", None)
    res.setdefault("sharedMemory", f"{int(quantity(res['memory']) / 2 / GIB)}Gi")
    res.setdefault("ephemeralStorage", "50Gi")
    return res


def roles_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of each role of a stored workload, whichever build created it."""
    return list(body["resources"]) if "resources" in body else [body["resource"]]


@dataclass
class CallRecord:
    method: str
    path: str
    action: str
    status: int
    code: str
    auth: str  # api-key | token | none
    user_id_header: bool


@dataclass(frozen=True)
class Route_:
    method: str
    pattern: re.Pattern[str]
    action: str
    handler: Callable[[Ctx], Awaitable[Any]]
    public: bool = False


@dataclass
class Ctx:
    request: Request
    params: dict[str, str]
    query: dict[str, str]
    raw: bytes
    user: str
    now: float

    def json(self) -> Any:
        if not self.raw:
            raise bad_request("EOF")
        try:
            return json.loads(self.raw)
        except ValueError as exc:
            raise bad_request(f"invalid character in the request body: {exc}") from None

    def int_query(self, name: str, default: int, minimum: int) -> int:
        raw = self.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"invalid query: {name}={raw!r} is not an integer") from None
        if value < minimum:
            raise bad_request(f"invalid query: {name} must be >= {minimum}")
        return value


class WorkloadSandbox:
    """One sandbox: its settings, credentials, workloads and ASGI ``app``."""

    def __init__(self, settings: WorkloadSandboxSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.password = settings.password or generate_password()
        self.api_key = settings.api_key or generate_api_key()
        self.users = {settings.user: self.password}
        self.tokens: dict[str, tuple[str, float | None]] = {}  # token → (user, expires at)
        self.reject_tokens = False  # every login token is refused (a broken session store)
        self.faults = Faults()
        self.flavors: dict[str, Flavor] = {f.flavor_id: f for f in settings.flavors}
        self.nodes: dict[str, int] = {w.workspace_id: w.nodes for w in settings.workspaces}
        self.workspaces: dict[str, WorkspaceDef] = {w.workspace_id: w for w in settings.workspaces}
        self.held: str | None = None  # a scheduler message: new workloads stay Pending with it
        self.workloads: dict[str, Workload] = {}
        self.calls: deque[CallRecord] = deque(maxlen=settings.call_history)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        self.executor = Executor(settings.state_dir)
        self._lock = anyio.Lock()
        self._routes = self._table()
        self.app = Starlette(
            routes=[Route("/{path:path}", self._dispatch, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])],
            lifespan=lambda _app: in_background(self._scheduler),
        )
        self.app.state.sandbox = self

    # -------------------------------------------------------------------------------- controls

    def set_nodes(self, workspace_id: str, nodes: int) -> None:
        """Change a workspace's healthy node count (e.g. below what a quote assumed)."""
        self.nodes[workspace_id] = nodes

    def hold(self, message: str | None = "Insufficient total amd.com/gpu resources") -> None:
        """New and pending workloads stay Pending with this scheduler message; None releases them."""
        self.held = message

    def revoke_tokens(self) -> None:
        """Every login token becomes invalid (as after a restart with a new key): the next call gets 401."""
        self.tokens.clear()

    def env(self, url: str, *, api_key: bool = True) -> dict[str, str]:
        """``CLOUDJOBS_*`` variables that point the ``workload`` provider here (API key, else user/password)."""
        env = {
            "CLOUDJOBS_PROVIDER": "workload",
            "CLOUDJOBS_WORKLOAD_URL": url,
            "CLOUDJOBS_WORKLOAD_API_PREFIX": self.settings.api_prefix,
        }
        if api_key:
            env["CLOUDJOBS_WORKLOAD_API_KEY"] = self.api_key
        else:
            env.update(CLOUDJOBS_WORKLOAD_USER=self.settings.user, CLOUDJOBS_WORKLOAD_PASSWORD=self.password)
        return env

    async def stop_all(self, wait_seconds: float = 10.0) -> None:
        def stop() -> None:
            for w in list(self.workloads.values()):
                if w.launched:
                    try:
                        self.executor.stop(w.workload_id, wait_seconds=wait_seconds)
                    except NotFound:
                        pass

        await anyio.to_thread.run_sync(stop)

    # ------------------------------------------------------------------------------- scheduler

    async def _scheduler(self) -> None:
        while True:
            try:
                await self.launch_due()
            except Exception:  # keep scheduling; the next pass retries
                logger.exception("workload sandbox scheduler pass failed")
            await anyio.sleep(self.settings.poll_seconds)

    async def launch_due(self) -> None:
        now = self.clock()
        for w in list(self.workloads.values()):
            if w.launched or w.deleted or w.stopped_at is not None or w.launch_at > now:
                continue
            if self.held is not None:
                w.held_message = self.held
                continue
            w.held_message = None
            w.launched = True
            try:
                await anyio.to_thread.run_sync(self._launch, w)
            except Exception as exc:
                logger.warning("workload sandbox: could not launch %s: %s", w.workload_id, exc)
                w.launched = False
                w.stopped_at, w.stopped_by = self.clock(), "the sandbox (launch failed)"

    def _launch(self, w: Workload) -> None:
        port = str(free_port())
        envs = {str(k): str(v) for k, v in (w.body.get("env") or {}).items()}
        pods = [
            PodSpec(pod_id, role, pod_env(envs, rank=rank, world=len(w.pods), port=port), w.command)
            for rank, (pod_id, role) in enumerate(w.pods)
        ]
        self.executor.launch(
            w.workload_id,
            pods,
            max_runtime_seconds=float(w.timeout) if w.timeout else None,
            grace_seconds=self.settings.stop_grace_seconds,
        )

    # ----------------------------------------------------------------------------------- views

    def _run(self, w: Workload) -> RunState | None:
        if not w.launched:
            return None
        try:
            return self.executor.get(w.workload_id)
        except NotFound:
            return None

    def cr_exists(self, w: Workload, run: RunState | None, now: float) -> bool:
        """The workload's Kubernetes object: deleted ``ttlSecondsAfterFinished`` after the end."""
        end = ended_at(w, run)
        return not w.deleted and (end is None or now < end + w.ttl)

    def _visible(self, w: Workload, now: float) -> bool:
        return not w.deleted and now >= w.created_at + self.settings.mirror_lag_seconds

    def _lookup(self, workload_id: str, now: float) -> Workload:
        w = self.workloads.get(workload_id)
        if w is None or not self._visible(w, now):
            raise workload_not_found(workload_id)
        return w

    def _queue_position(self, w: Workload, phase: str) -> int:
        if phase != "Pending":
            return 0
        pending = sorted(
            (
                x
                for x in self.workloads.values()
                if x.workspace == w.workspace and not x.launched and not x.deleted and x.stopped_at is None
            ),
            key=lambda x: (-int(x.body.get("priority") or 0), x.created_at),
        )
        ids = [x.workload_id for x in pending]
        return ids.index(w.workload_id) + 1 if w.workload_id in ids else 0

    def item(self, w: Workload, now: float, *, detail: bool = False) -> dict[str, Any]:
        run = self._run(w)
        phase = phase_of(w, run)
        start = run.started_at.timestamp() if run is not None and run.started_at else None
        end = ended_at(w, run) if phase in ("Succeeded", "Failed", "Stopped") else None
        runtime = ((end or now) - start) if start else 0.0
        if w.timeout and start is None:
            until_timeout = -1
        elif w.timeout and end is None and start is not None:
            until_timeout = max(0, int(w.timeout - (now - start)))
        else:
            until_timeout = 0
        flavor = self.flavors[self.workspaces[w.workspace].flavor_id]
        shown = [
            {**r, "gpuName": flavor.gpu_product or "" if r.get("gpu") else "", "rdmaResource": ""}
            for r in roles_of(w.body)
        ]
        head = self.settings.head_schema
        out: dict[str, Any] = {
            "workloadId": w.workload_id,
            "workspaceId": w.workspace,
            **({"resources": shown} if head else {"resource": shown[0]}),
            "displayName": w.body["displayName"],
            "description": w.body.get("description") or "",
            "userId": f"user-{w.user}",
            "userName": w.user,
            "clusterId": "sandbox",
            "phase": phase,
            "message": (w.held_message or "") if phase == "Pending" else "",
            "priority": int(w.body.get("priority") or 0),
            "creationTime": stamp(w.created_at),
            "startTime": stamp(start),
            "endTime": stamp(end),
            "deletionTime": "",
            ("duration" if head else "runtime"): go_duration(runtime),
            "secondsUntilTimeout": until_timeout,
            ("queuePosition" if head else "schedulerOrder"): self._queue_position(w, phase),
            "dispatchCount": 1 if w.launched else 0,
            "isTolerateAll": bool(w.body.get("isTolerateAll")),
            "groupVersionKind": dict(w.body["groupVersionKind"]),
            "timeout": w.timeout,
            "workloadUid": f"uid-{w.workload_id}",
            "k8sObjectUid": f"k8s-{w.workload_id}",
        }
        if detail:
            out.update(
                specifiedNodes=list(w.body.get("specifiedNodes") or []),
                **(
                    {"images": list(w.body["images"]), "entryPoints": list(w.body["entryPoints"])}  # base64, as sent
                    if head
                    else {"image": w.body["image"], "entryPoint": w.command}  # decoded (the seed is right here)
                ),
                isSupervised=bool(w.body.get("isSupervised")),
                maxRetry=int(w.body.get("maxRetry") or 0),
                ttlSecondsAfterFinished=w.ttl,
                conditions=conditions(w, run, phase, now),
                pods=pod_items(w, run),
                nodes=[[f"{w.workspace}-node-{i}" for i in range(len(w.pods))]] if w.launched else [],
                ranks=[[str(i) for i in range(len(w.pods))]] if w.launched else [],
                customerLabels=dict(w.body.get("customerLabels") or {}),
                env=dict(w.body.get("env") or {}),
                liveness=None,
                readiness=None,
                service=None,
                dependencies=[],
                cronJobs=[],
            )
        return out

    # -------------------------------------------------------------------------------- dispatch

    def _table(self) -> list[Route_]:
        wl = "/workloads/(?P<id>[^/]+)"
        rows = [
            ("POST", "/login", "Login", self.login, True),
            ("GET", "/workspaces", "ListWorkspaces", self.list_workspaces, False),
            ("GET", "/workspaces/(?P<id>[^/]+)", "GetWorkspace", self.get_workspace, False),
            ("GET", "/nodeflavors", "ListNodeFlavors", self.list_flavors, False),
            ("GET", "/nodeflavors/(?P<id>[^/]+)/avail", "GetNodeFlavorAvail", self.flavor_avail, False),
            ("GET", "/images", "ListImages", self.list_images, False),
            ("POST", "/workloads", "CreateWorkload", self.create, False),
            ("GET", "/workloads", "ListWorkloads", self.list_workloads, False),
            ("POST", "/workloads/stop", "BatchStopWorkloads", self.batch_stop, False),
            ("POST", "/workloads/delete", "BatchDeleteWorkloads", self.batch_delete, False),
            ("POST", "/workloads/clone", "CloneWorkloads", self.clone, False),
            ("GET", wl, "GetWorkload", self.get, False),
            ("DELETE", wl, "DeleteWorkload", self.delete, False),
            ("POST", wl + "/stop", "StopWorkload", self.stop, False),
            ("GET", wl + "/pods/(?P<pod>[^/]+)/logs", "GetPodLogs", self.pod_logs, False),
            ("GET", wl + "/pods/(?P<pod>[^/]+)/containers", "GetPodContainers", self.containers, False),
            ("GET", wl + "/service", "GetWorkloadService", self.service, False),
            ("POST", wl + "/logs", "SearchWorkloadLogs", self.search_logs, False),
        ]
        prefix = re.escape(self.settings.api_prefix)
        return [Route_(m, re.compile(f"^{prefix}{p}$"), a, h, pub) for m, p, a, h, pub in rows]

    def _authenticate(self, request: Request, now: float) -> tuple[str, str]:
        """(user, how) of a request, or 401 as the platform's middleware answers."""
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if bearer.startswith("ak-") and not self.settings.cookie_only:
            if secrets.compare_digest(bearer, self.api_key):
                return self.settings.user, "api-key"
            raise PrimusError(401, "Primus.00009", "invalid API key")
        token = request.cookies.get("Token") or ("" if self.settings.cookie_only else bearer)
        if not token:
            raise PrimusError(401, "Primus.00009", "token not present")
        found = self.tokens.get(token)
        if found is None or self.reject_tokens:
            raise PrimusError(401, "Primus.00009", "The user's token is invalid, please login first")
        user, expires = found
        if expires is not None and now >= expires:
            raise PrimusError(401, "Primus.00009", "The user's token has expired, please login again")
        return user, "token"

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        now = self.clock()
        matched = [(r, m) for r in self._routes if (m := r.pattern.match(path))]
        route = next(((r, m) for r, m in matched if r.method == request.method), None)
        how, action, status, code = "none", "", 200, ""
        try:
            if route is None:
                raise PrimusError(404, "Primus.00005", f"the request url {request.method} {path} is not found")
            spec, match = route
            action = spec.action
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise PrimusError(413, "Primus.00006", "the request body is too large")
            user = ""
            if not spec.public:
                user, how = self._authenticate(request, now)
            call = Call("workload", action, request.method, path, dict(request.query_params))
            fault = await self.faults.before(call)
            if fault is not None:
                raise PrimusError(fault.status, fault.code, fault.message)
            ctx = Ctx(request, {k: v for k, v in match.groupdict().items()}, dict(request.query_params), raw, user, now)
            await self.launch_due()  # also when served without the lifespan's scheduler (ASGITransport)
            async with self._lock:
                body = await spec.handler(ctx)
            fault = self.faults.after(call)
            if fault is not None:
                raise PrimusError(fault.status, fault.code, fault.message)
            response = json_response(body)
        except PrimusError as exc:
            status, code = exc.status, exc.code
            response = json_response({"errorCode": exc.code, "errorMessage": exc.message}, exc.status)
        self.calls.append(CallRecord(request.method, path, action, status, code, how, "userid" in request.headers))
        return response

    # -------------------------------------------------------------------------------- handlers

    async def login(self, ctx: Ctx) -> Any:
        body = ctx.json()
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        name, password = str(body.get("name") or ""), str(body.get("password") or "")
        if name not in self.users:
            raise PrimusError(401, "Primus.00011", f"the user({name}) is not registered or invalid userId")
        if not secrets.compare_digest(password, self.users[name]):
            raise PrimusError(401, "Primus.00009", "the password is incorrect")
        token = base64.b64encode(secrets.token_bytes(48)).decode()
        expire_in = self.settings.token_expire_seconds
        expires = ctx.now + expire_in if expire_in else None
        self.tokens[token] = (name, expires)
        return {
            "id": f"user-{name}",
            "name": name,
            "type": "default",
            "roles": ["default"],
            "email": "",
            "creationTime": stamp(ctx.now),
            "expire": int(expires) if expires else -1,
            "token": token,
        }

    def _workspace_item(self, ws: WorkspaceDef) -> dict[str, Any]:
        nodes = self.nodes.get(ws.workspace_id, 0)
        return {
            "workspaceId": ws.workspace_id,
            "workspaceName": ws.workspace_id,
            "clusterId": "sandbox",
            "flavorId": ws.flavor_id,
            "userId": "user-admin",
            "targetNodeCount": ws.nodes,
            "currentNodeCount": nodes,
            "abnormalNodeCount": 0,
            "phase": "Running" if nodes else "Abnormal",
            "creationTime": "2025-01-01T00:00:00",
            "description": "workload sandbox workspace",
            "queuePolicy": "fifo",
            "scopes": list(ws.scopes),
            "volumes": [],
            "enablePreempt": False,
            "managers": [],
            "isDefault": ws.workspace_id == next(iter(self.workspaces)),
        }

    async def list_workspaces(self, ctx: Ctx) -> Any:
        items = [self._workspace_item(w) for w in self.workspaces.values()]
        return {"totalCount": len(items), "items": items or None}

    async def get_workspace(self, ctx: Ctx) -> Any:
        ws = self.workspaces.get(ctx.params["id"])
        if ws is None:
            raise PrimusError(404, "Primus.02001", f"Workspace {ctx.params['id']} not found.")
        flavor = self.flavors[ws.flavor_id]
        nodes = self.nodes.get(ws.workspace_id, 0)
        total = {k: v * nodes for k, v in flavor.avail().items()}
        used: dict[str, int] = {k: 0 for k in total}
        for w in self.workloads.values():
            run = self._run(w)
            if w.workspace == ws.workspace_id and w.launched and run is not None and not run.terminal:
                for res in roles_of(w.body):
                    n = int(res["replica"])
                    used["cpu"] += int(float(res["cpu"])) * n
                    used["memory"] += int(quantity(res["memory"])) * n
                    if "amd.com/gpu" in used and res.get("gpu"):
                        used["amd.com/gpu"] += int(res["gpu"]) * n
        avail = {k: max(0, total[k] - used[k]) for k in total}
        zero = {k: 0 for k in total}
        return {
            **self._workspace_item(ws),
            "totalQuota": total,
            "availQuota": avail,
            "abnormalQuota": zero,
            "usedQuota": used,
            "usedNodeCount": 0,
            "imageSecretIds": [],
        }

    async def list_flavors(self, ctx: Ctx) -> Any:
        items = [f.item() for f in self.flavors.values()]
        return {"totalCount": len(items), "items": items}

    async def flavor_avail(self, ctx: Ctx) -> Any:
        flavor = self.flavors.get(ctx.params["id"])
        if flavor is None:
            raise PrimusError(404, "Primus.00005", f"NodeFlavor {ctx.params['id']} not found.")
        return flavor.avail()

    async def list_images(self, ctx: Ctx) -> Any:
        tag = ctx.query.get("tag") or ""
        chosen = [i for i in IMAGES if tag in i[0]]
        if ctx.query.get("flat") == "true":  # a bare array: the seed wraps it in {totalCount, images}
            return [
                {"id": n + 1, "tag": t, "description": d, "created_at": c, "created_by": "admin"}
                for n, (t, d, c) in enumerate(chosen)
            ]
        groups: dict[str, list[dict[str, Any]]] = {}
        for n, (t, d, c) in enumerate(chosen):
            repo, _, version = t.rpartition(":")
            groups.setdefault(repo, []).append(
                {
                    "imageTag": version,
                    "description": d,
                    "createdTime": stamp(c),
                    "userName": "admin",
                    "status": "Ready",
                    "id": n + 1,
                    "size": 0,
                    "arch": "amd64",
                    "os": "linux",
                    "digest": "",
                    "includeType": "image",
                }
            )
        images = [
            {"registryHost": repo.split("/", 1)[0], "repo": repo.split("/", 1)[1], "artifacts": arts}
            for repo, arts in groups.items()
        ]
        return {"totalCount": len(images), "images": images}

    def _validate(self, body: Any, now: float) -> tuple[dict[str, Any], WorkspaceDef, str]:
        if not isinstance(body, dict):
            raise bad_request("json: cannot unmarshal into Go value of type CreateWorkloadRequest")
        problems: list[str] = []
        name = body.get("displayName")
        if not isinstance(name, str) or not name:
            problems.append("the displayName is empty")
        elif not DISPLAY_NAME.match(name):
            problems.append(f"the displayName({name}) is invalid, it must match ^[a-z][-a-z0-9]{{0,43}}[a-z0-9]$")
        workspace = body.get("workspaceId") or body.get("workspace")
        if not workspace:
            problems.append("the workspace is empty")
        gvk: dict[str, Any] = body["groupVersionKind"] if isinstance(body.get("groupVersionKind"), dict) else {}
        kind = str(gvk.get("kind") or "PyTorchJob")
        if kind not in KINDS:
            raise bad_request(f"unknown workload kind, {kind}")
        head = self.settings.head_schema
        image, entry, roles = (plural_fields if head else seed_fields)(body, kind, problems)
        for res in roles:
            if not res.get("cpu"):
                problems.append("the cpu is empty")
            if not res.get("memory"):
                problems.append("the memory is empty")
            replica = res.get("replica")
            if not isinstance(replica, int) or isinstance(replica, bool) or replica <= 0:
                problems.append("the replica is invalid")
        env = body.get("env") or {}
        if not isinstance(env, dict) or any(not isinstance(v, str) for v in env.values()):
            raise bad_request("json: cannot unmarshal env into Go struct field of type map[string]string")
        if problems:
            raise webhook_denied(problems)
        ws = self.workspaces.get(str(workspace))
        if ws is None:
            raise PrimusError(404, "Primus.02001", f"Workspace {workspace} not found.")
        if KINDS[kind] not in ws.scopes:
            raise PrimusError(403, "Primus.00003", f"The workspace {ws.workspace_id} does not allow {kind}")
        # A field the build does not know is dropped, as Go's decoder drops it.
        clean = {k: v for k, v in body.items() if k not in (SEED_FIELDS if head else PLURAL_FIELDS)}
        clean["groupVersionKind"] = {"kind": kind, "version": str(gvk.get("version") or "v1")}
        roles = [with_defaults(res) for res in roles]
        if head:
            clean["resources"], clean["images"] = roles, [str(i).strip() for i in body["images"]]
        else:
            clean["resource"], clean["image"] = roles[0], image
        clean["priority"] = min(max(int(body.get("priority") or 0), 0), 2)
        clean["maxRetry"] = min(max(int(body.get("maxRetry") or 0), 0), 50)
        self._check_capacity(ws, roles)
        return clean, ws, decode_entry_point(entry)

    def _check_capacity(self, ws: WorkspaceDef, roles: list[dict[str, Any]]) -> None:
        nodes = self.nodes.get(ws.workspace_id, 0)
        replica = sum(int(res["replica"]) for res in roles)
        if replica > nodes:
            raise PrimusError(
                503,
                "Primus.00008",
                f"Insufficient resource: the replica({replica}) exceeds the node count({nodes}) of the workspace",
            )
        avail = self.flavors[ws.flavor_id].avail()
        for res in roles:
            self._check_node(ws, res, avail)

    def _check_node(self, ws: WorkspaceDef, res: dict[str, Any], avail: dict[str, int]) -> None:
        asked = {
            "cpu": quantity(res["cpu"]),
            "memory": quantity(res["memory"]),
            "amd.com/gpu": quantity(res.get("gpu") or 0),
        }
        for key, value in asked.items():
            if value > avail.get(key, 0):
                have = avail.get(key, 0)
                shown = f"{value / GIB:g}Gi > {have / GIB:g}Gi" if key == "memory" else f"{value:g} > {have}"
                raise PrimusError(
                    503, "Primus.00008", f"Insufficient resource: {key} {shown} (node flavor {ws.flavor_id})"
                )

    def _new_id(self, name: str) -> str:
        while True:
            workload_id = name[:57] + "-" + "".join(secrets.choice(ID_CHARS) for _ in range(5))
            if workload_id not in self.workloads:
                return workload_id

    def _insert(self, body: dict[str, Any], ws: WorkspaceDef, command: str, user: str, now: float) -> Workload:
        workload_id = self._new_id(body["displayName"])
        replica = sum(int(res["replica"]) for res in roles_of(body))
        pods = [(f"{workload_id}-master-0", "Master")] + [
            (f"{workload_id}-worker-{i}", "Worker") for i in range(replica - 1)
        ]
        timeout = int(body.get("timeout") or 0) or None
        ttl = body.get("ttlSecondsAfterFinished")
        w = Workload(
            workload_id=workload_id,
            body=body,
            workspace=ws.workspace_id,
            user=user,
            created_at=now,
            launch_at=now + self.settings.pending_seconds,
            pods=pods,
            command=command,
            timeout=timeout,
            ttl=int(ttl) if isinstance(ttl, int) and ttl >= 0 else self.settings.ttl_seconds,
        )
        self.workloads[workload_id] = w
        return w

    async def create(self, ctx: Ctx) -> Any:
        body, ws, command = self._validate(ctx.json(), ctx.now)
        w = self._insert(body, ws, command, ctx.user, ctx.now)
        return {"workloadId": w.workload_id}

    async def list_workloads(self, ctx: Ctx) -> Any:
        q = ctx.query
        order = (q.get("order") or "desc").lower()
        if order not in ("desc", "asc"):
            raise bad_request(f"invalid query: order must be desc or asc, got {q['order']!r}")
        offset = ctx.int_query("offset", 0, 0)
        limit = ctx.int_query("limit", 100, 1)
        phases = {p for p in (q.get("phase") or "").split(",") if p}
        kinds = {k for k in (q.get("kind") or "").split(",") if k}
        since, until = parse_time(q.get("since")), parse_time(q.get("until"))  # unparsable: ignored
        chosen = []
        for w in self.workloads.values():
            if not self._visible(w, ctx.now) or w.user == "system":
                continue
            item = self.item(w, ctx.now)
            if (
                (q.get("workspaceId") and w.workspace != q["workspaceId"])
                or (phases and item["phase"] not in phases)
                or (kinds and item["groupVersionKind"]["kind"] not in kinds)
                or (q.get("description") and q["description"] not in item["description"])
                or (q.get("workloadId") and q["workloadId"] not in w.workload_id)  # LIKE: a substring
                or (q.get("userName") and q["userName"] not in w.user)
                or (since is not None and w.created_at < since)
                or (until is not None and w.created_at > until)
            ):
                continue
            chosen.append((w.created_at, item))
        chosen.sort(key=lambda x: x[0], reverse=order == "desc")
        page = [item for _, item in chosen[offset : offset + limit]]
        return {"totalCount": len(chosen), "items": page or None}

    async def get(self, ctx: Ctx) -> Any:
        return self.item(self._lookup(ctx.params["id"], ctx.now), ctx.now, detail=True)

    def _stop(self, w: Workload, user: str, now: float) -> None:
        run = self._run(w)
        phase = phase_of(w, run)
        if phase in ("Succeeded", "Failed"):
            if self.cr_exists(w, run, now):
                w.phase_override, w.stopped_by = "Stopped", user  # the seed-era bug, kept on purpose
            return
        if phase == "Stopped":
            return
        w.stopped_by, w.stopped_at = user, now
        if not w.launched:
            return
        try:
            self.executor.stop(w.workload_id)
        except NotFound:
            pass

    async def stop(self, ctx: Ctx) -> Any:
        w = self.workloads.get(ctx.params["id"])
        if w is not None and not w.deleted:  # unknown ids: 200 null as well
            await anyio.to_thread.run_sync(self._stop, w, ctx.user, ctx.now)
        return None

    def _delete(self, w: Workload, user: str, now: float) -> None:
        self._stop(w, user, now)
        w.deleted = True

    async def delete(self, ctx: Ctx) -> Any:
        w = self.workloads.get(ctx.params["id"])
        if w is not None and not w.deleted:
            await anyio.to_thread.run_sync(self._delete, w, ctx.user, ctx.now)
        return None

    def _ids(self, ctx: Ctx) -> list[str]:
        body = ctx.json()
        ids = body.get("workloadIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise bad_request("the workloadIds is empty")
        return ids

    async def _batch(self, ctx: Ctx, act: Callable[[Workload], None]) -> Any:
        failed = []
        ids = self._ids(ctx)
        for workload_id in ids:
            w = self.workloads.get(workload_id)
            if w is None or w.deleted:
                failed.append(f"Workload {workload_id} not found.")
                continue
            await anyio.to_thread.run_sync(act, w)
        if len(failed) == len(ids):
            raise PrimusError(500, "Primus.00001", "Internal error. " + " ".join(failed))
        return None

    async def batch_stop(self, ctx: Ctx) -> Any:
        return await self._batch(ctx, lambda w: self._stop(w, ctx.user, ctx.now))

    async def batch_delete(self, ctx: Ctx) -> Any:
        return await self._batch(ctx, lambda w: self._delete(w, ctx.user, ctx.now))

    async def clone(self, ctx: Ctx) -> Any:
        def copy(w: Workload) -> None:
            ws = self.workspaces[w.workspace]
            self._insert(json.loads(json.dumps(w.body)), ws, w.command, ctx.user, self.clock())

        return await self._batch(ctx, copy)

    def _live(self, ctx: Ctx) -> tuple[Workload, RunState | None]:
        """The workload's Kubernetes object (logs, containers, service read it, not the database)."""
        w = self.workloads.get(ctx.params["id"])
        run = self._run(w) if w is not None else None
        if w is None or not self.cr_exists(w, run, ctx.now):
            raise cr_not_found(ctx.params["id"])
        return w, run

    def _pod(self, ctx: Ctx) -> tuple[Workload, RunState]:
        w, run = self._live(ctx)
        pod = ctx.params["pod"]
        if run is None or run.pod(pod) is None:
            raise PrimusError(404, "NotFound", f'pods "{pod}" not found')
        return w, run

    async def pod_logs(self, ctx: Ctx) -> Any:
        w, _ = self._pod(ctx)
        tail = ctx.int_query("tailLines", 1000, 1)
        since_s = ctx.int_query("sinceSeconds", 0, 1) if ctx.query.get("sinceSeconds") else None
        container = ctx.query.get("container") or "pytorch"
        if container != "pytorch":
            raise bad_request(f"container {container} is not valid for pod {ctx.params['pod']}")
        since = datetime.fromtimestamp(ctx.now - since_s, UTC) if since_s else None
        log = await anyio.to_thread.run_sync(
            lambda: self.executor.read_log(w.workload_id, ctx.params["pod"], max_lines=tail, since=since)
        )
        return {
            "workloadId": w.workload_id,
            "podId": ctx.params["pod"],
            "namespace": w.workspace,
            "logs": [*log.lines, ""],  # the text split on "\n": a trailing "" after the last newline
        }

    async def containers(self, ctx: Ctx) -> Any:
        self._pod(ctx)
        return {"containers": [{"name": "pytorch"}], "shells": ["bash", "sh", "zsh"]}

    async def service(self, ctx: Ctx) -> Any:
        w, _ = self._live(ctx)
        # Seed-era: the raw Kubernetes ServiceSpec (the seed shows {serviceName, clusterIP, ports}).
        return {
            "ports": [{"name": "pytorchjob-port", "protocol": "TCP", "port": 23456, "targetPort": 23456}],
            "selector": {
                "training.kubeflow.org/job-name": w.workload_id,
                "training.kubeflow.org/replica-type": "master",
            },
            "clusterIP": "None",
            "clusterIPs": ["None"],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        }

    async def search_logs(self, ctx: Ctx) -> Any:
        if not self.settings.log_search:
            raise PrimusError(500, "Primus.00001", "Internal error. The logging function is not enabled")
        w = self._lookup(ctx.params["id"], ctx.now)  # the database, not the CR: works after the TTL
        body = ctx.json() if ctx.raw else {}
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        offset, limit = int(body.get("offset") or 0), int(body.get("limit") or 100)
        if offset < 0 or limit < 1 or offset + limit > 10_000:
            raise bad_request("offset + limit must be at most 10000")
        order = str(body.get("order") or "asc")
        pods = [p for p in str(body.get("podNames") or "").split(",") if p] or [p for p, _ in w.pods]
        keywords = [str(k) for k in body.get("keywords") or []]
        since, until = parse_time(body.get("since")), parse_time(body.get("until"))
        hits: list[dict[str, Any]] = []

        def read() -> None:
            for pod in pods:
                try:
                    lines = self.executor.read_log(
                        w.workload_id,
                        pod,
                        since=datetime.fromtimestamp(since, UTC) if since else None,
                        until=datetime.fromtimestamp(until, UTC) if until else None,
                    ).lines
                except NotFound:
                    continue
                for n, line in enumerate(lines):
                    if all(k in line for k in keywords):
                        hits.append(
                            {
                                "_id": f"{pod}-{n}",
                                "_source": {
                                    "@timestamp": stamp(w.created_at) + ".000Z",
                                    "stream": "stdout",
                                    "message": line + "\n",
                                    "kubernetes": {
                                        "pod_name": pod,
                                        "host": f"{w.workspace}-node-0",
                                        "container_name": "pytorch",
                                        "labels": {},
                                    },
                                },
                            }
                        )

        await anyio.to_thread.run_sync(read)
        if order == "desc":
            hits.reverse()
        return {
            "took": 1,
            "timed_out": False,
            "hits": {"total": {"value": len(hits)}, "hits": hits[offset : offset + limit]},
        }
