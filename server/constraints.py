"""Making a run from a job template: the template's config, the run's overrides, and PAI-style constraints.

A constraint maps a JSONPath of a config field (``$.ecs_spec``, ``$.envs.LR``) to ``locked`` (the run may
not change it), ``overridable`` (the default: the run may) or ``required`` (the run must give it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudjobs_mcp.server.errors import InvalidRequest
from cloudjobs_mcp.server.models import JobTemplate, TemplateConfig

MAPS = ("envs", "hyperparameters")


def paths_of(overrides: dict[str, Any]) -> list[str]:
    """The JSONPaths an override touches (each key of a map field on its own)."""
    out: list[str] = []
    for name, value in overrides.items():
        if name in MAPS and isinstance(value, dict):
            out += [f"$.{name}.{k}" for k in value] or [f"$.{name}"]
        else:
            out.append(f"$.{name}")
    return out


def apply(template: JobTemplate, overrides: dict[str, Any], *, check_required: bool = True) -> TemplateConfig:
    """The run's config; InvalidRequest naming each locked field overridden and each required one missing
    (a quote checks only what it is given: the run's other fields come with create_training_job)."""
    given = {k: v for k, v in overrides.items() if v is not None and v != {} and v != []}
    touched = [_norm(p) for p in paths_of(given)]
    constraints = {_norm(p): c for p, c in template.constraints.items()}
    spelled = {_norm(p): p for p in template.constraints}  # report paths as the template writes them
    base = template.config.model_dump()

    def rule(path: str) -> str:
        if path in constraints:
            return constraints[path]
        parent = path.rsplit(".", 1)[0]
        return constraints.get(parent, "overridable") if parent != "$" else "overridable"

    merged = _merge(base, given)
    locked = [spelled.get(p, p) for p in touched if rule(p) == "locked" and _value(base, p) != _value(merged, p)]
    missing = [spelled[p] for p, c in constraints.items() if c == "required" and not _covered(p, touched)]
    if not check_required:
        missing = []
    problems = []
    if locked:
        problems.append(f"locked by the template, cannot be overridden: {', '.join(locked)}")
    if missing:
        problems.append(f"required by the template, must be given by the run: {', '.join(missing)}")
    if problems:
        raise InvalidRequest(
            f"Template {template.name!r} ({template.template_id} v{template.version}): {'; '.join(problems)}. "
            "Call get_job_template to see its config and constraints."
        )
    return TemplateConfig.model_validate(merged)


def _norm(path: str) -> str:
    """Hyperparameter names are case-insensitive (they become HP_<NAME> variables on every platform)."""
    head = "$.hyperparameters."
    return head + path[len(head) :].upper() if path.startswith(head) else path


def _merge(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in given.items():
        if name in MAPS and isinstance(value, dict):
            merged[name] = {**(base.get(name) or {}), **value}
        else:
            merged[name] = value
    return merged


def _value(config: dict[str, Any], path: str) -> Any:
    node: Any = config
    for part in path.removeprefix("$.").split("."):
        if not isinstance(node, dict):
            return None
        node = next((v for k, v in node.items() if k == part or k.upper() == part), None)
    return node


def _covered(required: str, touched: list[str]) -> bool:
    return any(t == required or t.startswith(required + ".") for t in touched)


def check_constraint_keys(constraints: Mapping[str, str]) -> None:
    fields = set(TemplateConfig.model_fields)
    bad = []
    for path, value in constraints.items():
        parts = path.removeprefix("$.").split(".")
        if (
            not path.startswith("$.")
            or parts[0] not in fields
            or (len(parts) > 1 and parts[0] not in MAPS)
            or len(parts) > 2
        ):
            bad.append(path)
        elif value not in ("locked", "overridable", "required"):
            bad.append(f"{path}={value}")
    if bad:
        raise InvalidRequest(
            f"Invalid constraints {', '.join(bad)}: keys are JSONPaths of config fields ($.ecs_spec, $.envs.KEY, "
            f"...; fields: {', '.join(sorted(fields))}) and values locked, overridable or required."
        )
