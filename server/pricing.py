"""The one price table, for the prices no platform API gives (``CLOUDJOBS_PRICE_TABLE``).

A JSON or TOML file (by its suffix: ``.toml`` is TOML, anything else JSON)::

    {
      "fx_rates": {"USD/CNY": 7.2},
      "pai": {"ecs.gn7i-c8g1.2xlarge": {"per_hour": 13.59, "currency": "CNY"}},
      "modelarts": {
        "modelarts.vm.cpu.8u": {"per_hour": 1.2, "currency": "CNY"},
        "*": {"currency": "CNY", "cpu_hour": 0.1, "memory_gb_hour": 0.02, "gpu_hour": {"*": 6.0, "A10": 8.0}}
      }
    }

Top-level keys are provider names (``server.providers.LABELS``); under each, spec names with a price per
worker-hour and its currency, and ``"*"``: per-resource rates for that provider's other specs (a spec
costs ``cpu × cpu_hour + memory_gb × memory_gb_hour + gpus × gpu_hour``, where ``gpu_hour`` is one rate
or a map by GPU type with ``"*"`` as the default; a spec with GPUs and no GPU rate has no price: GPUs are
never priced at 0 by omission). ``fx_rates`` (optional) says what one unit of the first currency is worth
in the second; the server converts only with these rates, in both directions, and says so.

The file is read again when it changes (size or modification time), so edits need no restart.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.models import Price, Spec
from cloudjobs_mcp.server.providers import LABELS

if TYPE_CHECKING:
    from cloudjobs_mcp.server.config import Settings

ANY = "*"
FX_KEY = "fx_rates"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RATE_KEYS = ("cpu_hour", "memory_gb_hour", "gpu_hour")


@dataclass(frozen=True)
class ResourceRates:
    currency: str
    cpu_hour: float = 0.0
    memory_gb_hour: float = 0.0
    gpu_hour: Mapping[str, float] = field(default_factory=dict)  # by GPU type (upper case), "*" the default

    def price(self, spec: Spec) -> float | None:
        gpu = 0.0
        if spec.gpu_count:
            rate = self.gpu_hour.get((spec.gpu_type or "").upper(), self.gpu_hour.get(ANY))
            if rate is None:
                return None
            gpu = spec.gpu_count * rate
        return spec.cpu * self.cpu_hour + spec.memory_gb * self.memory_gb_hour + gpu


@dataclass(frozen=True)
class PriceTable:
    path: Path | None = None
    specs: Mapping[str, Mapping[str, tuple[float, str]]] = field(default_factory=dict)
    rates: Mapping[str, ResourceRates] = field(default_factory=dict)
    fx: Mapping[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> PriceTable:
        """The table ``CLOUDJOBS_PRICE_TABLE`` names (empty without one); ConfigurationError when it is bad."""
        return cls.load(settings.price_table) if settings.price_table else cls()

    @classmethod
    def load(cls, path: Path) -> PriceTable:
        path = Path(path).expanduser()
        try:
            stat = path.stat()
        except OSError as exc:
            raise _bad(path, f"cannot read it ({exc.strerror or type(exc).__name__})") from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        with _CACHE_LOCK:
            cached = _CACHE.get(str(path))
            if cached is not None and cached[0] == key:
                return cached[1]
        table = cls._parse(path)
        with _CACHE_LOCK:
            _CACHE[str(path)] = (key, table)
        return table

    @classmethod
    def _parse(cls, path: Path) -> PriceTable:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _bad(path, f"cannot read it ({type(exc).__name__})") from None
        try:
            if path.suffix.lower() == ".toml":
                import tomllib  # only a TOML price table needs it

                data = tomllib.loads(text)
            else:
                data = json.loads(text)
        except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError both are
            kind = "TOML" if path.suffix.lower() == ".toml" else "JSON (name it *.toml for TOML)"
            raise _bad(path, f"it is not valid {kind}: {exc}") from None
        if not isinstance(data, dict):
            raise _bad(path, "the top level must be a table/object of provider names")
        specs: dict[str, dict[str, tuple[float, str]]] = {}
        rates: dict[str, ResourceRates] = {}
        fx = _fx(path, data.pop(FX_KEY, {}))
        for provider, entries in data.items():
            if provider not in LABELS:
                raise _bad(path, f"unknown provider {provider!r} (allowed: {', '.join(LABELS)}, and {FX_KEY})")
            if not isinstance(entries, dict):
                raise _bad(path, f"{provider}: must map spec names (or '*') to prices")
            for name, entry in entries.items():
                where = f"{provider}.{name}"
                if not isinstance(entry, dict):
                    raise _bad(path, f'{where}: must be an object such as {{"per_hour": 1.5, "currency": "CNY"}}')
                if name == ANY:
                    rates[provider] = _rates(path, where, entry)
                else:
                    specs.setdefault(provider, {})[name] = _spec_price(path, where, entry)
        return cls(path=path, specs=specs, rates=rates, fx=fx)

    def lookup(self, provider_name: str, spec: Spec) -> Price | None:
        """The table's price of one worker of ``spec`` on ``provider_name``: by name, else per resource."""
        named = self.specs.get(provider_name, {}).get(spec.instance_type)
        if named is not None:
            return Price(
                instance_type=spec.instance_type,
                per_worker_hourly=named[0],
                currency=named[1],
                source=f"price table {self.path} ({provider_name}.{spec.instance_type})",
            )
        rates = self.rates.get(provider_name)
        hourly = rates.price(spec) if rates else None
        if rates is None or hourly is None:
            return None
        return Price(
            instance_type=spec.instance_type,
            per_worker_hourly=round(hourly, 6),
            currency=rates.currency,
            source=f"price table {self.path} ({provider_name}.* per-resource rates)",
        )

    def rate(self, source: str, target: str) -> float | None:
        """What one unit of ``source`` is worth in ``target`` by the configured ``fx_rates``; None: no rate."""
        if source == target:
            return 1.0
        if (source, target) in self.fx:
            return self.fx[(source, target)]
        inverse = self.fx.get((target, source))
        return 1.0 / inverse if inverse else None


_CACHE: dict[str, tuple[tuple[str, int, int], PriceTable]] = {}
_CACHE_LOCK = threading.Lock()


def _bad(path: Path, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"CLOUDJOBS_PRICE_TABLE {path}: {problem}. See the README's 'Price table' section for the format."
    )


def _amount(path: Path, where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise _bad(path, f"{where}: {value!r} is not a price (a number ≥ 0)")
    return float(value)


def _currency(path: Path, where: str, value: Any) -> str:
    code = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.match(code):
        raise _bad(path, f"{where}.currency: {value!r} is not a 3-letter currency code such as CNY or USD")
    return code


def _spec_price(path: Path, where: str, entry: dict[str, Any]) -> tuple[float, str]:
    extra = set(entry) - {"per_hour", "currency"}
    if extra or "per_hour" not in entry or "currency" not in entry:
        raise _bad(path, f"{where}: needs exactly per_hour and currency (got {', '.join(sorted(entry)) or 'nothing'})")
    return _amount(path, f"{where}.per_hour", entry["per_hour"]), _currency(path, where, entry["currency"])


def _rates(path: Path, where: str, entry: dict[str, Any]) -> ResourceRates:
    extra = set(entry) - {"currency", *_RATE_KEYS}
    if extra:
        raise _bad(
            path, f"{where}: unknown keys {', '.join(sorted(extra))} (allowed: currency, {', '.join(_RATE_KEYS)})"
        )
    if "currency" not in entry or not any(k in entry for k in _RATE_KEYS):
        raise _bad(path, f"{where}: needs currency and at least one of {', '.join(_RATE_KEYS)}")
    gpu = entry.get("gpu_hour")
    by_type: dict[str, float] = {}
    if isinstance(gpu, dict):
        by_type = {str(k).upper(): _amount(path, f"{where}.gpu_hour.{k}", v) for k, v in gpu.items()}
    elif gpu is not None:
        by_type = {ANY: _amount(path, f"{where}.gpu_hour", gpu)}
    return ResourceRates(
        currency=_currency(path, where, entry["currency"]),
        cpu_hour=_amount(path, f"{where}.cpu_hour", entry.get("cpu_hour", 0.0)),
        memory_gb_hour=_amount(path, f"{where}.memory_gb_hour", entry.get("memory_gb_hour", 0.0)),
        gpu_hour=by_type,
    )


def _fx(path: Path, raw: Any) -> dict[tuple[str, str], float]:
    if not isinstance(raw, dict):
        raise _bad(path, f'{FX_KEY}: must map "FROM/TO" currency pairs to rates, e.g. {{"USD/CNY": 7.2}}')
    fx: dict[tuple[str, str], float] = {}
    for pair, value in raw.items():
        parts = str(pair).upper().split("/")
        if len(parts) != 2 or not all(_CURRENCY.match(p) for p in parts) or parts[0] == parts[1]:
            raise _bad(path, f"{FX_KEY}: {pair!r} is not a pair of two currency codes such as USD/CNY")
        rate = _amount(path, f"{FX_KEY}.{pair}", value)
        if rate == 0:
            raise _bad(path, f"{FX_KEY}.{pair}: a rate must be above 0")
        fx[(parts[0], parts[1])] = rate
    return fx
