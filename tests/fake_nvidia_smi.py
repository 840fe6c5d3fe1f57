"""A fake ``nvidia-smi`` for tests: a shell script on PATH answering the queries the local provider makes.

* ``--query-gpu=index,name,memory.total --format=csv,noheader,nounits`` (GPU detection, ``machine.py``)
* ``--query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits`` (metrics
  and the DeviceCheck sanity check)
* ``--query-compute-apps=pid,used_memory --format=csv,noheader,nounits`` (no process: empty)

Anything else exits 2. Every call is appended to ``calls.log`` next to the script.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

H100 = "NVIDIA H100 80GB HBM3"
H100_MIB = 81559


def fake_nvidia_smi_script(
    gpus: int = 2,
    name: str = H100,
    memory_mib: int = H100_MIB,
    utilization: Sequence[str] | None = None,
    memory_used: Sequence[str] | None = None,
    calls_log: Path | None = None,
) -> str:
    util = list(utilization or ["0"] * gpus)
    used = list(memory_used or ["0"] * gpus)
    names = "".join(f"{i}, {name}, {memory_mib}\\n" for i in range(gpus))
    usage = "".join(f"{i}, {util[i]}, {used[i]}, {memory_mib}\\n" for i in range(gpus))
    log = f'echo "$*" >> "{calls_log}"\n' if calls_log is not None else ""
    return f"""#!/bin/sh
{log}case "$*" in
  "--query-gpu=index,name,memory.total --format=csv,noheader,nounits") printf '{names}' ;;
  "--query-gpu=index,utilization.gpu,memory.used,memory.total --format=csv,noheader,nounits") printf '{usage}' ;;
  "--query-compute-apps=pid,used_memory --format=csv,noheader,nounits") : ;;
  *) echo "fake nvidia-smi: unsupported arguments: $*" >&2; exit 2 ;;
esac
"""


def install_fake_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: object) -> Path:
    """Put a fake ``nvidia-smi`` first on PATH (for this test); returns its calls log."""
    bin_dir = tmp_path / "fake-smi-bin"
    bin_dir.mkdir(exist_ok=True)
    calls = bin_dir / "calls.log"
    smi = bin_dir / "nvidia-smi"
    smi.write_text(fake_nvidia_smi_script(calls_log=calls, **kw))  # type: ignore[arg-type]
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls
