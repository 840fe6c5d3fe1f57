"""Which host each Alibaba Cloud product is called on, per region and network.

Resolution is the official SDK's ``get_endpoint``: an explicit override wins; else the product's
endpoint map for the region (the map wins over ``network``: ECS cn-hangzhou stays
``ecs-cn-hangzhou.aliyuncs.com`` even on a VPC); else the rule ``<product>[-vpc].<region>.aliyuncs.com``.
The maps are copied from the current official Python SDKs (pai-dlc 2020-12-03, aiworkspace
2021-02-04, ecs 2014-05-26, paistudio 2022-01-12); the aiworkspace map's ``cn-guangzhou`` entry has a
trailing TAB in the SDK, which is stripped here.

An override (``CLOUDJOBS_PAI_ENDPOINT_DLC`` ...) is ``host[:port]`` (HTTPS) or a URL with a scheme,
e.g. ``http://127.0.0.1:8080`` for a local sandbox. The host (with its port) is what gets signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cloudjobs_mcp.server.http import Endpoint, parse_override

__all__ = ["Endpoint", "Product", "parse_override", "resolve", "sts_endpoint"]


@dataclass(frozen=True)
class Product:
    key: str  # settings suffix: pai_endpoint_<key>
    product_id: str  # used by the endpoint rule
    version: str  # x-acs-version
    ram_prefix: str  # RAM action namespace, for permission messages
    endpoint_map: Mapping[str, str]
    central: bool = False  # rule without region (sts.aliyuncs.com)


_DLC_CENTRAL = "pai-dlc.aliyuncs.com"
_DLC_MAP = {
    region: _DLC_CENTRAL
    for region in (
        "ap-northeast-2-pop",
        "ap-south-1",
        "ap-southeast-2",
        "cn-beijing-finance-1",
        "cn-beijing-finance-pop",
        "cn-beijing-gov-1",
        "cn-beijing-nu16-b01",
        "cn-chengdu",
        "cn-edge-1",
        "cn-fujian",
        "cn-haidian-cm12-c01",
        "cn-hangzhou-bj-b01",
        "cn-hangzhou-finance",
        "cn-hangzhou-internal-prod-1",
        "cn-hangzhou-internal-test-1",
        "cn-hangzhou-internal-test-2",
        "cn-hangzhou-internal-test-3",
        "cn-hangzhou-test-306",
        "cn-hongkong-finance-pop",
        "cn-huhehaote",
        "cn-huhehaote-nebula-1",
        "cn-north-2-gov-1",
        "cn-qingdao",
        "cn-qingdao-nebula",
        "cn-shanghai-et15-b01",
        "cn-shanghai-et2-b01",
        "cn-shanghai-inner",
        "cn-shanghai-internal-test-1",
        "cn-shenzhen-finance-1",
        "cn-shenzhen-inner",
        "cn-shenzhen-st4-d01",
        "cn-shenzhen-su18-b01",
        "cn-wuhan",
        "cn-yushanfang",
        "cn-zhangbei",
        "cn-zhangbei-na61-b01",
        "cn-zhangjiakou",
        "cn-zhangjiakou-na62-a01",
        "cn-zhengzhou-nebula-1",
        "eu-west-1",
        "eu-west-1-oxs",
        "me-east-1",
        "rus-west-1-pop",
    )
}

_AIWS_CENTRAL = "aiworkspace.aliyuncs.com"
_AIWS_MAP = {
    **{
        region: _AIWS_CENTRAL
        for region in (
            "ap-northeast-2-pop",
            "ap-southeast-2",
            "cn-beijing-finance-1",
            "cn-beijing-finance-pop",
            "cn-beijing-gov-1",
            "cn-beijing-nu16-b01",
            "cn-edge-1",
            "cn-fujian",
            "cn-haidian-cm12-c01",
            "cn-hangzhou-bj-b01",
            "cn-hangzhou-finance",
            "cn-hangzhou-internal-prod-1",
            "cn-hangzhou-internal-test-1",
            "cn-hangzhou-internal-test-2",
            "cn-hangzhou-internal-test-3",
            "cn-hangzhou-test-306",
            "cn-hongkong-finance-pop",
            "cn-huhehaote",
            "cn-huhehaote-nebula-1",
            "cn-qingdao",
            "cn-qingdao-nebula",
            "cn-shanghai-et15-b01",
            "cn-shanghai-et2-b01",
            "cn-shanghai-inner",
            "cn-shanghai-internal-test-1",
            "cn-shenzhen-finance-1",
            "cn-shenzhen-inner",
            "cn-shenzhen-st4-d01",
            "cn-shenzhen-su18-b01",
            "cn-wuhan",
            "cn-yushanfang",
            "cn-zhangbei",
            "cn-zhangbei-na61-b01",
            "cn-zhangjiakou-na62-a01",
            "cn-zhengzhou-nebula-1",
            "eu-west-1",
            "eu-west-1-oxs",
            "me-east-1",
            "rus-west-1-pop",
        )
    },
    "ap-southeast-5": "aiworkspace-vpc.ap-southeast-5.aliyuncs.com",
    "cn-guangzhou": "aiworkspace.cn-guangzhou.aliyuncs.com\t".strip(),  # SDK bug: trailing TAB
}

# ECS 7.11.8 maps only a handful of regions; cn-shanghai etc. follow the rule (verified in the reference).
_ECS_MAP = {"cn-hangzhou": "ecs-cn-hangzhou.aliyuncs.com"}

_PAISTUDIO_MAP = {
    "cn-beijing": "pai.cn-beijing.aliyuncs.com",
    "cn-hangzhou": "pai.cn-hangzhou.data.aliyun.com",
    "cn-shanghai": "pai.cn-shanghai.aliyuncs.com",
    "cn-shenzhen": "pai.cn-shenzhen.aliyuncs.com",
    "cn-hongkong": "pai.cn-hongkong.aliyuncs.com",
    "ap-southeast-1": "pai.ap-southeast-1.aliyuncs.com",
    "ap-southeast-2": "pai.ap-southeast-2.aliyuncs.com",
    "ap-southeast-3": "pai.ap-southeast-3.aliyuncs.com",
    "ap-southeast-5": "pai.ap-southeast-5.aliyuncs.com",
    "us-east-1": "pai.us-east-1.aliyuncs.com",
    "us-west-1": "pai.us-west-1.aliyuncs.com",
    "eu-central-1": "pai.eu-central-1.aliyuncs.com",
    "ap-south-1": "pai.ap-south-1.aliyuncs.com",
    "me-east-1": "pai.me-east-1.aliyuncs.com",
    "ap-northeast-1": "pai.ap-northeast-1.aliyuncs.com",
    "cn-qingdao": "pai.cn-qingdao.aliyuncs.com",
    "cn-shanghai-finance-1": "pai.cn-shanghai-finance-1.aliyuncs.com",
    "cn-wulanchabu": "pai.cn-wulanchabu.aliyuncs.com",
    "cn-zhangjiakou": "pai.cn-zhangjiakou.aliyuncs.com",
}

DLC = Product("dlc", "pai-dlc", "2020-12-03", "paidlc", _DLC_MAP)
AIWORKSPACE = Product("aiworkspace", "aiworkspace", "2021-02-04", "paiworkspace", _AIWS_MAP)
ECS = Product("ecs", "ecs", "2014-05-26", "ecs", _ECS_MAP)
PAISTUDIO = Product("paistudio", "paistudio", "2022-01-12", "paistudio", _PAISTUDIO_MAP)
STS = Product("sts", "sts", "2015-04-01", "sts", {}, central=True)

PRODUCTS = {p.key: p for p in (DLC, AIWORKSPACE, ECS, PAISTUDIO, STS)}


def resolve(product: Product, region: str, network: str = "public", override: str | None = None) -> Endpoint:
    if override:
        return parse_override(override)
    mapped = product.endpoint_map.get(region)
    if mapped:
        return Endpoint("https", mapped.strip())
    suffix = "-vpc" if network == "vpc" else ""
    if product.central:
        return Endpoint("https", f"{product.product_id}{suffix}.aliyuncs.com")
    return Endpoint("https", f"{product.product_id}{suffix}.{region}.aliyuncs.com")


def sts_endpoint(override: str | None = None, sts_region: str | None = None, vpc: bool = False) -> Endpoint:
    """The credentials library's STS host: ``sts.aliyuncs.com``, or ``sts[-vpc].<region>.aliyuncs.com``
    when ``ALIBABA_CLOUD_STS_REGION`` is set (VPC with ``ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED=true``)."""
    if override:
        return parse_override(override)
    if sts_region:
        return Endpoint("https", f"sts{'-vpc' if vpc else ''}.{sts_region}.aliyuncs.com")
    return Endpoint("https", "sts.aliyuncs.com")
