"""PaiProvider labels, job templates, spot, hyperparameters and output models against respx-mocked
PAI-DLC / PaiStudio / ECS, bodies shaped as the official SDK models (pai-dlc 1.11.6, paistudio 2.6.2)
define them. Where seed 001 and the SDK differ, the SDK wins; ``test_seed_vs_api_*`` pin the differences."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx
from pai_fixtures import (
    DLC,
    ECS,
    GPU_IMAGE,
    NOW,
    STUDIO,
    TEMPLATE_ID,
    TRAIN_ID,
    body_of,
    error_response,
    get_job_body,
    job_item,
    job_template_body,
    json_response,
    list_job_templates_body,
    list_jobs_body,
    make_provider,
    output_models_body,
    price_body,
    query_of,
    spot_price_history_body,
    template_item,
    template_version,
    training_job_body,
    verify_signed,
)

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import JobRequest, JobStatus, MetricDefinition, Spec, TemplateConfig
from cloudjobs_mcp.server.providers.base import TemplateBackend
from cloudjobs_mcp.server.providers.pai import provider as pai_provider
from cloudjobs_mcp.server.providers.pai import templates as pai_templates

pytestmark = pytest.mark.anyio

GPU = "ecs.gn6i-c4g1.xlarge"
GPU_SPEC = Spec(instance_type=GPU, accelerator="GPU", cpu=4, memory_gb=15, gpu_count=1)
TPL_URL = f"{DLC}/api/v1/jobtemplates"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def provider() -> pai_provider.PaiProvider:
    return make_provider(pai_workspace_id="268")[0]


def request(**overrides: Any) -> JobRequest:
    values: dict[str, Any] = {
        "display_name": "train-1",
        "user_command": "python train.py",
        "job_type": "PyTorchJob",
        "ecs_spec": GPU,
        "worker_count": 2,
        "max_runtime_minutes": 30,
        "image": "img:1",
    }
    values.update(overrides)
    return JobRequest(**values)


def signed(req: httpx.Request, action: str, version: str = "2020-12-03") -> bool:
    return req.headers["x-acs-action"] == action and req.headers["x-acs-version"] == version and verify_signed(req)


# ----------------------------------------------------------------------------------- labels


async def test_dlc_labels_round_trip_tag_and_untag_resources() -> None:
    p = provider()
    with respx.mock() as router:
        tag = router.post(f"{DLC}/api/v1/tags").mock(return_value=json_response({"RequestId": "r1"}))
        untag = router.delete(f"{DLC}/api/v1/tags").mock(return_value=json_response({"RequestId": "r2"}))
        get = router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(
            side_effect=[
                json_response(get_job_body(tags={"owner": "ann"})),  # GetJob lagging behind TagResources
                json_response(get_job_body(tags={"owner": "ann", "team": "nlp", "stage": "dev"})),
            ]
        )
        job = await p.label_job("dlc-123", {"team": "nlp", "stage": "dev"})
        assert job.tags == {"owner": "ann", "team": "nlp", "stage": "dev"}
        req = tag.calls.last.request
        assert signed(req, "TagResources")
        assert req.headers["content-type"].startswith("application/json")
        assert body_of(req) == {
            "RegionId": "cn-hangzhou",
            "ResourceType": "Job",
            "ResourceId": ["dlc-123"],
            "Tag": [{"Key": "team", "Value": "nlp"}, {"Key": "stage", "Value": "dev"}],
        }

        job = await p.unlabel_job("dlc-123", ["team", "stage", "team"])
        assert job.tags == {"owner": "ann"}
        req = untag.calls.last.request
        assert signed(req, "UntagResources")
        assert req.content == b""
        # the shrink rule: lists as compact JSON strings in the query
        assert query_of(req) == {"ResourceType": "Job", "ResourceId": '["dlc-123"]', "TagKey": '["team","stage"]'}
        assert "ResourceId=%5B%22dlc-123%22%5D" in req.url.query.decode()
        assert get.call_count == 2


async def test_dlc_label_many_keys_chunks_by_twenty() -> None:
    p = provider()
    labels = {f"k{i}": str(i) for i in range(25)}
    with respx.mock() as router:
        tag = router.post(f"{DLC}/api/v1/tags").mock(return_value=json_response({"RequestId": "r"}))
        router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(return_value=json_response(get_job_body()))
        job = await p.label_job("dlc-123", labels)
    assert [len(body_of(c.request)["Tag"]) for c in tag.calls] == [20, 5]
    assert job.tags == labels


async def test_training_job_labels_round_trip() -> None:
    p = provider()
    url = f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/labels"
    with respx.mock() as router:
        update = router.post(url).mock(return_value=json_response({"RequestId": "r1"}))
        delete = router.delete(url).mock(return_value=json_response({"RequestId": "r2"}))
        router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}").mock(
            side_effect=[
                json_response(training_job_body(Labels=[{"Key": "RootModelID", "Value": "model-ad8cv770kl"}])),
                json_response(training_job_body(Labels=[])),
            ]
        )
        job = await p.label_job(TRAIN_ID, {"RootModelID": "model-ad8cv770kl"})
        assert job.tags == {"RootModelID": "model-ad8cv770kl"}
        req = update.calls.last.request
        assert signed(req, "UpdateTrainingJobLabels", "2022-01-12")
        assert body_of(req) == {"Labels": [{"Key": "RootModelID", "Value": "model-ad8cv770kl"}]}  # seed 001's body

        job = await p.unlabel_job(TRAIN_ID, ["RootModelID", "other"])
        assert job.tags == {}
        req = delete.calls.last.request
        assert signed(req, "DeleteTrainingJobLabels", "2022-01-12")
        assert query_of(req) == {"Keys": "RootModelID,other"}  # a comma list, not JSON


async def test_label_keys_checked_before_any_call() -> None:
    p = provider()
    with respx.mock():
        for bad in ({"aliyun:x": "1"}, {"acs:y": "1"}, {"k" * 129: "1"}, {"see https://x": "1"}):
            with pytest.raises(InvalidRequest):
                await p.label_job("dlc-123", bad)
        with pytest.raises(InvalidRequest):
            await p.label_job("bad id", {"a": "b"})


# -------------------------------------------------------------------------------- templates

CONFIG = TemplateConfig(
    user_command="python train.py --lr $HP_LR",
    job_type="PyTorchJob",
    ecs_spec=GPU,
    worker_count=2,
    image=GPU_IMAGE,
    envs={"MODE": "fast"},
    max_runtime_minutes=60,
    hyperparameters={"lr": "0.01", "batch-size": "32"},
)
CONSTRAINTS: dict[str, Any] = {
    "$.image": "locked",
    "$.user_command": "locked",
    "$.ecs_spec": "overridable",
    "$.envs.MODE": "required",
    "$.hyperparameters.lr": "overridable",
}
PAI_CONSTRAINTS = {
    "JobSpecs[0].Image": "locked",
    "UserCommand": "locked",
    "JobSpecs[0].EcsSpec": "overridable",
    "Envs.MODE": "required",
    "Envs.HP_LR": "overridable",
}
CONTENT = {
    "WorkspaceId": "268",
    "JobType": "PyTorchJob",
    "UserCommand": "python train.py --lr $HP_LR",
    "JobSpecs": [{"Type": "Worker", "PodCount": 2, "Image": GPU_IMAGE, "EcsSpec": GPU}],
    "Envs": {
        "MODE": "fast",
        "HP_LR": "0.01",
        "HP_BATCH_SIZE": "32",
        "CLOUDJOBS_HYPERPARAMETERS": '{"batch-size":"32","lr":"0.01"}',
    },
    "JobMaxRunningTimeMinutes": 60,
}


async def test_template_backend_is_dlc_and_create_sends_content_string() -> None:
    p = provider()
    backend = p.template_backend()
    assert isinstance(backend, pai_templates.DlcTemplates)
    typed: TemplateBackend = backend  # the protocol, statically
    assert typed.source == "PAI-DLC job templates"
    with respx.mock() as router:
        listing = router.get(TPL_URL).mock(return_value=json_response(list_job_templates_body([])))
        create = router.post(TPL_URL).mock(
            return_value=json_response(
                {
                    "RequestId": "r",
                    "TemplateId": TEMPLATE_ID,
                    "TemplateName": "bert-base",
                    "Version": 1,
                    "DefaultVersion": 1,
                    "WorkspaceId": "268",
                    "GmtCreateTime": "2024-01-01T00:00Z",
                }
            )
        )
        tpl = await backend.create("bert-base", CONFIG, CONSTRAINTS, "BERT")
    assert query_of(listing.calls.last.request) == {
        "WorkspaceId": "268",
        "TemplateName": "bert-base",
        "PageNumber": "1",
        "PageSize": "50",
    }
    req = create.calls.last.request
    assert signed(req, "CreateJobTemplate")
    body = body_of(req)
    assert isinstance(body["Content"], str)  # a JSON *string* of a CreateJob body
    assert json.loads(body["Content"]) == CONTENT
    assert body == {
        "TemplateName": "bert-base",
        "WorkspaceId": "268",
        "Content": body["Content"],
        "Constraints": PAI_CONSTRAINTS,
        "Description": "BERT",
    }
    assert tpl.template_id == TEMPLATE_ID and tpl.version == 1 and tpl.default_version == 1 and tpl.versions == [1]
    assert tpl.config == CONFIG
    assert tpl.constraints == CONSTRAINTS
    assert tpl.created_at == datetime(2024, 1, 1, tzinfo=UTC)


async def test_template_create_existing_name_is_invalid() -> None:
    backend = provider().template_backend()
    assert backend is not None
    with respx.mock() as router:
        router.get(TPL_URL).mock(
            return_value=json_response(list_job_templates_body([template_item(name="bert-base-2"), template_item()]))
        )
        with pytest.raises(InvalidRequest, match="update it"):
            await backend.create("bert-base", CONFIG, {}, "")


async def test_template_update_get_versions_default_and_delete() -> None:
    backend = provider().template_backend()
    assert backend is not None
    v1 = template_version(1, CONTENT, PAI_CONSTRAINTS)
    config2 = CONFIG.model_copy(update={"ecs_spec": "ecs.gn7i-c8g1.2xlarge", "worker_count": 4})
    content2 = pai_templates.content_from(config2, "268")
    v2 = template_version(2, content2, {"$.UserCommand": "locked"})  # a JSONPath root is read too
    url = f"{TPL_URL}/{TEMPLATE_ID}"
    with respx.mock() as router:
        get = router.get(url).mock(
            side_effect=[
                json_response(job_template_body([v1])),  # update resolves the id
                json_response(job_template_body([v1, v2])),  # the new version
                json_response(job_template_body([v1, v2])),  # get(v1)
                json_response(job_template_body([v1, v2])),  # get(v7): no such version
                json_response(job_template_body([v1, v2])),  # set_default_version checks the version
                json_response(job_template_body([v1, v2], default_version=2)),
                json_response(job_template_body([v1, v2], default_version=2)),  # delete resolves
            ]
        )
        put = router.put(url).mock(
            return_value=json_response(
                {"RequestId": "r", "Version": 2, "DefaultVersion": 1, "VersionCreated": True, "GmtModifyTime": "x"}
            )
        )
        default = router.put(f"{url}/defaultversion").mock(
            return_value=json_response({"RequestId": "r", "DefaultVersion": 2, "GmtModifyTime": "x"})
        )
        delete = router.delete(url).mock(return_value=json_response({"RequestId": "r", "TemplateId": TEMPLATE_ID}))

        tpl = await backend.update(TEMPLATE_ID, config2, {"$.user_command": "locked"}, "v2")
        assert tpl.version == 2 and tpl.default_version == 1 and tpl.versions == [1, 2]
        assert tpl.config == config2
        assert tpl.constraints == {"$.user_command": "locked"}
        req = put.calls.last.request
        assert signed(req, "UpdateJobTemplate")
        assert body_of(req) == {
            "Content": json.dumps(content2, separators=(",", ":")),
            "Constraints": {"UserCommand": "locked"},
            "SetAsDefault": False,
            "Description": "v2",
        }
        assert all(query_of(c.request) == {"Version": "all"} for c in get.calls)

        old = await backend.get(TEMPLATE_ID, 1)
        assert old.version == 1 and old.config == CONFIG and old.constraints == CONSTRAINTS
        with pytest.raises(NotFound):
            await backend.get(TEMPLATE_ID, 7)

        moved = await backend.set_default_version(TEMPLATE_ID, 2)
        assert moved.default_version == 2 and moved.version == 2
        assert body_of(default.calls.last.request) == {"Version": 2}
        assert signed(default.calls.last.request, "SetJobTemplateDefaultVersion")

        await backend.delete(TEMPLATE_ID)
        assert signed(delete.calls.last.request, "DeleteJobTemplate")
        assert delete.calls.last.request.url.query == b""


async def test_template_list_reads_each_default_version_and_get_by_name() -> None:
    backend = provider().template_backend()
    assert backend is not None
    other = "tplother000001"
    with respx.mock() as router:
        router.get(TPL_URL).mock(
            return_value=json_response(list_job_templates_body([template_item(), template_item(other, "gpt")]))
        )
        router.get(f"{TPL_URL}/{TEMPLATE_ID}").mock(
            return_value=json_response(job_template_body([template_version(1, CONTENT, PAI_CONSTRAINTS)]))
        )
        router.get(f"{TPL_URL}/{other}").mock(
            return_value=json_response(
                job_template_body([template_version(1, {"JobType": "TFJob"}, {})], template_id=other, name="gpt")
            )
        )
        router.get(f"{TPL_URL}/gpt").mock(return_value=error_response("TemplateNotFound", "not found", 404))
        listed = await backend.list()
        assert [t.template_id for t in listed] == [TEMPLATE_ID, other]
        assert listed[1].config == TemplateConfig(job_type="TFJob")
        by_name = await backend.get("gpt")
        assert by_name.template_id == other


async def test_template_constraints_bad_paths_rejected() -> None:
    with pytest.raises(InvalidRequest):
        pai_templates.constraints_to_pai({"$.nonsense": "locked"})
    with pytest.raises(InvalidRequest):
        pai_templates.constraints_to_pai({"$.ecs_spec": "frozen"})


# --------------------------------------------------------------- create_job / GetJob mapping


async def test_create_job_body_template_spot_hyperparameters_metrics() -> None:
    p = provider()
    req = request(
        template_id=TEMPLATE_ID,
        template_version=2,
        spot=True,
        spot_price_limit=6.0,
        hyperparameters={"lr": "0.01", "epochs": "3"},
        metric_definitions=[MetricDefinition(name="loss", regex="loss=([0-9.]+)")],
        envs={"MODE": "fast"},
    )
    p.validate_request(req, GPU_SPEC)
    body = await p.create_job_body(req)
    assert body["TemplateId"] == TEMPLATE_ID and body["TemplateVersion"] == 2
    assert body["JobSpecs"] == [
        {
            "Type": "Worker",
            "Image": "img:1",
            "PodCount": 2,
            "EcsSpec": GPU,
            "UseSpotInstance": True,
            # SpotSpec.SpotPriceLimit is per minute: 6.0 an hour → 0.1 a minute
            "SpotSpec": {"SpotStrategy": "SpotWithPriceLimit", "SpotPriceLimit": 0.1},
        }
    ]
    assert body["Envs"] == {
        "MODE": "fast",
        "HP_LR": "0.01",
        "HP_EPOCHS": "3",
        "CLOUDJOBS_HYPERPARAMETERS": '{"epochs":"3","lr":"0.01"}',
        "CLOUDJOBS_METRIC_DEFINITIONS": '[{"name":"loss","regex":"loss=([0-9.]+)"}]',
    }
    body = await p.create_job_body(request(job_type="RayJob", spot=True))
    assert [s["SpotSpec"] for s in body["JobSpecs"]] == [{"SpotStrategy": "SpotAsPriceGo"}] * 2
    assert "TemplateId" not in body and "Envs" not in body


async def test_create_job_posts_and_reads_back_hyperparameters_spot_template() -> None:
    p = provider()
    req = request(
        spot=True,
        hyperparameters={"lr": "0.01"},
        metric_definitions=[MetricDefinition(name="loss", regex="loss=([0-9.]+)")],
        template_id=TEMPLATE_ID,
        template_version=1,
    )
    with respx.mock() as router:
        create = router.post(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response({"JobId": "dlc-9", "RequestId": "r"})
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-9").mock(
            side_effect=lambda r: json_response(
                get_job_body(
                    "dlc-9",
                    Envs=body_of(create.calls.last.request)["Envs"],
                    JobSpecs=body_of(create.calls.last.request)["JobSpecs"],
                    TemplateId=TEMPLATE_ID,
                    TemplateVersion=1,
                )
            )
        )
        job = await p.create_job(req)
    assert signed(create.calls.last.request, "CreateJob")
    assert job.hyperparameters == {"lr": "0.01"}
    assert job.metric_definitions == [MetricDefinition(name="loss", regex="loss=([0-9.]+)")]
    assert job.spot is True
    assert job.template_id == TEMPLATE_ID and job.template_version == 1


def test_job_from_getjob_without_our_envs_and_hp_fallback() -> None:
    job = pai_provider.job_from(get_job_body())
    assert job.hyperparameters == {} and job.metric_definitions == [] and not job.spot and job.template_id is None
    job = pai_provider.job_from(get_job_body(Envs={"HP_LR": "0.1", "CLOUDJOBS_METRIC_DEFINITIONS": "not json"}))
    assert job.hyperparameters == {"LR": "0.1"} and job.metric_definitions == []
    # ListJobs items carry TemplateId (no version)
    item = {**job_item("dlc-1"), "TemplateId": TEMPLATE_ID, "TemplateName": "bert-base"}
    assert pai_provider.job_from(item).template_id == TEMPLATE_ID


def test_training_job_hyperparameters_and_spot() -> None:
    body = training_job_body(HyperParameters=[{"Name": "lr", "Value": "0.01"}])
    body["ComputeResource"]["UseSpotInstance"] = True
    job = pai_provider.studio.training_job_from(body)
    assert job.hyperparameters == {"lr": "0.01"} and job.spot is True


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"spot_price_limit": 1.0}, "needs spot"),
        ({"spot": True, "spot_price_limit": 0.0}, "> 0"),
        ({"template_version": 2}, "needs template_id"),
        ({"hyperparameters": {"": "1"}}, "not valid"),
        ({"hyperparameters": {"a-b": "1", "A_B": "2"}}, "both become"),
        ({"hyperparameters": {"lr": "1"}, "envs": {"HP_LR": "2"}}, "set by this server"),
    ],
)
def test_validate_rejects_bad_spot_template_hyperparameters(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidRequest, match=match):
        provider().validate_request(request(**overrides), GPU_SPEC)


# --------------------------------------------------------------------------------- spot prices


async def test_spot_price_history_maps_discount_to_price_oldest_first() -> None:
    p = provider()
    points = [
        ("2023-12-31T22:00:00Z", 0.2, "cn-hangzhou-k"),
        ("2023-12-31T20:00:00Z", 0.1, "cn-hangzhou-j"),
        ("2023-12-31T23:00:00Z", 15, "cn-hangzhou-k"),  # a percentage
    ]
    with respx.mock() as router:
        spot = router.get(f"{STUDIO}/api/v1/spots/{GPU}/pricehistory").mock(
            return_value=json_response(spot_price_history_body(points, GPU))
        )
        price = router.post(f"{ECS}/").mock(return_value=json_response(price_body(10.0)))
        history = await p.spot_price_history(GPU, 6)
    req = spot.calls.last.request
    assert signed(req, "GetSpotPriceHistory", "2022-01-12")
    assert query_of(req) == {
        "StartTime": "2023-12-31T18:00:00Z",
        "EndTime": "2024-01-01T00:00:00Z",
        "Order": "asc",
        "PageNumber": "1",
        "PageSize": "100",
    }
    assert price.call_count == 1
    assert [(h.time.hour, h.price, h.zone) for h in history] == [
        (20, 1.0, "cn-hangzhou-j"),
        (22, 2.0, "cn-hangzhou-k"),
        (23, 1.5, "cn-hangzhou-k"),
    ]


async def test_spot_price_history_bounded_and_limits() -> None:
    p = provider()
    start = NOW - timedelta(hours=100)
    points = [((start + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"), 0.3, "z") for i in range(600)]
    with respx.mock() as router:
        router.get(f"{STUDIO}/api/v1/spots/{GPU}/pricehistory").mock(
            return_value=json_response(spot_price_history_body(points, GPU))
        )
        router.post(f"{ECS}/").mock(return_value=json_response(price_body(10.0)))
        history = await p.spot_price_history(GPU, 120)
    assert len(history) == pai_provider.MAX_SPOT_POINTS
    assert history == sorted(history, key=lambda h: h.time)
    assert history[0].time == start and history[-1].time == start + timedelta(minutes=5990)
    with respx.mock():
        for hours in (0, -1, 169):
            with pytest.raises(InvalidRequest):
                await p.spot_price_history(GPU, hours)
    with respx.mock() as router:  # no history: no price lookup either
        router.get(f"{STUDIO}/api/v1/spots/{GPU}/pricehistory").mock(
            return_value=json_response(spot_price_history_body([], GPU))
        )
        assert await p.spot_price_history(GPU, 1) == []


# ------------------------------------------------------------------------------- output models


async def test_output_models_training_job_and_dlc_note() -> None:
    p = provider()
    uri = "oss://bucket.oss-cn-hangzhou.aliyuncs.com/bert/model/"
    with respx.mock() as router:
        out = router.get(f"{STUDIO}/api/v1/trainingjobs/{TRAIN_ID}/outputmodels").mock(
            return_value=json_response(output_models_body([("model", uri), ("checkpoints", uri + "ckpt/")]))
        )
        router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(
            return_value=json_response(
                get_job_body(
                    DataSources=[{"DataSourceId": "d-1", "MountPath": "/mnt/data/", "Uri": "oss://bucket/data/"}]
                )
            )
        )
        models = await p.output_models(TRAIN_ID)
        assert signed(out.calls.last.request, "ListTrainingJobOutputModels", "2022-01-12")
        assert [(m.name, m.uri) for m in models.models] == [("model", uri), ("checkpoints", uri + "ckpt/")]
        assert models.total == 2 and not models.truncated
        dlc = await p.output_models("dlc-123")
    assert dlc.models == [] and dlc.total == 0
    assert dlc.note.startswith("PAI-DLC keeps no list of outputs")
    assert "/mnt/data/ ← oss://bucket/data/" in dlc.note


# ------------------------------------------------------------------------------ training listing


async def test_list_jobs_can_include_training_jobs_newest_first_without_their_dlc_jobs() -> None:
    p = provider()
    train_item = {**training_job_body(), "GmtCreateTime": "2024-01-01T00:05:00Z", "DlcJobId": "dlc-runner"}
    with respx.mock() as router:
        router.get(f"{DLC}/api/v1/jobs").mock(
            return_value=json_response(
                list_jobs_body(
                    [job_item("dlc-new", created="2024-01-01T00:09:00Z"), job_item("dlc-runner"), job_item("dlc-old")]
                )
            )
        )
        listing = router.get(f"{STUDIO}/api/v1/trainingjobs").mock(
            return_value=json_response({"RequestId": "r", "TotalCount": 1, "TrainingJobs": [train_item]})
        )
        jobs = await p.list_jobs(include_training_jobs=True, status=JobStatus.RUNNING)
        assert [j.job_id for j in jobs] == ["dlc-new", TRAIN_ID, "dlc-old"]
        assert query_of(listing.calls.last.request)["SortBy"] == "GmtCreateTime"
        assert [j.job_id for j in await p.list_jobs()] == ["dlc-new", "dlc-runner", "dlc-old"]
        assert listing.call_count == 1  # off by default


# ------------------------------------------------------------------------------ seed vs API


def test_seed_vs_api_differences() -> None:
    """Seed 001 (a gateway's ``api.aliyun.com/api/<product>/<version>/<Action>`` view, Bearer token) vs the
    SDK's ROA routes (ACS3-HMAC-SHA256): the SDK wins.

    * DeleteJobTemplate: seed ``?TemplateId=`` in the query; SDK ``DELETE /api/v1/jobtemplates/{TemplateId}``.
    * UpdateTrainingJobLabels: seed ``…/UpdateTrainingJobLabels/{id}/labels``; SDK
      ``POST /api/v1/trainingjobs/{id}/labels`` (same body).
    * Constraints keys: seed ``JobSpecs[0].Image`` (no ``$.``) — sent so; a ``$.`` root is read too.
    * Seed lists ``Keys`` and ``Labels`` as one "Manage labels" table; the SDK splits them over
      UpdateTrainingJobLabels (body Labels) and DeleteTrainingJobLabels (query Keys, a comma string).
    * GetSpotPriceHistory (not in the seed) returns ``SpotDiscount``, not a price.
    """
    assert pai_templates.constraints_from_pai({"JobSpecs[0].Image": "locked"}, TemplateConfig()) == {
        "$.image": "locked"
    }
    assert pai_templates.constraints_from_pai({"$.JobSpecs[0].Image": "locked"}, TemplateConfig()) == {
        "$.image": "locked"
    }
    # the seed's own Content example parses
    seed_content = (
        '{"WorkspaceId":"15****05","JobType":"PyTorchJob","UserCommand":"echo hello","JobSpecs":[{"Type":"Worker",'
        '"PodCount":1,"Image":"img","EcsSpec":"ecs.gn7i-c8g1.2xlarge"}],"ResourceType":"ECS",'
        '"_ResourcePaymentType":"PostPaid","CredentialConfig":{"EnableCredentialInject":false},'
        '"Accessibility":"PRIVATE","Settings":{"JobReservedMinutes":0,"Tags":{}}}'
    )
    config = pai_templates.config_from(pai_templates.parse_content(seed_content))
    assert config == TemplateConfig(
        job_type="PyTorchJob", user_command="echo hello", worker_count=1, image="img", ecs_spec="ecs.gn7i-c8g1.2xlarge"
    )
