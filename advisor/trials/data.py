"""Trial data for one head, and the repeated stratified splits the evidence is measured on.

Each repeat is a fresh stratified train / tune / score split of the same rows (and, in the trainer, its own
initialisation). Tune rows choose everything that is chosen (the epoch, the early-stopping point, post-hoc
parameters); score rows only report, so no row both selects and reports. Because every repeat draws its own
split, the spread over repeats covers which rows landed in the score part, not only the initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from advisor.task import Head, TaskDescription
from advisor.trials.kinds import trials_for
from advisor.trials.synthetic import generate

VALIDATION_SHARE = 0.3  # of the rows; half tunes, half scores


@dataclass(frozen=True)
class TrialData:
    """The rows of one head as tensors.

    Regression targets are rescaled by fixed constants of the whole sample (``y * target_scale +
    target_shift`` restores them); the rescaling chooses nothing. A non-negative target is only divided
    (shift 0), so log-link losses (Poisson, Tweedie) still see a non-negative target.
    """

    head: Head
    x: Tensor
    y: Tensor
    target_shift: float = 0.0
    target_scale: float = 1.0
    synthetic: bool = False

    @property
    def rows(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Splits:
    """Row indices of ``repeats`` splits: (repeats, rows) each, equal sizes in every repeat.

    ``validation`` is tune rows first, then score rows (``tune_rows`` of them tune).
    """

    first: int  # number of the first repeat (repeats are numbered so that a race can add more)
    train: Tensor
    validation: Tensor
    tune_rows: int

    @property
    def repeats(self) -> int:
        return len(self.train)

    @property
    def tune(self) -> Tensor:
        return self.validation[:, : self.tune_rows]

    @property
    def score(self) -> Tensor:
        return self.validation[:, self.tune_rows :]


def _strata(y: np.ndarray, head: Head) -> np.ndarray | None:
    """Labels to stratify on: classes with at least 4 rows (so each part can get one), else None."""
    if not head.kind.class_labels:
        return None
    _, counts = np.unique(y, return_counts=True)
    return y if counts.min() >= 4 else None


def _subsample(
    x: np.ndarray, y: np.ndarray, head: Head, rows: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= rows:
        return x, y
    keep, _ = train_test_split(
        np.arange(len(x)), train_size=rows, random_state=seed, stratify=_strata(y, head)
    )
    keep = np.sort(keep)
    return x[keep], y[keep]


def _as_target(y: np.ndarray, head: Head) -> Tensor:
    return torch.as_tensor(y, dtype=torch.long if head.kind.integer_targets else torch.float32)


def prepare(
    x: np.ndarray, y: np.ndarray, head: Head, *, max_rows: int, seed: int = 0, synthetic: bool = False
) -> TrialData:
    """Subsample to ``max_rows`` (stratified on class labels; dense inputs to the fewer rows their kind keeps,
    ``KindTrials.rows``) and rescale the target of a kind whose trials rescale it (regression)."""
    x, y = _subsample(x, y, head, trials_for(head).rows(x, head, max_rows), seed)
    shift, scale = 0.0, 1.0
    if head.kind.rescaled_target:
        y = np.asarray(y, dtype=float)
        shift = 0.0 if y.min() >= 0 else float(y.mean())
        scale = float(np.std(y) or 1.0)
        y = (y - shift) / scale
    return TrialData(
        head=head,
        x=torch.as_tensor(x, dtype=torch.float32),
        y=_as_target(y, head),
        target_shift=shift,
        target_scale=scale,
        synthetic=synthetic,
    )


def repeat_splits(data: TrialData, first: int, count: int, seed: int) -> Splits:
    """Repeats ``first`` .. ``first + count - 1``: each a fresh stratified split drawn from its own seed.

    Repeat r's split depends only on (seed, r), so a race that adds repeats later gets the same splits as a
    run that asked for them all at once.
    """
    y = data.y.numpy()
    labels = y if y.ndim == 1 else None
    index = np.arange(data.rows)
    trains, validations, tune_rows = [], [], 0
    for repeat in range(first, first + count):
        state = seed * 7919 + repeat
        strata = _strata(labels, data.head) if labels is not None else None
        train, val = train_test_split(index, test_size=VALIDATION_SHARE, random_state=state, stratify=strata)
        val_strata = None if strata is None else _strata(labels[val], data.head)
        tune, score = train_test_split(val, test_size=0.5, random_state=state, stratify=val_strata)
        trains.append(np.sort(train))
        validations.append(np.concatenate([np.sort(tune), np.sort(score)]))
        tune_rows = len(tune)
    return Splits(
        first=first,
        train=torch.as_tensor(np.stack(trains)),
        validation=torch.as_tensor(np.stack(validations)),
        tune_rows=tune_rows,
    )


def synthetic_data(head: Head, task: TaskDescription, *, max_rows: int, seed: int = 0) -> TrialData:
    """Trial data generated to match the head's description."""
    x, y = generate(head, task, rows=max_rows, seed=seed)
    return prepare(x, y, head, max_rows=max_rows, seed=seed, synthetic=True)
