"""What an assistant reads, kept small: compact tool results and tight JSON schemas.

An assistant pays for every byte of ``tools/list`` and of every result (tokens, context, money), so:

* a result is dumped once, without null fields and without empty lists and maps ("not there" says the
  same; a required one stays, ``{"jobs": []}``), and its text block is that JSON without indentation
  (:func:`tool_result`);
* a schema loses what pydantic adds for readers of this code (a ``title`` on every property, ``default:
  null``, docstring indentation, model docstrings) and says "string or null" as ``type: [string, null]``
  (:func:`tight_schema`);
* an output schema describes the compact result's structure: no null (a null field is left out), required
  only what is always there, no descriptions (the tool's description says what it returns)
  (:func:`output_schema`). Structured content stays valid against it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

# Keywords whose value is a map of name → schema, a list of schemas, or one schema.
_SCHEMA_MAPS = ("properties", "$defs", "patternProperties")
_SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
_SCHEMA_ONE = ("items", "additionalProperties", "not", "contains")
_NULL = {"type": "null"}
Rule = Callable[[dict[str, Any], str], dict[str, Any]]  # (schema with its subschemas done, where) → schema


def one_line(text: str) -> str:
    """A docstring's text without its line breaks and indentation."""
    return " ".join(text.split())


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def tool_result(value: BaseModel) -> CallToolResult:
    """A tool's model as the client gets it: structured content and the same JSON as compact text."""
    data = compact_dump(value)
    return CallToolResult(content=[TextContent(type="text", text=dumps(data))], structured_content=data)


def compact_dump(value: BaseModel) -> dict[str, Any]:
    """``value`` as JSON data without null fields, nor empty lists and maps where the model lets them be
    absent (a required one stays, even empty: ``{"jobs": []}`` says there are none)."""
    data: dict[str, Any] = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    _drop_empty(value, data)
    return data


def _drop_empty(model: BaseModel, data: dict[str, Any]) -> None:
    # Decided on the dumped value first: scalars (most fields) cost one lookup, and only a list or map of
    # models is walked. A listing of 20 jobs runs this ~500 times.
    for name, key, optional in _fields(type(model)):
        got = data.get(key)
        if type(got) is list:
            if not got:
                if optional:
                    del data[key]
            elif type(got[0]) is dict:
                for item, dumped in zip(getattr(model, name), got, strict=False):
                    if isinstance(item, BaseModel):
                        _drop_empty(item, dumped)
        elif type(got) is dict:
            if not got:
                if optional:
                    del data[key]
                continue
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                _drop_empty(value, got)
            elif isinstance(value, dict):
                for k, item in value.items():
                    if isinstance(item, BaseModel):
                        _drop_empty(item, got[k])


_FIELDS: dict[type[BaseModel], list[tuple[str, str, bool]]] = {}


def _fields(cls: type[BaseModel]) -> list[tuple[str, str, bool]]:
    """(name, key in the dump, may be absent) of each field of ``cls``, computed once per class."""
    if cls not in _FIELDS:
        _FIELDS[cls] = [
            (n, f.serialization_alias or f.alias or n, not f.is_required()) for n, f in cls.model_fields.items()
        ]
    return _FIELDS[cls]


def walk(schema: Any, rule: Rule, where: str = "root") -> Any:
    """``rule`` applied bottom-up to every subschema of ``schema``; ``where`` is ``root``, ``property``
    (a value of ``properties``), ``def`` (of ``$defs``) or ``sub`` (anything else)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            inner = "property" if key == "properties" else "def" if key == "$defs" else "sub"
            out[key] = {name: walk(sub, rule, inner) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [walk(sub, rule, "sub") for sub in value]
        elif key in _SCHEMA_ONE and isinstance(value, dict):
            out[key] = walk(value, rule, "sub")
        else:
            out[key] = value
    return rule(out, where)


def tight_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An input schema without pydantic's noise; validation is unchanged."""
    out: dict[str, Any] = walk(schema, _tighten)
    return out


def output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of a compact result (see the module docstring)."""
    out: dict[str, Any] = walk(walk(schema, _required_present), _for_output)
    return out


def _tighten(schema: dict[str, Any], where: str) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    if isinstance(out.get("description"), str):
        out["description"] = one_line(out["description"])
    if where in ("root", "def") and out.get("type") == "object":
        out.pop("description", None)  # a model's docstring is written for this code's readers
    return _merge_null(out)


def _required_present(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """``required`` without the nullable properties: a compact result leaves a null field out."""
    props = schema.get("properties")
    required = schema.get("required")
    if not isinstance(props, dict) or not isinstance(required, list):
        return schema
    kept = [name for name in required if not _nullable(props.get(name, {}))]
    return {k: v for k, v in schema.items() if k != "required"} | ({"required": kept} if kept else {})


def _for_output(schema: dict[str, Any], where: str) -> dict[str, Any]:
    out = _tighten(schema, where)
    out = {k: v for k, v in out.items() if k != "default"}  # a field at its default is sent
    if out.get("additionalProperties") is False:
        del out["additionalProperties"]  # what comes back has the listed fields; nothing to forbid
    if where == "property":
        out = _without_null(out)  # a null property is left out of the result, never sent
    return {k: v for k, v in out.items() if k not in ("description", "format")}  # the tool's text has the words


def _nullable(prop: dict[str, Any]) -> bool:
    kind = prop.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or _NULL in prop.get("anyOf", [])


def _merge_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [{type: X, ...}, {type: null}]`` → ``type: [X, null], ...``."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or len(options) != 2 or _NULL not in options:
        return schema
    other = options[0] if options[1] == _NULL else options[1]
    kind = other.get("type")
    if not isinstance(kind, str) or any(k in schema for k in other):
        return schema  # a $ref, or a clash with the outer keywords: keep the anyOf
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **other, "type": [kind, "null"]}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, list) and "number" in kind:
        return schema  # JSON has no NaN or infinity: pydantic sends them as null
    if isinstance(kind, list) and "null" in kind:
        rest = [k for k in kind if k != "null"]
        return {**schema, "type": rest[0] if len(rest) == 1 else rest}
    options = schema.get("anyOf")
    if isinstance(options, list) and _NULL in options:
        rest_options = [o for o in options if o != _NULL]
        outer = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(rest_options) == 1 and not any(k in outer for k in rest_options[0]):
            return {**outer, **rest_options[0]}
        return {**outer, "anyOf": rest_options}
    return schema
