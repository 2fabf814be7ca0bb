"""The trial side of a head kind: how trials shape its output, generate its synthetic data, build its net and
prepare its rows.

Each :class:`advisor.heads.HeadKind` names its :class:`KindTrials` by reference (``trials``); the built-in ones
live in the trial module of their family (:mod:`advisor.trials.tabular`, :mod:`advisor.trials.segmentation`,
:mod:`advisor.trials.audio`). The trials reach them through :func:`trials_for` and never branch on the type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from advisor.heads import resolve
from advisor.task import Head, TaskDescription

if TYPE_CHECKING:  # annotations only: those modules reach the kinds through this one
    from torch import Tensor

    from advisor.spec import LossSpec
    from advisor.trials.adapters import Adapter
    from advisor.trials.data import TrialData
    from advisor.trials.trainer import ModelFactory, TrainConfig


def all_rows(x: np.ndarray, head: Head, max_rows: int) -> int:
    """Feature rows cost little each: a trial keeps the row budget whatever the rows hold."""
    return max_rows


@dataclass(frozen=True)
class KindTrials:
    """The trial hooks of one head kind.

    - ``adapter(head, spec)``: the output layout a trial model needs to train the head with that loss;
    - ``generate(head, task, rows, seed)``: synthetic ``(inputs, targets)`` matching a description, at most
      ``rows`` of them, deterministic for the seed;
    - ``model(data, config)``: the stacked trial net for that data;
    - ``rows(inputs, head, max_rows)``: how many of these inputs a trial keeps, at most ``max_rows`` (dense
      inputs cost more per row);
    - ``blind(data)``: the predictions of a feature-blind model (the chance level of joint multi-task trials,
      which train table heads only; None for the others).
    """

    adapter: Callable[[Head, LossSpec], Adapter]
    generate: Callable[[Head, TaskDescription, int, int], tuple[np.ndarray, np.ndarray]]
    model: Callable[[TrialData, TrainConfig], ModelFactory]
    rows: Callable[[np.ndarray, Head, int], int] = all_rows
    blind: Callable[[TrialData], dict[str, Tensor]] | None = None


def trials_for(head: Head) -> KindTrials:
    """The trial hooks of ``head``'s kind (its module imported on first use)."""
    return resolve(head.kind.trials)
