"""The batched trainer: same per-member losses as training each member alone, divergence isolation,
budgets, cancel and progress."""

from __future__ import annotations

import math

import pytest
import torch

import advisor
from advisor.task import Head
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.models import standalone_mlp
from advisor.trials.trainer import BatchedTrainer, Member, TrainConfig, _batches

SPECS = [
    {"loss": "cross_entropy"},
    {"loss": "focal", "params": {"gamma": 2.0}},
    {"loss": "cross_entropy", "params": {"label_smoothing": 0.1}},
    {"loss": "gce"},
]
HEAD = Head(type="multiclass", num_classes=3)


def _data(n=240, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    return x, y


def _members(specs, pooled=True):
    out = []
    for spec in specs:
        spec = advisor.normalize_spec(spec)
        pooling = seed_pooling(spec) if pooled else None
        out.append(Member(advisor.build_loss(spec), adapter_for(HEAD, spec), pooling))
    return out


def _latest_epoch_is_best():
    epochs = iter(range(10_000))
    return lambda _candidate, _predictions: float(next(epochs))


@pytest.mark.parametrize("pooled", [True, False])
def test_batched_training_equals_training_each_member_alone(pooled):
    x, y = _data()
    specs = [*SPECS, {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 3.0]}}]  # never pooled
    config = TrainConfig(seeds=(3, 7), epochs=3, budget_s=60, batch_size=32, hidden=16, lr=1e-2)
    members = _members(specs, pooled)
    assert [m.pooled for m in members] == (["mean"] * 4 + [None] if pooled else [None] * 5)
    x_val, y_val = x[:40], y[:40]
    run = BatchedTrainer(members, x.shape[1], config).fit(
        x, y, x_val, _latest_epoch_is_best(), higher_is_better=True
    )
    assert run.stopped_by == "epochs" and run.epochs_completed == 3
    for member in run.members:
        # The same member trained alone: same seed, same batches, same loss, its own Adam.
        model = standalone_mlp(x.shape[1], 16, 3, member.seed)
        loss = advisor.build_loss(specs[member.candidate])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        seed_index = config.seeds.index(member.seed)
        for epoch in range(3):
            for indices in _batches(len(x), 32, config.seeds, epoch)[:, seed_index]:
                value = loss(model(x[indices]), y[indices])
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
        with torch.no_grad():
            alone = model(x_val)
        assert member.best_epoch == 3
        torch.testing.assert_close(member.best_output, alone, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(loss(member.best_output, y_val), loss(alone, y_val), rtol=1e-5, atol=1e-6)


def test_a_diverging_member_is_stopped_and_the_others_go_on():
    x, y = _data()
    specs = [{"loss": "cross_entropy"}, {"loss": "cross_entropy"}]
    members = _members(specs)

    class Explodes(torch.nn.Module):
        calls = 0

        def forward(self, input, target):
            Explodes.calls += 1
            return input.sum() * (float("nan") if Explodes.calls > 5 else 1.0)

    members[1] = Member(Explodes(), members[1].adapter)
    run = BatchedTrainer(members, x.shape[1], TrainConfig(seeds=(0,), epochs=3, batch_size=32)).fit(
        x,
        y,
        x[:40],
        lambda c, p: float((p["proba"].argmax(1) == y[:40]).float().mean()),
        higher_is_better=True,
    )
    healthy, broken = run.members
    assert broken.diverged_at_epoch == 0 and len(broken.curve) == 0
    assert healthy.diverged_at_epoch is None and len(healthy.curve) == 3
    assert all(math.isfinite(v) for v in healthy.train_loss)


def test_time_budget_cancel_and_progress():
    x, y = _data(n=2000)
    seen = []
    config = TrainConfig(seeds=(0, 1), epochs=500, budget_s=0.3, batch_size=16)
    run = BatchedTrainer(_members(SPECS[:2]), x.shape[1], config).fit(
        x, y, x[:50], lambda c, p: 0.5, higher_is_better=True, progress=seen.append
    )
    assert run.stopped_by == "time" and 1 <= run.epochs_completed < 500
    assert [p.epoch for p in seen] == list(range(1, run.epochs_completed + 1))
    assert seen[-1].alive == seen[-1].members == 4 and seen[-1].best_so_far == 0.5
    calls = iter(range(10_000))
    run = BatchedTrainer(_members(SPECS[:2]), x.shape[1], config).fit(
        x, y, x[:50], lambda c, p: 0.5, higher_is_better=True, cancel=lambda: next(calls) >= 3
    )
    assert run.stopped_by == "cancelled" and run.steps == 3 and run.epochs_completed == 0
