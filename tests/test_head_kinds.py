"""The head-kind registry: every built-in head type has a complete kind, a kind registered at run time is picked
up by task validation and the trials with no other module edited, and the registry stays free of torch."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from advisor import heads
from advisor.heads import HEAD_TYPES, HIGHER_IS_BETTER, HeadKind, head_kind, register_kind, resolve
from advisor.losses import build_loss, normalize_spec
from advisor.profiling.common import DataReader, forceable_tasks
from advisor.rules import Candidate, candidates
from advisor.task import COMMON_FIELDS, Head, TaskDescription, TaskError, parse_task
from advisor.trials.adapters import Adapter, adapter_for
from advisor.trials.data import prepare, synthetic_data
from advisor.trials.evidence import TrialOptions, _model_factory, batch_size, evaluate_head, scorer
from advisor.trials.kinds import KindTrials, trials_for
from advisor.trials.tabular import mlp, target_moments
from advisor.trials.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
# A small description of each built-in type: three classes where the type has no fixed count (the types
# without classes ignore it; a distribution head stated without one trains 2 outputs on 4 generated columns).
DESCRIBED = {name: {"num_classes": 3} if head_kind(name).classes is None else {} for name in HEAD_TYPES}


@pytest.mark.parametrize("name", HEAD_TYPES)
def test_every_head_type_has_a_complete_kind(name):
    kind = head_kind(name)
    assert kind.metrics and all(metric in HIGHER_IS_BETTER for metric in kind.metrics)
    assert set(kind.fields) <= set(Head.model_fields) - set(COMMON_FIELDS)
    hooks = resolve(kind.trials)
    assert isinstance(hooks, KindTrials)
    assert (hooks.blind is not None) == (kind.layout == "table")  # joint trials need it, and take tables only
    assert kind.reader is None or isinstance(resolve(kind.reader), DataReader)

    head = Head(type=name, **DESCRIBED[name])
    assert head.metric == kind.metrics[0]
    task = TaskDescription(heads=[head], n_samples=64, n_features=5)
    x, y = hooks.generate(head, task, 64, 0)  # synthetic data
    data = prepare(x, y, head, max_rows=48)  # data preparation
    assert data.rows == 48 and data.y.dtype == (torch.long if kind.integer_targets else torch.float32)
    spec = candidates(task)[0].spec  # the rules' first proposal: a loss that serves this type
    adapter = adapter_for(head, spec)  # output adapter
    members = _model_factory(data, TrainConfig(seeds=(0,)))(adapter.out_dim, 1)  # model factory
    with torch.no_grad():
        output = members(data.x[None, :8])[0]  # (seeds, batch, ...) in, (members, batch, ...) out
        loss = build_loss(spec)(adapter.loss_input(output), adapter.loss_target(data.y[:8]))
    assert output.shape[:2] == (8, adapter.out_dim) and torch.isfinite(loss)
    assert math.isfinite(scorer(head.metric, data)(adapter.predict(output), data.y[:8]))
    assert batch_size(name, 1000) == (16 if kind.dense else 62)


def _toy_data(head: Head, task: TaskDescription, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy linear score per row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(min(task.n_samples or 300, rows), 4)).astype(np.float32)
    return x, (x @ np.array([1.0, -0.5, 0.25, 0.0]) + 0.1 * rng.normal(size=len(x))).astype(np.float32)


TOY_TRIALS = KindTrials(
    adapter=lambda head, spec: Adapter("point", 1), generate=_toy_data, model=mlp, blind=target_moments
)
TOY = HeadKind(name="toy_score", metrics=("mae", "rmse"), fields=("target",), trials=f"{__name__}:TOY_TRIALS")


@pytest.fixture
def toy(monkeypatch):
    """The toy kind, registered for one test (the registry is restored after it)."""
    monkeypatch.setattr(heads, "_KINDS", dict(heads._KINDS))
    return register_kind(TOY)


def test_a_registered_kind_is_validated_like_the_built_ins(toy):
    head = Head(type="toy_score", target={"mean": 1.0, "variance": 2.0})
    assert head.kind is toy and head.metric == "mae"
    with pytest.raises(
        TaskError, match="applies to binary, multiclass, ordinal heads, not to a toy_score head"
    ):
        parse_task({"heads": [{"type": "toy_score", "class_histogram": [3, 4]}]})
    with pytest.raises(
        TaskError, match="metric 'accuracy' does not fit a toy_score head; allowed: mae, rmse"
    ):
        parse_task({"heads": [{"type": "toy_score", "metric": "accuracy"}]})
    with pytest.raises(TaskError, match="'audio', 'distribution' or 'toy_score'"):
        parse_task({"heads": [{"type": "toy"}]})
    with pytest.raises(ValueError, match="registered already"):
        register_kind(TOY)
    assert "toy_score" not in forceable_tasks()  # no reader: it can only be described


def test_a_registered_kind_drives_the_trials(toy):
    head = Head(type="toy_score")
    task = TaskDescription(heads=[head], n_samples=300)
    data = synthetic_data(head, task, max_rows=200, seed=1)
    x, _ = _toy_data(head, task, 200, 1)
    assert data.synthetic and np.array_equal(data.x.numpy(), x) and not data.head.kind.rescaled_target
    assert (
        trials_for(head) is TOY_TRIALS and adapter_for(head, normalize_spec({"loss": "mse"})).kind == "point"
    )
    found = [
        Candidate(head=head.name, spec=normalize_spec({"loss": loss}), prior=0.5, rule_id=loss, title=loss,
                  rationale="", references=[])
        for loss in ("mse", "l1")
    ]  # fmt: skip
    measured = evaluate_head(found, data, TrialOptions(repeats=2, epochs=2, race=False))
    assert measured.synthetic and [e.metric for e in measured.evidence] == ["mae", "mae"]
    assert all(
        len(e.per_repeat) == 2 and all(math.isfinite(v) for v in e.per_repeat) for e in measured.evidence
    )


def test_the_registry_profiling_dispatch_and_trial_seam_import_no_torch():
    code = textwrap.dedent("""
        import json, sys
        import advisor.heads, advisor.task, advisor.trials.kinds
        from advisor.profiling import profile
        profile("client_examples/data/churn.csv", target="churned")
        print(json.dumps(sorted(m for m in ("torch", "advisor.trials.tabular") if m in sys.modules)))
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_a_distribution_head_without_a_class_count_is_refused_naming_the_field():
    from advisor.task import TaskError, parse_task

    with pytest.raises(TaskError, match="a distribution head needs num_classes"):
        parse_task({"heads": [{"type": "distribution"}]})
    assert parse_task({"heads": [{"type": "distribution", "num_classes": 4}]}).heads[0].num_classes == 4
