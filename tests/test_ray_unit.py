"""The ray provider's pure parts: specs from nodes, Ray's text/plain errors, ids, addresses, job mapping."""

from __future__ import annotations

import httpx
import pytest

from cloudjobs_mcp.server.errors import AuthenticationError, ConfigurationError, InvalidRequest, NotFound
from cloudjobs_mcp.server.http import RetryPolicy
from cloudjobs_mcp.server.models import JobStatus
from cloudjobs_mcp.server.providers.ray.api import ALREADY_EXISTS, FILE_MISSING, RayApi, address_of, camel, check_job_id
from cloudjobs_mcp.server.providers.ray.provider import _check_capacity, _to_job, driver_package
from cloudjobs_mcp.server.providers.ray.specs import cluster_shapes

GIB = 1024**3
HEAD = {
    "node_id": "n1",
    "node_ip": "10.0.0.1",
    "state": "ALIVE",
    "resources_total": {"CPU": 8.0, "memory": 32.0 * GIB, "node:10.0.0.1": 1.0, "object_store_memory": 1e9},
}
GPU = {
    "node_id": "n2",
    "node_ip": "10.0.0.2",
    "state": "ALIVE",
    "resources_total": {"CPU": 16.0, "GPU": 4.0, "accelerator_type:A100": 1.0, "memory": 64.0 * GIB},
}
ACCEL = {
    "node_id": "n3",
    "node_ip": "10.0.0.3",
    "state": "ALIVE",
    "resources_total": {"CPU": 2.0, "accel_h100": 2.0, "memory": 8.0 * GIB},
}
DEAD = {"node_id": "n4", "node_ip": "10.0.0.4", "state": "DEAD", "resources_total": {"CPU": 64.0}}


def test_specs_are_slices_of_the_live_nodes_with_what_is_free_now() -> None:
    usage = {"n1": {"CPU": [6.0, 8.0]}, "n3": {"accelH100": [1.0, 2.0], "CPU": [0.0, 2.0]}}  # Ray camel-cases
    shapes = {s.name: s for s in cluster_shapes([HEAD, GPU, ACCEL, DEAD], usage)}
    assert "ray-64cpu" not in shapes  # a dead node offers nothing
    one = shapes["ray-1cpu"]
    assert one.bundle == {"CPU": 1.0} and one.capacity == 8 + 16 + 2 and one.free == 2 + 16 + 2
    assert shapes["ray-16cpu"].capacity == 1 and shapes["ray-16cpu"].nodes == ["10.0.0.2"]
    gpu = shapes["ray-4cpu-1gpu-A100"]
    assert gpu.bundle == {"CPU": 4.0, "GPU": 1.0, "accelerator_type:A100": 0.001}
    assert (gpu.accelerator, gpu.gpu_count, gpu.gpu_type, gpu.capacity) == ("GPU", 1, "A100", 4)
    assert shapes["ray-16cpu-4gpu-A100"].capacity == 1
    accel = shapes["ray-1cpu-1xaccel_h100"]
    assert accel.bundle == {"CPU": 1.0, "accel_h100": 1.0} and accel.gpu_type == "accel_h100"
    assert (accel.capacity, accel.free) == (2, 1)
    assert shapes["ray-2cpu"].memory_gb == 8.0  # the smallest share among the nodes that host it


def test_an_impossible_count_is_refused_with_what_the_cluster_holds() -> None:
    shape = {s.name: s for s in cluster_shapes([HEAD, ACCEL], {})}["ray-4cpu"]
    _check_capacity(shape, 2)
    with pytest.raises(InvalidRequest, match=r"No placement can ever hold 3 workers of ray-4cpu .* hold at most 2"):
        _check_capacity(shape, 3)


def _api() -> RayApi:
    return RayApi("http://127.0.0.1:1", "secret-token-value", httpx.AsyncClient(), RetryPolicy())


def _error(status: int, text: str) -> Exception:
    return _api().parse_error(httpx.Response(status, text=text, headers={"content-type": "text/plain"}))


def test_ray_text_plain_errors_become_clear_messages() -> None:
    err = _error(401, "Unauthorized: Missing authentication token")
    assert isinstance(err, AuthenticationError) and "set RAY_AUTH_TOKEN" in str(err)
    err = _error(403, "Forbidden: Invalid authentication token")
    assert isinstance(err, AuthenticationError) and "rejected the token" in str(err)
    err = _error(404, "Job cloudjobs-x does not exist")
    assert isinstance(err, NotFound) and str(err) == "Ray: Job cloudjobs-x does not exist."
    assert "dashboard address" in str(_error(404, "404: Not Found"))
    dup = _error(
        500, "Traceback (most recent call last):\n  File ...\nValueError: Job with submission_id a already exists."
    )
    assert getattr(dup, "code", "") == ALREADY_EXISTS and not getattr(dup, "retryable", True)
    assert str(dup) == "Ray: Job with submission_id a already exists."
    assert getattr(_error(500, "A file is not found at: /tmp/x/logs/y"), "code", "") == FILE_MISSING
    crash = _error(500, "500 Internal Server Error\n\nServer got itself in trouble")
    assert getattr(crash, "retryable", False) and "Server got itself in trouble" in str(crash)
    bad = _error(400, "Traceback ...\nTypeError: __init__() got an unexpected keyword argument 'x'")
    assert "unexpected keyword argument" in str(bad)
    for e in (err, dup, crash, bad):
        assert "secret-token-value" not in str(e) + repr(e)


def test_ids_and_addresses_are_checked_before_reaching_ray() -> None:
    assert check_job_id("cloudjobs-q-0123abcd") == "cloudjobs-q-0123abcd"
    for bad in ("a/b", "x" * 129, "", "job id"):
        with pytest.raises(InvalidRequest, match="is not a Ray job id"):
            check_job_id(bad)
    assert address_of("127.0.0.1:8265") == "http://127.0.0.1:8265"
    assert address_of("https://ray.example.test/") == "https://ray.example.test"
    with pytest.raises(ConfigurationError, match="CLOUDJOBS_RAY_ADDRESS"):
        address_of(None)
    assert camel("node:__internal_head__") == "node:InternalHead" and camel("accel_h100") == "accelH100"


def test_job_mapping_keeps_ray_status_and_reads_the_driver_state() -> None:
    meta = {"cloudjobs.workers": "2", "cloudjobs.job_type": "PyTorchJob", "cloudjobs.name": "n", "team": "a"}
    raw = {"submission_id": "cloudjobs-q-1", "status": "RUNNING", "metadata": meta, "start_time": 1_700_000_000_000}
    waiting = _to_job(raw, {"phase": "WaitingForResources", "pods": []})
    assert (
        waiting.status == JobStatus.QUEUING and waiting.raw_status == "RUNNING" and "waiting" in (waiting.reason or "")
    )
    assert [p.pod_id for p in waiting.pods] == ["cloudjobs-q-1-master-0", "cloudjobs-q-1-worker-0"]
    assert waiting.tags == {"team": "a"}
    state = {"phase": "Stopped", "reason": "max runtime of 6 s exceeded", "reason_code": "MaxRuntimeExceeded"}
    stopped = _to_job({**raw, "status": "STOPPED", "end_time": 1_700_000_010_000}, state)
    assert stopped.status == JobStatus.STOPPED and stopped.reason_code == "MaxRuntimeExceeded"
    assert all(p.status == "Stopped" for p in stopped.pods)
    foreign = _to_job(
        {"submission_id": "raysubmit_x", "status": "PENDING", "message": "Job has not started yet."}, None
    )
    assert foreign.status == JobStatus.QUEUING and [p.pod_id for p in foreign.pods] == ["raysubmit_x-driver"]


def test_the_driver_package_is_content_addressed_and_stable() -> None:
    name, data = driver_package()
    again, same = driver_package()
    assert name == again and data == same and name.startswith("_ray_pkg_") and name.endswith(".zip")
