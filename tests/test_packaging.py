"""Packaging: everything installs under the one import namespace ``cloudjobs_mcp``."""

from __future__ import annotations

import ast
import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_under_the_namespace() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        "cloudjobs_mcp." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("server", "tools", "prompts")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert listed - on_disk == set(), "pyproject.toml lists packages that do not exist"
    assert config["package-dir"] == {f"cloudjobs_mcp.{t}": t for t in ("server", "tools", "prompts")}


def test_the_installed_code_is_the_namespaced_one() -> None:
    spec = importlib.util.find_spec("cloudjobs_mcp.server.engine")
    assert spec is not None and spec.origin is not None
    assert Path(spec.origin).name == "engine.py"


def test_no_code_imports_the_root_folders_by_their_bare_names() -> None:
    """`from server.x import …` works from the checkout (cwd on sys.path) but not installed, and would load a
    second copy of the module beside cloudjobs_mcp.server.x: every import goes through the namespace."""
    bare = ("server", "tools", "prompts")
    offenders = []
    for top in ("server", "tools", "prompts", "tests", "bench", "scripts"):
        for path in (ROOT / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in bare]
    assert offenders == [], "import these as cloudjobs_mcp.<name>"


def test_every_data_file_of_a_package_is_in_its_package_data() -> None:
    """The views' HTML, script and style files ship in the wheel and the bundle (else a blank view)."""
    import fnmatch

    from cloudjobs_mcp.server.bundle import PACKAGE_FILES

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = config["package-data"]
    for top in ("server", "tools", "prompts"):
        for path in (ROOT / top).rglob("*"):
            if path.is_dir() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            if not (path.parent / "__init__.py").exists():
                continue
            package = "cloudjobs_mcp." + ".".join(path.parent.relative_to(ROOT).parts)
            patterns = data.get("*", []) + data.get(package, [])
            assert any(fnmatch.fnmatch(path.name, p) for p in patterns), f"{path} is not in package-data"
            assert path.suffix in PACKAGE_FILES, f"{path}: the MCPB bundle (server/bundle.py) leaves it out"
