"""Synthetic trial data that matches a head's description, for description-only requests.

Each head kind's generator (``KindTrials.generate``, in the trial module of its family) follows the stated
statistics: class histogram and feature count, label noise at the stated rate, regression outliers at the
stated fraction and heteroscedastic noise when stated, counts with the stated mean, dispersion and zero share,
multilabel positive rates, segmentation masks with the stated foreground shares, audio clips at the stated
sample rate. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

from advisor.task import Head, TaskDescription
from advisor.trials.kinds import trials_for

DEFAULT_ROWS = 4000


def synthetic_rows(task: TaskDescription, limit: int) -> int:
    """Rows to generate: the described sample size (else :data:`DEFAULT_ROWS`), at most ``limit``."""
    return int(min(task.n_samples or DEFAULT_ROWS, limit))


def generate(head: Head, task: TaskDescription, *, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) for ``head`` with at most ``rows`` rows."""
    return trials_for(head).generate(head, task, rows, seed)
