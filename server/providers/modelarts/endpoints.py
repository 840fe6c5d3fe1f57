"""Which host each Huawei Cloud service is called on, the SDK's way.

* ModelArts: ``HUAWEICLOUD_SDK_REGION_MODELARTS_<REGION>`` (the region id upper-cased, ``-`` → ``_``;
  comma-separated endpoints, the first is used) wins; else the SDK 3.1.219 table
  (``https://modelarts.<region>.myhuaweicloud.com``, except **ap-southeast-1, which ends in
  ``.myhuaweicloud.cn``**); an unknown region without an override is a configuration error naming both ways out.
  (The SDK's ``~/.huaweicloud/regions.yaml`` is not read: the server has no YAML parser.)
* IAM (project id lookup): ``HUAWEICLOUD_SDK_IAM_ENDPOINT``, else the profile file's ``iam_endpoint``, else
  ``https://iam.<region>.myhuaweicloud.com`` for the SDK's 27 regions, else ``https://iam.myhuaweicloud.com``.
* BSS (prices, a global service): ``CLOUDJOBS_MODELARTS_BSS_ENDPOINT``, else the station of the region: the
  Chinese mainland (``cn-*``) → ``https://bss.myhuaweicloud.com`` (CNY), every other region →
  ``https://bss-intl.myhuaweicloud.com`` (USD).
"""

from __future__ import annotations

from collections.abc import Mapping

from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.http import Endpoint, parse_override

MODELARTS_REGIONS = (
    "cn-north-1",
    "cn-north-2",
    "cn-north-4",
    "cn-north-9",
    "cn-north-11",
    "cn-north-12",
    "cn-east-3",
    "cn-east-4",
    "cn-south-1",
    "cn-southwest-2",
    "cn-southwest-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "af-south-1",
    "af-north-1",
    "la-south-2",
    "la-north-2",
    "sa-brazil-1",
    "tr-west-1",
    "me-east-1",
)
_DOT_CN = ("ap-southeast-1",)  # the SDK's one region whose ModelArts host ends in .myhuaweicloud.cn

IAM_REGIONS = (
    "cn-north-2",
    "cn-north-4",
    "cn-north-1",
    "cn-east-2",
    "cn-east-3",
    "cn-south-1",
    "cn-south-2",
    "cn-southwest-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "af-south-1",
    "sa-brazil-1",
    "la-south-2",
    "na-mexico-1",
    "la-north-2",
    "cn-north-9",
    "eu-west-0",
    "my-kualalumpur-1",
    "ru-moscow-1",
    "me-east-1",
    "ap-southeast-4",
    "ae-ad-1",
    "cn-east-4",
    "cn-east-5",
    "tr-west-1",
    "cn-north-12",
)
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"
BSS_CHINA = "https://bss.myhuaweicloud.com"
BSS_INTERNATIONAL = "https://bss-intl.myhuaweicloud.com"


def region_env_name(service: str, region: str) -> str:
    """``HUAWEICLOUD_SDK_REGION_<SERVICE>_<REGION>``, e.g. ``HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4``."""
    return f"HUAWEICLOUD_SDK_REGION_{service.upper()}_{region.replace('-', '_').upper()}"


def modelarts(region: str, env: Mapping[str, str]) -> Endpoint:
    override = env.get(region_env_name("MODELARTS", region), "").strip()
    if override:
        first = next((e for e in override.split(",") if e.strip()), "")
        return parse_override(first)
    if region not in MODELARTS_REGIONS:
        raise ConfigurationError(
            f"ModelArts has no known endpoint in region {region!r} (CLOUDJOBS_MODELARTS_REGION). Known regions: "
            f"{', '.join(MODELARTS_REGIONS)}; or set {region_env_name('MODELARTS', region)}=https://<host> "
            "to name the endpoint yourself."
        )
    domain = "myhuaweicloud.cn" if region in _DOT_CN else "myhuaweicloud.com"
    return Endpoint("https", f"modelarts.{region}.{domain}")


def iam(region: str, env: Mapping[str, str], profile_endpoint: str | None = None) -> Endpoint:
    override = env.get(ENV_IAM_ENDPOINT, "").strip() or (profile_endpoint or "").strip()
    if override:
        return parse_override(override)
    if region in IAM_REGIONS:
        return Endpoint("https", f"iam.{region}.myhuaweicloud.com")
    return Endpoint("https", "iam.myhuaweicloud.com")


def bss(region: str, override: str | None = None) -> Endpoint:
    if override:
        return parse_override(override)
    return parse_override(BSS_CHINA if region.startswith("cn-") else BSS_INTERNATIONAL)
