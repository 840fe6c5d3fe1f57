"""Budgets per identity (``CLOUDJOBS_BUDGETS_FILE``), checked by the gate beside the server-wide caps.

The file is JSON: ``{"alice": {"max_hourly": 10, "max_job_cost": 20, "max_daily": 50}, "*": {...}}``. An
identity's own entry wins; ``*`` covers every other token identity. ``local`` (stdio and loopback callers)
is bound only by the server-wide caps unless the file names it. ``max_daily`` caps the sum of the worst
cases of the quotes an identity turned into jobs since 00:00 UTC, this quote included.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pydantic import ConfigDict, Field, ValidationError

from cloudjobs_mcp.server.errors import ConfigurationError, GateRefused
from cloudjobs_mcp.server.identity import IDENTITY_RE, LOCAL
from cloudjobs_mcp.server.models import Model

EVERYONE = "*"


class Limits(Model):
    model_config = ConfigDict(extra="forbid")

    max_hourly: float | None = Field(default=None, ge=0, description="Total price per hour of one job")
    max_job_cost: float | None = Field(default=None, ge=0, description="One job's worst case")
    max_daily: float | None = Field(default=None, ge=0, description="Worst cases of today's jobs, summed")


class Budgets:
    def __init__(self, entries: dict[str, Limits]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, path: Path | None) -> Budgets:
        if path is None:
            return cls({})
        where = f"CLOUDJOBS_BUDGETS_FILE {path}"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"{where} does not exist.") from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"{where} is not readable JSON ({exc}).") from None
        if not isinstance(raw, dict):
            raise ConfigurationError(f'{where} must be a JSON object: {{"identity or *": {{"max_hourly": ...}}}}.')
        entries: dict[str, Limits] = {}
        for name, limits in raw.items():
            if name != EVERYONE and not IDENTITY_RE.match(name):
                raise ConfigurationError(f"{where}: {name!r} is not an identity (or '*').")
            try:
                entries[name] = Limits.model_validate(limits)
            except ValidationError as exc:
                first = exc.errors()[0]
                raise ConfigurationError(
                    f"{where}: {name}.{'.'.join(str(p) for p in first['loc'])}: {first['msg']} "
                    "(allowed: max_hourly, max_job_cost, max_daily, numbers >= 0)."
                ) from None
        return cls(entries)

    def limits(self, identity: str) -> tuple[str, Limits] | None:
        """The entry that binds ``identity`` and its name (the identity, or '*')."""
        if identity in self.entries:
            return identity, self.entries[identity]
        if identity != LOCAL and EVERYONE in self.entries:
            return EVERYONE, self.entries[EVERYONE]
        return None

    def check(
        self,
        identity: str,
        hourly: float | None,
        worst_case: float | None,
        spent_today: float,
        money: Callable[[float], str],
    ) -> None:
        """Refuse a job ``identity`` may not run, saying which limit and how much is left."""
        found = self.limits(identity)
        if found is None:
            return
        entry, limits = found
        source = f"the budget of {identity!r}" + (" (the '*' entry)" if entry == EVERYONE else "")
        if hourly is None or worst_case is None:
            raise GateRefused(
                f"Price unknown: {source} in CLOUDJOBS_BUDGETS_FILE cannot be checked, so the job is refused."
            )
        if limits.max_hourly is not None and hourly > limits.max_hourly:
            raise GateRefused(
                f"Over budget: this job costs {money(hourly)}/hour, above max_hourly {money(limits.max_hourly)} of "
                f"{source}. Use fewer workers or a smaller spec."
            )
        if limits.max_job_cost is not None and worst_case > limits.max_job_cost:
            raise GateRefused(
                f"Over budget: this job's worst case is {money(worst_case)}, above max_job_cost "
                f"{money(limits.max_job_cost)} of {source}. Lower max_runtime_minutes or use fewer workers."
            )
        if limits.max_daily is not None and spent_today + worst_case > limits.max_daily:
            left = max(0.0, limits.max_daily - spent_today)
            raise GateRefused(
                f"Over budget: {source} allows {money(limits.max_daily)} a day (quote worst cases since 00:00 UTC); "
                f"{money(spent_today)} is committed today, {money(left)} is left, and this job's worst case is "
                f"{money(worst_case)}. Lower max_runtime_minutes, or wait until tomorrow."
            )
