"""Keep server.json (the MCP Registry entry) in step with the README and pyproject.toml.

    python scripts/server_json.py          # rewrite server.json: versions, the CLOUDJOBS_* variables
    python scripts/server_json.py --check  # exit 1 and say what differs (tests/test_server_json.py runs this)

The README's settings table is the one list of ``CLOUDJOBS_*`` settings: each row becomes an entry of
``packages[0].environmentVariables`` (name, description from the "meaning" column, the default when it is
a literal value, format from ``Settings``' field type, ``isSecret`` by the secret rule below). Hand-added
keys of an entry (``choices``, ``placeholder``) survive a rewrite. Variables of other names (a cloud's own credentials,
``ALIBABA_CLOUD_*``) are written by hand in server.json and kept as they are.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from cloudjobs_mcp.server.clients import EXTRA_SETTINGS

ROOT = Path(__file__).resolve().parent.parent
SERVER_JSON = ROOT / "server.json"
SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
NON_SETTINGS = set(EXTRA_SETTINGS)  # read by the CLI itself, not Settings fields
# A variable is a secret when its name says so; a path to a secret (…_TOKEN_FILE) is not one.
_SECRET_WORDS = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_KEY|ACCESS_KEY|PRIVATE_KEY|_SK$")
_NOT_SECRET_SUFFIX = ("_FILE", "_DIR", "_PATH", "_URL", "_ENABLED")


def is_secret(name: str) -> bool:
    return bool(_SECRET_WORDS.search(name)) and not name.endswith(_NOT_SECRET_SUFFIX)


def project() -> dict[str, Any]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"])


def version() -> str:
    """pyproject's version (static, or dynamic from cloudjobs_mcp.server.__version__)."""
    meta = project()
    if "version" in meta:
        return str(meta["version"])
    init = (ROOT / "server" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"', init, re.M)
    if not found:
        raise SystemExit("server/__init__.py has no __version__ line")
    return found.group(1)


def registry_name() -> str:
    """io.github.<owner>/<repo> of [project.urls] Repository."""
    url = project()["urls"]["Repository"]
    found = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", url)
    if not found:
        raise SystemExit(f"[project.urls] Repository must be a GitHub URL, not {url!r}")
    return f"io.github.{found.group(1)}/{found.group(2)}"


def settings_table(readme: str | None = None) -> list[dict[str, str]]:
    """The README's settings table as rows {name, default, meaning}; `..._X` cells expand as in the README."""
    text = readme if readme is not None else (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`CLOUDJOBS_"):
            continue
        names = re.findall(r"`([A-Z0-9_.]+)`", cells[0])
        first = names[0]
        for name in names:
            full = first.rsplit("_", 1)[0] + name[3:] if name.startswith("..._") else name
            rows.append({"name": full, "default": cells[1], "meaning": cells[2]})
    return rows


def _plain(markdown: str) -> str:
    return re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", markdown).replace("`", "").strip()


def _format(name: str) -> str:
    from cloudjobs_mcp.server.config import PREFIX, Settings

    field = Settings.model_fields.get(name.removeprefix(PREFIX).lower())
    if field is None:
        return "string"
    kinds = {bool: "boolean", int: "number", float: "number", Path: "filepath"}
    annotation = field.annotation
    for kind, fmt in kinds.items():
        if annotation is kind or annotation == kind | None:
            return fmt
    return "string"


def variable(row: dict[str, str]) -> dict[str, Any]:
    name = row["name"]
    entry: dict[str, Any] = {"name": name, "description": _plain(row["meaning"]), "format": _format(name)}
    # Only a literal value (a code span in the table) is a default; prose such as "none" or "the server's
    # URL" says what happens when the variable is unset, and `http://HOST:PORT/mcp` is a template.
    literal = re.fullmatch(r"`([^`]+)`", row["default"].strip())
    default = literal.group(1) if literal else ""
    if re.search(r"[<>]|[A-Z]{3,}", default) and not re.fullmatch(r"[A-Z_]+", default):
        default = ""
    if default:
        if entry["format"] == "boolean":
            default = {"0": "false", "1": "true"}.get(default, default)
        entry["default"] = default
    entry["isRequired"] = False
    entry["isSecret"] = is_secret(name)
    return entry


def expected(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` with versions, name and the CLOUDJOBS_* variables brought up to date."""
    doc = json.loads(json.dumps(current))
    ver = version()
    doc["$schema"], doc["name"], doc["version"] = SCHEMA_URL, registry_name(), ver
    package = doc["packages"][0]
    package["version"] = ver
    old = {v["name"]: v for v in package.get("environmentVariables", [])}
    ours = []
    for row in settings_table():
        generated = variable(row)
        kept = {k: v for k, v in old.get(row["name"], {}).items() if k not in generated and k != "default"}
        ours.append({**generated, **kept})
    others = [v for v in old.values() if not v["name"].startswith("CLOUDJOBS_")]
    package["environmentVariables"] = ours + others
    return doc


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    current = json.loads(SERVER_JSON.read_text())
    want = expected(current)
    if "--check" not in argv:
        SERVER_JSON.write_text(dump(want))
        return 0
    if want == current:
        return 0
    have = {v["name"] for v in current["packages"][0].get("environmentVariables", [])}
    need = {v["name"] for v in want["packages"][0]["environmentVariables"]}
    print("server.json is out of date; run: python scripts/server_json.py", file=sys.stderr)
    for name in sorted(need - have):
        print(f"  add {name} (it is in the README's settings table)", file=sys.stderr)
    for name in sorted(have - need):
        print(f"  remove {name} (not in the README's settings table)", file=sys.stderr)
    if need == have:
        print("  (an entry, the version or the name changed)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
