"""server.json, the MCP Registry entry: valid on the registry's schema and in step with the project.

The schema is vendored in tests/data/server.schema.2025-12-11.json, a byte-for-byte copy of
https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json (its ``$id``; in the registry's
repository: internal/validators/schemas/2025-12-11.json).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, FormatChecker

from cloudjobs_mcp.server import __version__
from cloudjobs_mcp.server.config import PREFIX, Settings
from scripts import server_json

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "data" / "server.schema.2025-12-11.json").read_text())
VALIDATOR = Draft7Validator(SCHEMA, format_checker=FormatChecker())
# The registry rejects ranges in versions (validators.go); the schema lets them through.
RANGE = re.compile(r"^\s*(\^|~|[<>]=?|=)|(^|\.)[xX*](\.|$)|\|\||\s-\s")


def _doc() -> dict[str, Any]:
    return json.loads((ROOT / "server.json").read_text())


def _errors(doc: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def _variables(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in doc["packages"][0]["environmentVariables"]}


def test_server_json_is_valid_on_the_registry_schema():
    doc = _doc()
    assert doc["$schema"] == SCHEMA["$id"] == server_json.SCHEMA_URL
    assert _errors(doc) == []
    assert 1 <= len(doc["description"]) <= 100


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda d: d.update(description="x" * 101), "is too long"),
        (lambda d: d.update(name="io.github.cloudjobs-mcp"), "does not match"),
        (lambda d: d["packages"][0].update(version="latest"), "should not be valid"),
        (lambda d: d["packages"][0].pop("transport"), "'transport' is a required property"),
        (lambda d: d["packages"][0]["environmentVariables"][0].update(isSecret="yes"), "is not of type 'boolean'"),
        (lambda d: d["repository"].update(url="not a url"), "is not a 'uri'"),
    ],
)
def test_the_schema_check_catches_what_the_registry_refuses(mutate, complaint):
    doc = copy.deepcopy(_doc())
    mutate(doc)
    assert any(complaint in e for e in _errors(doc)), _errors(doc)


def test_versions_agree_and_are_exact():
    doc = _doc()
    package = doc["packages"][0]
    assert doc["version"] == package["version"] == __version__ == server_json.version()
    for version in (doc["version"], package["version"]):
        assert not RANGE.search(version), version


def test_a_pypi_package_started_with_uvx_over_stdio():
    (package,) = _doc()["packages"]
    assert package["registryType"] == "pypi" and package["identifier"] == "cloudjobs-mcp"
    assert package["runtimeHint"] == "uvx" and package["transport"] == {"type": "stdio"}
    # The registry accepts only https://pypi.org here, and VS Code turns it into a broken --index-url.
    assert "registryBaseUrl" not in package


def test_the_name_is_the_repository_owner_and_the_readme_carries_the_ownership_marker():
    doc = _doc()
    assert doc["name"] == "io.github.cloudjobs-mcp/cloudjobs-mcp" == server_json.registry_name()
    assert doc["repository"] == {"url": "https://github.com/cloudjobs-mcp/cloudjobs-mcp", "source": "github"}
    readme = (ROOT / "README.md").read_text()
    # On its own line, nothing glued to the name (the registry matches the name up to a boundary).
    assert f"\n<!-- mcp-name: {doc['name']} -->\n" in readme


def test_every_setting_in_the_readme_table_is_declared_and_no_other():
    declared = {n for n in _variables(_doc()) if n.startswith(PREFIX)}
    documented = {row["name"] for row in server_json.settings_table()}
    assert documented - declared == set(), "run: python scripts/server_json.py (it adds these to server.json)"
    assert declared - documented == set(), "these are not in the README's settings table: add rows or remove them"
    # And the table is what the server reads: every Settings field has a row, every row a field.
    fields = {PREFIX + name.upper() for name in Settings.model_fields}
    assert fields - documented == set(), "add these settings to the README's settings table"
    assert documented - fields - server_json.NON_SETTINGS == set(), "the README documents settings config.py lacks"


def test_server_json_is_current_with_the_readme_and_pyproject():
    """Other branches add settings: the check names what to run and what it adds."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "server_json.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_secrets_are_marked_secret_and_nothing_else_is():
    variables = _variables(_doc())
    for name, var in variables.items():
        # Huawei's SDK calls its secret key plain SK (HUAWEICLOUD_SDK_SK); its AK is the key's public id.
        looks_secret = re.search(r"SECRET|TOKEN|PASSWORD|API_KEY|ACCESS_KEY|_SK$", name) and not name.endswith("_FILE")
        assert var.get("isSecret", False) == bool(looks_secret), name
        assert var.get("description"), name
        if var.get("isSecret"):
            assert "default" not in var and "value" not in var, name
    assert variables["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]["isSecret"] is True
    assert variables["CLOUDJOBS_PROVIDER"]["isSecret"] is False


def test_the_generator_reads_the_table_as_written():
    readme = (
        "# x\n\n## Settings\n\n| variable | default | meaning |\n| --- | --- | --- |\n"
        "| `CLOUDJOBS_A_TOKEN` | none | a `token` for [the API](https://example.com) |\n"
        "| `CLOUDJOBS_EP_DLC`, `..._ECS` | `1` | endpoints |\n"
        "| `CLOUDJOBS_URL` | the server's URL | where |\n\n## Next\n| `CLOUDJOBS_NOT_A_SETTING` | x | y |\n"
    )
    rows = server_json.settings_table(readme)
    assert [r["name"] for r in rows] == ["CLOUDJOBS_A_TOKEN", "CLOUDJOBS_EP_DLC", "CLOUDJOBS_EP_ECS", "CLOUDJOBS_URL"]
    token = server_json.variable(rows[0])
    assert token == {
        "name": "CLOUDJOBS_A_TOKEN",
        "description": "a token for the API",
        "format": "string",
        "isRequired": False,
        "isSecret": True,
    }
    assert server_json.variable(rows[2])["default"] == "1"
    assert "default" not in server_json.variable(rows[3])  # prose, not a value
