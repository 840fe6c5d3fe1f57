"""Choosing the official PAI image for a job type and chip type (the seed's ``resolve_image`` strategy).

1. AIWorkspace ``ListImages`` with ``Labels=system.supported.dlc=true,system.chipType=<CPU|GPU>``,
   ``Name=<framework>`` (fuzzy) and ``Verbose=true`` (Labels are only returned with it).
2. Keep images whose Name starts with ``<framework>:`` or ``<framework>-training:``.
3. Prefer standard images over the ``accl`` / ``ngc`` / ``deepEp`` variants, then images whose tag
   names the chip (``cpu`` / ``gpu``), then the newest (``GmtCreateTime``).

Whether a spec is a GPU spec comes from ListEcsSpecs when known, else from the seed's name rule
(``.gn`` / ``.ebmgn``, extended to the ``sgn``/``vgn`` vGPU families).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cloudjobs_mcp.server.models import Accelerator

FRAMEWORKS: dict[str, str] = {
    "PyTorchJob": "pytorch",
    "TFJob": "tensorflow",
    "MPIJob": "pytorch",
    "XGBoostJob": "xgboost",
    "RayJob": "ray",
}
VARIANT_MARKERS = ("accl", "ngc", "deepep")
_GPU_SPEC = re.compile(r"\.(?:ebm|s|v)?gn\d", re.IGNORECASE)


def chip_type_for_spec(instance_type: str) -> Accelerator:
    """``ecs.gn6i-c4g1.xlarge`` / ``ecs.ebmgn7i.32xlarge`` → GPU; ``ecs.c6.large`` → CPU."""
    return "GPU" if _GPU_SPEC.search(instance_type) else "CPU"


def framework_for(job_type: str) -> str:
    return FRAMEWORKS.get(job_type, "pytorch")


def labels_filter(chip_type: Accelerator) -> str:
    return f"system.supported.dlc=true,system.chipType={chip_type}"


def _labels(image: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for label in image.get("Labels") or []:
        if isinstance(label, dict) and "Key" in label:
            out[str(label["Key"])] = str(label.get("Value", ""))
    return out


def _created(image: Mapping[str, Any]) -> datetime:
    raw = str(image.get("GmtCreateTime") or "")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_standard(name: str) -> bool:
    low = name.lower()
    return not any(marker in low for marker in VARIANT_MARKERS)


def rank(images: Iterable[Mapping[str, Any]], job_type: str, chip_type: Accelerator) -> list[Mapping[str, Any]]:
    """Candidates for ``job_type`` on ``chip_type``, best first (empty when none fits)."""
    framework = framework_for(job_type)
    prefixes = (f"{framework}:", f"{framework}-training:")
    candidates = []
    for image in images:
        name = str(image.get("Name") or "")
        if not image.get("ImageUri") or not name.lower().startswith(prefixes):
            continue
        chip_label = _labels(image).get("system.chipType")
        if chip_label and chip_label.upper() != chip_type:
            continue
        candidates.append(image)

    def score(image: Mapping[str, Any]) -> tuple[bool, bool, datetime]:
        name = str(image.get("Name") or "")
        tag = name.split(":", 1)[1].lower() if ":" in name else ""
        return (is_standard(name), chip_type.lower() in tag, _created(image))

    return sorted(candidates, key=score, reverse=True)
