"""Trial data for one head: a stratified train / tune / score split of real or synthetic rows.

The tune part sets post-hoc recipes (logit-adjustment strength, decision threshold, temperature); the score
part rates every candidate, so no candidate is rated on rows that tuned it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from advisor.task import Head, TaskDescription
from advisor.trials.synthetic import generate

VALIDATION_SHARE = 0.3


@dataclass(frozen=True)
class TrialData:
    """Tensors for one head. Regression targets are standardized (``target_shift``, ``target_scale``)."""

    head: Head
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor  # tune rows first, then score rows
    y_val: Tensor
    tune_rows: int
    target_shift: float = 0.0
    target_scale: float = 1.0
    synthetic: bool = False

    @property
    def y_score(self) -> Tensor:
        return self.y_val[self.tune_rows :]

    @property
    def y_tune(self) -> Tensor:
        return self.y_val[: self.tune_rows]

    @property
    def class_priors(self) -> Tensor | None:
        """Training label frequencies of a single-label classification head (for logit adjustment)."""
        if self.head.type not in ("binary", "multiclass", "ordinal"):
            return None
        counts = torch.bincount(self.y_train, minlength=self.head.num_classes or 2).double()
        return (counts + 1.0) / (counts.sum() + len(counts))


def _stratify(y: np.ndarray, head: Head) -> np.ndarray | None:
    """Labels to stratify on, when every class has at least two rows."""
    if head.type not in ("binary", "multiclass", "ordinal"):
        return None
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 2 else None


def _subsample(
    x: np.ndarray, y: np.ndarray, head: Head, rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= rows:
        return x, y
    keep, _ = train_test_split(
        np.arange(len(x)), train_size=rows, random_state=seed, stratify=_stratify(y, head)
    )
    keep = np.sort(keep)
    return x[keep], y[keep]


def _as_target(y: np.ndarray, head: Head) -> Tensor:
    if head.type in ("binary", "multiclass", "ordinal", "segmentation"):
        return torch.as_tensor(y, dtype=torch.long)
    return torch.as_tensor(y, dtype=torch.float32)


def split(
    x: np.ndarray, y: np.ndarray, head: Head, *, max_rows: int, seed: int = 0, synthetic: bool = False
) -> TrialData:
    """Subsample to ``max_rows`` (stratified), then split train / tune / score (stratified where possible)."""
    x, y = _subsample(x, y, head, max_rows, seed)
    index = np.arange(len(x))
    train, val = train_test_split(
        index, test_size=VALIDATION_SHARE, random_state=seed, stratify=_stratify(y, head)
    )
    tune, score = train_test_split(val, test_size=0.5, random_state=seed, stratify=_stratify(y[val], head))
    shift, scale = 0.0, 1.0
    if head.type == "regression":
        shift, scale = float(np.mean(y[train])), float(np.std(y[train]) or 1.0)
    y = (y - shift) / scale if head.type == "regression" else y
    val = np.concatenate([tune, score])
    return TrialData(
        head=head,
        x_train=torch.as_tensor(x[train], dtype=torch.float32),
        y_train=_as_target(y[train], head),
        x_val=torch.as_tensor(x[val], dtype=torch.float32),
        y_val=_as_target(y[val], head),
        tune_rows=len(tune),
        target_shift=shift,
        target_scale=scale,
        synthetic=synthetic,
    )


def synthetic_data(head: Head, task: TaskDescription, *, max_rows: int, seed: int = 0) -> TrialData:
    """Trial data generated to match the head's description."""
    x, y = generate(head, task, rows=max_rows, seed=seed)
    return split(x, y, head, max_rows=max_rows, seed=seed, synthetic=True)
