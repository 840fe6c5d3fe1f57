"""Spot (preemptible) prices in the sandbox: one synthetic discount history shared by every API.

The spot price of an instance type is its pay-as-you-go price (``catalog.py``) × a *discount* between
``MIN_DISCOUNT`` (0.20) and ``MAX_DISCOUNT`` (0.40). The discount changes every UTC hour and is a pure
function of (instance type, UTC day, hour): a daily level drawn from a hash of the type and the day, a
smooth swing over the day (higher in the Beijing-time working hours) and a small hourly jitter, so a
given hour always has the same discount, on every sandbox, and yesterday's history never changes.

Who reads it:

* PaiStudio ``GetSpotPriceHistory`` (``GET /api/v1/spots/{InstanceType}/pricehistory``): one
  ``SpotPriceItem`` per hour (``InstanceType``, ``SpotDiscount``, ``Timestamp`` ``yyyy-MM-ddTHH:mm:ssZ``
  at the top of the hour, ``ZoneId`` ``<region>-k``) in [StartTime, EndTime] (default: the 3 days before
  now; at most 7 days), oldest first. ``SpotDuration=1`` (one guaranteed hour) adds ``PROTECTED_PREMIUM``
  (0.05). PageNumber / PageSize / Order / SortBy apply to Lingjun types only, as documented: ECS types
  answer the whole window.
* DLC ``ListEcsSpecs``: ``NonProtectSpotDiscount`` is the current hour's discount; ``SpotStockStatus`` is
  the catalog's (``NoStock`` for sold-out types), else ``LowStock`` when the current discount is at least
  ``LOW_STOCK_DISCOUNT`` (demand is high), else ``WithStock``.
* ECS ``DescribePrice`` with ``SpotStrategy`` other than ``NoSpot``: the current hour's spot price.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime

MIN_DISCOUNT = 0.20
MAX_DISCOUNT = 0.40
PROTECTED_PREMIUM = 0.05
LOW_STOCK_DISCOUNT = 0.37
HOUR = 3600.0
DEFAULT_WINDOW = 3 * 24 * HOUR
MAX_WINDOW = 7 * 24 * HOUR


def _unit(*parts: str) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hour_start(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


def discount_at(instance_type: str, ts: float, *, protected: bool = False) -> float:
    """The spot discount (fraction of the pay-as-you-go price) of ``instance_type`` in the UTC hour of ``ts``."""
    at = datetime.fromtimestamp(hour_start(ts), UTC)
    day = at.strftime("%Y-%m-%d")
    level = 0.25 + 0.10 * _unit(instance_type, day)  # 0.25 .. 0.35
    swing = 0.03 * math.sin((at.hour - 0.0) / 24.0 * 2 * math.pi)  # peaks at 06:00 UTC (14:00 Beijing)
    jitter = 0.04 * (_unit(instance_type, day, str(at.hour)) - 0.5)
    value = min(MAX_DISCOUNT, max(MIN_DISCOUNT, level + swing + jitter))
    if protected:
        value = min(1.0, value + PROTECTED_PREMIUM)
    return round(value, 4)


def stock_status(catalog_stock: str, instance_type: str, now: float) -> str:
    if catalog_stock != "WithStock":
        return catalog_stock
    return "LowStock" if discount_at(instance_type, now) >= LOW_STOCK_DISCOUNT else "WithStock"


def history(
    instance_type: str, start: float, end: float, *, region: str, protected: bool = False
) -> list[dict[str, object]]:
    """``SpotPriceItem``s, one per hour whose start lies in [start, end] (the hour ``start`` falls in too)."""
    items: list[dict[str, object]] = []
    t = hour_start(start)
    while t <= end:
        items.append(
            {
                "InstanceType": instance_type,
                "SpotDiscount": discount_at(instance_type, t, protected=protected),
                "Timestamp": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ZoneId": f"{region}-k",
            }
        )
        t += HOUR
    return items
