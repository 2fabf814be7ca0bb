"""The loss doctor: catch loss misuse before it wastes a training run.

* :func:`check` looks at one call's tensors: ``advisor.doctor.check(loss, outputs, targets)`` returns
  :class:`Finding` s with what it saw, in numbers, why it matters and the fix.
* :func:`watch` wraps a loss so its first calls are checked (a :class:`LossDoctorWarning` once per finding),
  then costs nothing.
* :func:`scan_source` / :func:`scan_paths` (``advisor-cli doctor train.py``) read training scripts with
  ``ast`` for the same mistakes written in the code.

Every finding is declared once, with its examples, in :mod:`advisor.doctor.findings` (``FINDINGS``).
Names load on first use: the static check and the findings never import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advisor.doctor.findings import FINDINGS, Example, Finding, FindingDoc
    from advisor.doctor.runtime import LossDoctorWarning, LossView, check
    from advisor.doctor.static import ScanResult, scan_paths, scan_source
    from advisor.doctor.wrapper import WatchedLoss, watch

_EXPORTS = {
    "advisor.doctor.findings": ("FINDINGS", "Example", "Finding", "FindingDoc"),
    "advisor.doctor.runtime": ("LossDoctorWarning", "LossView", "check"),
    "advisor.doctor.static": ("ScanResult", "scan_paths", "scan_source"),
    "advisor.doctor.wrapper": ("WatchedLoss", "watch"),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "FINDINGS",
    "Example",
    "Finding",
    "FindingDoc",
    "LossDoctorWarning",
    "LossView",
    "ScanResult",
    "WatchedLoss",
    "check",
    "scan_paths",
    "scan_source",
    "watch",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'advisor.doctor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
