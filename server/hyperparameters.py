"""How a hyperparameter reaches a training program as an environment variable, on every platform.

One rule everywhere (local, PAI-DLC envs, the sandbox's PaiStudio jobs): ``HP_`` + the name upper-cased,
every character other than a letter or digit as ``_`` — so ``lr`` and ``LR`` are the same variable.
"""

from __future__ import annotations

import re

HP_PREFIX = "HP_"


def env_name(name: str) -> str:
    """``lr`` → ``HP_LR``, ``warmup-steps`` → ``HP_WARMUP_STEPS``."""
    return HP_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
