"""The ``pai`` provider: Alibaba Cloud PAI-DLC (and PaiStudio training jobs) over signed HTTP (no official SDK).

Modules: :mod:`.signing` (ACS3-HMAC-SHA256, client and verifier), :mod:`.credentials` (the
credential chain), :mod:`.endpoints` (hosts per product/region/network), :mod:`.errormap` (error
responses → typed errors), :mod:`.api` (one method per API call), :mod:`.images` (image choice),
:mod:`.studio` (PaiStudio ``train…`` jobs and the metrics/sanity-check/queue shapes) and
:mod:`.provider` (:class:`PaiProvider`).
"""

from __future__ import annotations

from cloudjobs_mcp.server.providers.pai.credentials import Credentials, DefaultCredentialsChain
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider

__all__ = ["Credentials", "DefaultCredentialsChain", "PaiProvider"]
