"""The ``modelarts`` provider: Huawei Cloud ModelArts training jobs (v2) over signed HTTP (no official SDK).

Modules: :mod:`.signing` (SDK-HMAC-SHA256, client and verifier), :mod:`.credentials` (the SDK's chain),
:mod:`.endpoints` (hosts per service and region), :mod:`.errormap` (error bodies → typed errors), :mod:`.api`
(one method per API call) and :mod:`.provider` (:class:`ModelArtsProvider`).
"""

from __future__ import annotations

from cloudjobs_mcp.server.providers.modelarts.credentials import Credentials, DefaultChain
from cloudjobs_mcp.server.providers.modelarts.provider import ModelArtsProvider

__all__ = ["Credentials", "DefaultChain", "ModelArtsProvider"]
