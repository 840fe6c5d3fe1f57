"""The environment of a sandbox pod, the same for every face: this Python first on ``PATH``, unbuffered
output, no GPU (``CUDA_VISIBLE_DEVICES=""``; GPU specs run on the CPU, a job may override it in its envs),
then the job's envs and PyTorchJob's rendezvous variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def pod_env(envs: Mapping[str, str], *, rank: int, world: int, port: str) -> dict[str, str]:
    python_dir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", os.defpath)
    if path.split(os.pathsep)[0] != python_dir:
        path = python_dir + os.pathsep + path
    env = {"PATH": path, "PYTHONUNBUFFERED": "1", "CUDA_VISIBLE_DEVICES": "", **envs}
    env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    return env
