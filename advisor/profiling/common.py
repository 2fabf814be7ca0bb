"""What every profiler shares: the error type and its helpers, the forceable task names, the result type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from advisor.errors import AdvisorError, FieldViolation
from advisor.task import TaskDescription

FORCEABLE_TASKS = (
    "regression",
    "binary",
    "multiclass",
    "count",
    "ordinal",
    "multilabel",
    "segmentation",
    "audio",
)
TaskName = Literal[
    "regression", "binary", "multiclass", "count", "ordinal", "multilabel", "segmentation", "audio"
]


class ProfileError(AdvisorError):
    """Data that cannot be profiled: no target to use, an unreadable file, a single class, a bad option."""


def _error(field_name: str, description: str) -> ProfileError:
    return ProfileError(FieldViolation(field_name, description))


def _listing(names: Sequence[str], limit: int = 30) -> str:
    """Names for an error message, shortened when there are very many."""
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_options(task: str | None, max_rows: Any) -> None:
    """The options every profiler takes: a known ``task`` (or None) and a positive ``max_rows``."""
    if task is not None and task not in FORCEABLE_TASKS:
        raise _error("task", f"unknown task {task!r}; expected one of {', '.join(FORCEABLE_TASKS)} or None")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise _error("max_rows", f"expected a positive integer, got {max_rows!r}")


@dataclass(frozen=True)
class ProfiledData:
    """A profile together with the sampled rows it was computed from, encoded for training.

    Tables: ``features`` are the sampled rows as standardized numeric columns and one-hot levels (float32);
    ``targets`` maps each head name to its targets for those rows: class indices into the head's
    ``class_labels``, 0/1 label columns (multilabel) or numbers. Images: ``features`` are the sampled images
    (N, C, H, W) float32, standardized per channel, and the segmentation head's targets their masks (N, H, W)
    of int64 class indices. Audio: ``features`` are the input clips (N, 1, T) float32, mono, and the audio head's
    targets their target clips alike (see :mod:`advisor.profiling.audio`).
    """

    task: TaskDescription
    features: np.ndarray
    targets: dict[str, np.ndarray]
