"""Our wheel, built once per test run, and an offline wheelhouse to install it from as users would.

No test may reach a package index, yet ``uvx cloudjobs-mcp`` and ``pip install cloudjobs-mcp`` must resolve
our dependencies. The wheelhouse holds our wheel plus a wheel of every distribution in our dependency
closure, repacked from this test environment's installed files (the same versions, the original wheel tags),
so uv and pip resolve exactly as against an index, with ``UV_OFFLINE``/``PIP_NO_INDEX`` set.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
# What a build reads: the project files, never build/ or an egg-info left in the checkout.
SOURCES = ("pyproject.toml", "README.md", "server", "tools", "prompts")


@contextmanager
def _once(directory: Path) -> Iterator[bool]:
    """Yields True to the one test process (of all xdist workers) that must build ``directory``."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield not (directory / ".done").exists()
        if directory.exists():
            (directory / ".done").touch()


def _shared_tmp(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_wheel(dest: Path) -> Path:
    """``pip wheel`` of a copy of the sources (no build isolation: setuptools comes from the test extra)."""
    src = dest / "src"
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, src / name)
    out = dest / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1"},
    )
    (wheel,) = out.glob("cloudjobs_mcp-*.whl")
    return wheel


def dependency_closure(requirements: list[str]) -> dict[str, metadata.Distribution]:
    """The installed distributions these requirements pull in, with extras and this platform's markers."""
    found: dict[str, metadata.Distribution] = {}
    # Only what a plain install pulls in: an extra's requirements (test, compat, plot) stay out.
    todo = [r for r in map(Requirement, requirements) if r.marker is None or r.marker.evaluate({"extra": ""})]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found:
            continue
        dist = found[name] = metadata.distribution(req.name)
        for raw in dist.requires or []:
            sub = Requirement(raw)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in req.extras or {""}):
                todo.append(sub)
    return found


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """A wheel of an installed distribution: its files under site-packages, its WHEEL tags, a fresh RECORD."""
    files = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in f.parts]
    info = next(f.parent for f in files if f.name == "WHEEL" and f.parent.name.endswith(".dist-info"))
    tags = [
        line.split(":", 1)[1].strip().split("-")
        for line in (dist.read_text("WHEEL") or "").splitlines()
        if line.startswith("Tag:")
    ]
    tag = "-".join(".".join(sorted({t[i] for t in tags})) for i in range(3))
    wheel = dest / f"{info.name.removesuffix('.dist-info')}-{tag}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for f in files:
            if f.parent == info and f.name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json"):
                continue
            data = Path(str(dist.locate_file(f))).read_bytes()
            zf.writestr(str(f), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{f},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of wheels: ours and every runtime dependency's, for offline installs."""
    house = _shared_tmp(tmp_path_factory) / "wheelhouse"
    with _once(house) as build:
        if build:
            shutil.rmtree(house, ignore_errors=True)
            house.mkdir()
            ours = build_wheel(house.parent / "wheel-build")
            shutil.copy2(ours, house)
            for dist in dependency_closure(metadata.requires("cloudjobs-mcp") or []).values():
                repack(dist, house)
    return house


@pytest.fixture(scope="session")
def our_wheel(wheelhouse: Path) -> Path:
    (wheel,) = wheelhouse.glob("cloudjobs_mcp-*.whl")
    return wheel


def offline_env(home: Path, wheelhouse: Path, cache: Path) -> dict[str, str]:
    """The user's environment, with uv and pip pointed at the wheelhouse and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_", "VIRTUAL_ENV", "PYTHON"))}
    # On PATH: uv and uvx (from the test extra), not this test environment's own cloudjobs-mcp or python.
    tools = home / "bin"
    tools.mkdir(parents=True, exist_ok=True)
    venv_bin = Path(sys.executable).parent
    for name in ("uv", "uvx"):
        if not (tools / name).exists():
            (tools / name).symlink_to(venv_bin / name)
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != venv_bin]
    env["PATH"] = os.pathsep.join([str(tools), *path])
    return {
        **env,
        "HOME": str(home),
        "UV_OFFLINE": "1",
        "UV_FIND_LINKS": str(wheelhouse),
        "UV_NO_CONFIG": "1",
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_CACHE_DIR": str(cache),
        "UV_TOOL_DIR": str(home / "uv-tools"),
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(wheelhouse),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_COMPILE": "1",  # seconds saved; byte-compiling is not what these tests are about
    }
