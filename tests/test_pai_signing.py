"""ACS3-HMAC-SHA256 signing: the official signer's known answers, byte for byte, and real requests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from pai_fixtures import (
    AIWS,
    DLC,
    ECS,
    NOW,
    get_job_body,
    image,
    json_response,
    list_jobs_body,
    make_provider,
    price_body,
    query_of,
    verify_signed,
)

from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.models import JobRequest
from cloudjobs_mcp.server.providers.pai import endpoints, signing
from cloudjobs_mcp.server.providers.pai.credentials import Credentials

pytestmark = pytest.mark.anyio

VECTORS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "data" / "acs3_signatures.json").read_text())


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_reproduces_byte_for_byte(vector: dict[str, Any]) -> None:
    body = vector["body"].encode()
    assert vector["headers"]["x-acs-content-sha256"] == signing.hash_body(body)
    auth = signing.authorization(
        vector["access_key_id"],
        vector["access_key_secret"],
        vector["method"],
        vector["path"],
        vector["query"],
        vector["headers"],
        signing.hash_body(body),
    )
    assert auth == vector["authorization"]
    # ... and a verifying server accepts exactly that request
    ak_id, signed, _ = signing.parse_authorization(auth)
    assert ak_id == vector["access_key_id"]
    assert signed == sorted(vector["headers"])
    assert signing.verify(
        vector["access_key_secret"],
        vector["method"],
        vector["path"],
        signing.canonical_query(vector["query"]),
        {**vector["headers"], "authorization": auth, "accept-encoding": "gzip"},
        body,
    )
    assert not signing.verify("wrong", vector["method"], vector["path"], "", {"authorization": auth}, body)


def test_kat1_canonical_request_and_string_to_sign() -> None:
    vector = VECTORS[1]
    canonical = signing.canonical_request(
        "GET", "/api/v1/jobs/dlc-123", {}, vector["headers"], list(vector["headers"]), signing.EMPTY_SHA256
    )
    assert canonical == (
        "GET\n/api/v1/jobs/dlc-123\n\n"
        "host:pai-dlc.cn-hangzhou.aliyuncs.com\nx-acs-action:GetJob\n"
        f"x-acs-content-sha256:{signing.EMPTY_SHA256}\nx-acs-date:2024-01-01T00:00:00Z\n"
        "x-acs-signature-nonce:n1\nx-acs-version:2020-12-03\n\n"
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n"
        f"{signing.EMPTY_SHA256}"
    )
    assert signing.string_to_sign(canonical) == (
        "ACS3-HMAC-SHA256\nd45e3d25a291ba808e7c276b1747fdad9cb6c4ea619b690214bb346774046593"
    )


# The official product clients sign their full header set (reference §6.2, kat_fullclient.out).
_UA = "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2"
_CREATE_ECS = (
    '{"DisplayName":"t","Envs":{"A":"1"},"JobSpecs":[{"EcsSpec":"ecs.gn6i-c4g1.xlarge","ElasticSpotSpecs":[],'
    '"Image":"dsw-registry.cn-hangzhou.cr.aliyuncs.com/pai/pytorch:2.1","LocalMountSpecs":[],"PodCount":1,'
    '"StartupDependencies":[],"Type":"Worker"}],"JobType":"PyTorchJob","ThirdpartyLibs":["numpy"],'
    '"UserCommand":"echo hi","WorkspaceId":"12345"}'
)
_CREATE_QUOTA = (
    '{"DisplayName":"t","JobSpecs":[{"ElasticSpotSpecs":[],"Image":"img","LocalMountSpecs":[],"PodCount":2,'
    '"ResourceConfig":{"CPU":"8","GPU":"1","Memory":"32Gi","SharedMemory":"16Gi"},"StartupDependencies":[],'
    '"Type":"Worker"}],"JobType":"PyTorchJob","ResourceId":"quota123","UserCommand":"echo hi"}'
)
FULL_CLIENT = [
    (
        "GetJob",
        "GET",
        "/api/v1/jobs/dlc-123",
        {},
        "",
        "pai-dlc",
        "ce8f65cd6b4961217d30a4588a38827029636565c59395e69e9044b23d0ff315",
    ),
    (
        "GetJob",
        "GET",
        "/api/v1/jobs/dlc-123",
        {"NeedDetail": "True"},
        "",
        "pai-dlc",
        "ef9f22177f28f9335dfabfca0d8e204468c9b9275494ab7c368e4430ccb16dfc",
    ),
    (
        "CreateJob",
        "POST",
        "/api/v1/jobs",
        {},
        _CREATE_ECS,
        "pai-dlc",
        "695526454e3e97767c3f45ade3cab5450760fba2c763980b0e1d607bf8fa94e0",
    ),
    (
        "CreateJob",
        "POST",
        "/api/v1/jobs",
        {},
        _CREATE_QUOTA,
        "pai-dlc",
        "47b135fcdc529ca0ee184306f50b9204a81fecbc9554bae6b892bd60ecbf8548",
    ),
    (
        "StopJob",
        "POST",
        "/api/v1/jobs/dlc-123/stop",
        {},
        "",
        "pai-dlc",
        "76b49a0dc37fb57bce4993cffc8051270971c28392812002bc437818d50e99df",
    ),
    (
        "DeleteJob",
        "DELETE",
        "/api/v1/jobs/dlc-123",
        {},
        "",
        "pai-dlc",
        "f27914f75e9fabdc019266b69d7922bb31cff4e23f8c7b0d4ee7e0c113c3ec04",
    ),
    (
        "ListJobs",
        "GET",
        "/api/v1/jobs",
        {
            "PageNumber": "1",
            "PageSize": "50",
            "ShowOwn": "True",
            "Status": "Running",
            "Tags": '{"k":"v"}',
            "WorkspaceId": "12345",
        },
        "",
        "pai-dlc",
        "00b36efe8275924e990ca5ed578b100cf4843a9acd332fed6ed98fa4eea59067",
    ),
    (
        "GetPodLogs",
        "GET",
        "/api/v1/jobs/dlc-123/pods/dlc-123-worker-0/logs",
        {"MaxLines": "100", "StartTime": "2024-01-01T00:00:00Z"},
        "",
        "pai-dlc",
        "8a822b0c22ba1a78d995d409b02f32f2596b7b8941031fe946ae3568c685b037",
    ),
    (
        "ListEcsSpecs",
        "GET",
        "/api/v1/ecsspecs",
        {"AcceleratorType": "GPU", "PageSize": "100"},
        "",
        "pai-dlc",
        "5d10dba005460238060e97e1ab65ea32f2b2967f59573e12f483c4f18e56e4b6",
    ),
    (
        "ListImages",
        "GET",
        "/api/v1/images",
        {"Labels": "system.supported.dlc=true,system.chipType=GPU", "PageSize": "50", "Verbose": "True"},
        "",
        "aiworkspace",
        "36c6cdf4db21efa2931844e7c935d2d3372853d2a44aa908330d59039ace739a",
    ),
    (
        "DescribePrice",
        "POST",
        "/",
        {
            "InstanceType": "ecs.gn6i-c4g1.xlarge",
            "PriceUnit": "Hour",
            "RegionId": "cn-hangzhou",
            "ResourceType": "instance",
            "SystemDisk.Category": "cloud_essd",
            "SystemDisk.Size": "40",
        },
        "",
        "ecs",
        "8a002f595cb52399cfea1824c59b04fbb8ffc85534d78af473b4c4da68b94b25",
    ),
]
_HOSTS = {
    "pai-dlc": ("pai-dlc.cn-hangzhou.aliyuncs.com", "2020-12-03"),
    "aiworkspace": ("aiworkspace.cn-hangzhou.aliyuncs.com", "2021-02-04"),
    "ecs": ("ecs-cn-hangzhou.aliyuncs.com", "2014-05-26"),
}


def _sdk_headers(action: str, product: str, body: bytes, **extra: str) -> dict[str, str]:
    host, version = _HOSTS[product]
    headers = {
        "host": host,
        "x-acs-version": version,
        "x-acs-action": action,
        "user-agent": _UA,
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "n1",
        "accept": "application/json",
        "x-acs-content-sha256": signing.hash_body(body),
        "x-acs-credentials-provider": "static_ak",
        **extra,
    }
    if body:
        headers["content-type"] = signing.JSON_CONTENT_TYPE
    return headers


@pytest.mark.parametrize("case", FULL_CLIENT, ids=[f"{c[0]}-{i}" for i, c in enumerate(FULL_CLIENT)])
def test_full_sdk_header_set_reproduces(case: tuple[Any, ...]) -> None:
    action, method, path, query, body, product, expected = case
    raw = body.encode()
    auth = signing.authorization(
        "testid", "testsecret", method, path, query, _sdk_headers(action, product, raw), signing.hash_body(raw)
    )
    assert auth.endswith(f",Signature={expected}")
    assert "SignedHeaders=accept;" in auth and "user-agent;x-acs-action" in auth


def test_full_sdk_sts_vector() -> None:
    headers = _sdk_headers(
        "GetJob",
        "pai-dlc",
        b"",
        **{
            "x-acs-credentials-provider": "static_sts",
            "x-acs-accesskey-id": "STS.testid",
            "x-acs-security-token": "tok123",
        },
    )
    auth = signing.authorization(
        "STS.testid", "testsecret", "GET", "/api/v1/jobs/dlc-123", {}, headers, signing.EMPTY_SHA256
    )
    assert auth == (
        "ACS3-HMAC-SHA256 Credential=STS.testid,SignedHeaders=accept;host;user-agent;x-acs-accesskey-id;x-acs-action;"
        "x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-security-token;x-acs-signature-nonce;"
        "x-acs-version,Signature=ee717107dfcadea84e080e7bf687fce9807c80a8cc7d31f59610c499aecadbb3"
    )


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        ("a b", "a%20b"),
        ("a,b", "a%2Cb"),
        ("k=v", "k%3Dv"),
        ("é", "%C3%A9"),
        ("a/b", "a%2Fb"),
        ("x*y", "x%2Ay"),
        ("~-_.", "~-_."),
        ("a+b", "a%2Bb"),
        ('{"k":"v"}', "%7B%22k%22%3A%22v%22%7D"),
    ],
)
def test_percent_encode(raw: str, encoded: str) -> None:
    assert signing.percent_encode(raw) == encoded
    assert signing.parse_query(f"x={encoded}") == {"x": raw}


def test_canonical_query_sorts_drops_none_and_keeps_empty() -> None:
    assert signing.canonical_query({"b": "2", "a": "1 2", "c": None, "d": ""}) == "a=1%202&b=2&d="
    assert signing.canonical_query({}) == ""
    # the official SDK's URLs use urlencode ('+' for space): a verifying server still reads them right
    assert signing.parse_query("Name=a+b%2Fc") == {"Name": "a b/c"}


def test_parse_authorization_rejects_garbage() -> None:
    with pytest.raises(signing.SignatureError):
        signing.parse_authorization("ACS3-HMAC-SHA1 Credential=a")
    with pytest.raises(signing.SignatureError):
        signing.parse_authorization("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host")
    assert not signing.verify("s", "GET", "/", "", {"authorization": "nonsense"}, b"")


def test_sign_headers_minimal_set_body_and_sts() -> None:
    plain = signing.sign_headers(
        method="GET",
        host="h",
        path="/",
        query={},
        body=b"",
        action="A",
        version="V",
        access_key_id="id",
        access_key_secret="s",
    )
    _, signed, _ = signing.parse_authorization(plain["authorization"])
    assert signed == list(signing.MINIMAL_SIGNED_HEADERS)
    assert "content-type" not in plain
    with_body = signing.sign_headers(
        method="POST",
        host="h",
        path="/",
        query={},
        body=b"{}",
        action="A",
        version="V",
        access_key_id="STS.id",
        access_key_secret="s",
        security_token="tok",
    )
    _, signed, _ = signing.parse_authorization(with_body["authorization"])
    assert signed == sorted(
        [*signing.MINIMAL_SIGNED_HEADERS, "content-type", "x-acs-security-token", "x-acs-accesskey-id"]
    )
    assert with_body["content-type"] == "application/json; charset=utf-8"
    assert with_body["x-acs-content-sha256"] == signing.hash_body(b"{}")
    assert with_body["x-acs-security-token"] == "tok"
    assert with_body["x-acs-accesskey-id"] == "STS.id"


# ----------------------------------------------------------------------------- endpoints


@pytest.mark.parametrize(
    ("product", "region", "network", "host"),
    [
        (endpoints.DLC, "cn-hangzhou", "public", "pai-dlc.cn-hangzhou.aliyuncs.com"),
        (endpoints.DLC, "cn-hangzhou", "vpc", "pai-dlc-vpc.cn-hangzhou.aliyuncs.com"),
        (endpoints.DLC, "cn-zhangjiakou", "public", "pai-dlc.aliyuncs.com"),
        (endpoints.AIWORKSPACE, "cn-hangzhou", "public", "aiworkspace.cn-hangzhou.aliyuncs.com"),
        (endpoints.AIWORKSPACE, "cn-shanghai", "vpc", "aiworkspace-vpc.cn-shanghai.aliyuncs.com"),
        (endpoints.AIWORKSPACE, "cn-guangzhou", "public", "aiworkspace.cn-guangzhou.aliyuncs.com"),
        (endpoints.AIWORKSPACE, "ap-southeast-5", "public", "aiworkspace-vpc.ap-southeast-5.aliyuncs.com"),
        (endpoints.ECS, "cn-hangzhou", "public", "ecs-cn-hangzhou.aliyuncs.com"),
        (endpoints.ECS, "cn-hangzhou", "vpc", "ecs-cn-hangzhou.aliyuncs.com"),
        (endpoints.ECS, "cn-shanghai", "public", "ecs.cn-shanghai.aliyuncs.com"),
        (endpoints.ECS, "cn-shanghai", "vpc", "ecs-vpc.cn-shanghai.aliyuncs.com"),
        (endpoints.PAISTUDIO, "cn-hangzhou", "public", "pai.cn-hangzhou.data.aliyun.com"),
        (endpoints.PAISTUDIO, "cn-shanghai", "public", "pai.cn-shanghai.aliyuncs.com"),
        (endpoints.PAISTUDIO, "eu-west-1", "public", "paistudio.eu-west-1.aliyuncs.com"),
    ],
)
def test_endpoint_resolution(product: endpoints.Product, region: str, network: str, host: str) -> None:
    assert endpoints.resolve(product, region, network) == endpoints.Endpoint("https", host)


def test_endpoint_overrides_and_sts() -> None:
    assert endpoints.resolve(endpoints.DLC, "cn-hangzhou", override="http://127.0.0.1:8080").base_url == (
        "http://127.0.0.1:8080"
    )
    assert endpoints.resolve(endpoints.ECS, "x", override="sandbox.local:9443").base_url == "https://sandbox.local:9443"
    with pytest.raises(ConfigurationError):
        endpoints.parse_override("ftp://x/y")
    assert endpoints.sts_endpoint().host == "sts.aliyuncs.com"
    assert endpoints.sts_endpoint(sts_region="cn-beijing").host == "sts.cn-beijing.aliyuncs.com"
    assert endpoints.sts_endpoint(sts_region="cn-beijing", vpc=True).host == "sts-vpc.cn-beijing.aliyuncs.com"


# ------------------------------------------------------------------- real requests (respx)


async def test_provider_requests_reproduce_vectors() -> None:
    """The provider's own GetJob / DescribePrice / GetPodLogs carry the vectors' Authorization."""
    by_name = {v["name"]: v for v in VECTORS}
    provider, _ = make_provider(nonce=lambda: "n1")
    with respx.mock(assert_all_called=True) as router:
        get = router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(return_value=json_response(get_job_body()))
        price = router.post(f"{ECS}/").mock(return_value=json_response(price_body(0.5)))
        logs = router.get(f"{DLC}/api/v1/jobs/dlc-123/pods/dlc-123-worker-0/logs").mock(
            return_value=json_response({"JobId": "dlc-123", "PodId": "p", "Logs": ["a"], "RequestId": "r"})
        )
        await provider.get_job("dlc-123")
        await provider.price("ecs.c6.large")
        await provider.pod_logs("dlc-123", "dlc-123-worker-0", max_lines=100)
    assert get.calls.last.request.headers["authorization"] == by_name["GetJob NeedDetail"]["authorization"]
    assert price.calls.last.request.headers["authorization"] == by_name["DescribePrice RPC style"]["authorization"]
    assert logs.calls.last.request.headers["authorization"] == by_name["GetPodLogs"]["authorization"]
    await provider.aclose()


async def test_signed_headers_on_real_requests_with_port_and_body() -> None:
    provider, _ = make_provider(pai_endpoint_dlc="http://127.0.0.1:8443", pai_workspace_id="268")
    with respx.mock() as router:
        create = router.post("http://127.0.0.1:8443/api/v1/jobs").mock(
            return_value=json_response({"JobId": "dlc-9", "RequestId": "r"})
        )
        router.get("http://127.0.0.1:8443/api/v1/jobs/dlc-9").mock(return_value=json_response(get_job_body("dlc-9")))
        request = JobRequest(
            display_name="t",
            user_command="echo 你好 world",
            job_type="PyTorchJob",
            ecs_spec="ecs.c6.large",
            worker_count=1,
            max_runtime_minutes=30,
            image="img:1",
        )
        await provider.create_job(request)
    sent = create.calls.last.request
    headers = sent.headers
    assert headers["host"] == "127.0.0.1:8443"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", headers["x-acs-date"])
    assert headers["x-acs-date"] == "2024-01-01T00:00:00Z"
    assert headers["x-acs-signature-nonce"]
    assert headers["x-acs-action"] == "CreateJob" and headers["x-acs-version"] == "2020-12-03"
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-acs-content-sha256"] == signing.hash_body(sent.content)
    assert "你好".encode() in sent.content  # ensure_ascii=False, as the SDK sends it
    assert b": " not in sent.content  # compact separators
    _, signed, _ = signing.parse_authorization(headers["authorization"])
    assert signed == ["content-type", *signing.MINIMAL_SIGNED_HEADERS]
    assert verify_signed(sent)
    await provider.aclose()


async def test_query_encoding_in_url_matches_signature() -> None:
    """Spaces, commas, '=', JSON and unicode: one RFC 3986 string in the URL and the signature."""
    provider, _ = make_provider(pai_workspace_id="268")
    with respx.mock() as router:
        images = router.get(f"{AIWS}/api/v1/images").mock(
            return_value=json_response(
                {
                    "RequestId": "r",
                    "TotalCount": 1,
                    "Images": [image("pytorch:2.1-gpu", "reg/pytorch:2.1-gpu", "2024-01-01T00:00:00Z")],
                }
            )
        )
        jobs = router.get(f"{DLC}/api/v1/jobs").mock(return_value=json_response(list_jobs_body([])))
        await provider.resolve_image("PyTorchJob", "GPU")
        await provider.list_jobs(tags={"team": "a b,c=d é"})
    raw = images.calls.last.request.url.query.decode()
    assert "Labels=system.supported.dlc%3Dtrue%2Csystem.chipType%3DGPU" in raw
    assert "Verbose=true" in raw and "+" not in raw
    assert raw == "&".join(sorted(raw.split("&")))  # sorted, exactly as signed
    jobs_raw = jobs.calls.last.request.url.query.decode()
    assert "Tags=%7B%22team%22%3A%22a%20b%2Cc%3Dd%20%C3%A9%22%7D" in jobs_raw
    assert query_of(jobs.calls.last.request)["Tags"] == json.dumps(
        {"team": "a b,c=d é"}, ensure_ascii=False, separators=(",", ":")
    )
    for call in (images.calls.last, jobs.calls.last):
        assert verify_signed(call.request)
    await provider.aclose()


async def test_sts_token_is_sent_and_signed() -> None:
    creds = Credentials("STS.tmpid", "tmpsecret", "sts-token-xyz", source="test")
    provider, _ = make_provider(credentials=creds)
    with respx.mock() as router:
        route = router.post(f"{DLC}/api/v1/jobs/dlc-123/stop").mock(return_value=json_response({"JobId": "dlc-123"}))
        router.get(f"{DLC}/api/v1/jobs/dlc-123").mock(return_value=json_response(get_job_body(status="Stopping")))
        job = await provider.stop_job("dlc-123")
    sent = route.calls.last.request
    assert job.raw_status == "Stopping"
    assert sent.headers["x-acs-security-token"] == "sts-token-xyz"
    assert sent.headers["x-acs-accesskey-id"] == "STS.tmpid"
    assert sent.content == b"" and "content-type" not in sent.headers
    ak_id, signed, _ = signing.parse_authorization(sent.headers["authorization"])
    assert ak_id == "STS.tmpid"
    assert {"x-acs-security-token", "x-acs-accesskey-id"} <= set(signed)
    assert verify_signed(sent, "tmpsecret")
    await provider.aclose()


def test_fixed_clock_is_utc() -> None:
    assert signing.utc_timestamp(NOW) == "2024-01-01T00:00:00Z"
    assert len(signing.new_nonce()) == 32 and signing.new_nonce() != signing.new_nonce()


def test_build_url_uses_canonical_query() -> None:
    url = signing.build_url("https", "h:1", "/p", {"b": "x y", "a": "1"})
    assert url == "https://h:1/p?a=1&b=x%20y"
    assert httpx.URL(url).raw_path == b"/p?a=1&b=x%20y"  # httpx keeps the pre-encoded URL verbatim
