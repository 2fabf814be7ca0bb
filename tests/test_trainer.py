"""The batched trainer: same per-member losses as training each member alone, divergence isolation,
budgets, cancel and progress."""

from __future__ import annotations

import math

import pytest
import torch

import advisor
from advisor.errors import LossInputError
from advisor.task import Head
from advisor.trials.adapters import adapter_for, seed_pooling
from advisor.trials.data import Splits
from advisor.trials.models import standalone_mlp
from advisor.trials.trainer import BatchedTrainer, FusedAdamW, Member, TrainConfig, _batches

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
    return lambda _candidate, _repeat, _output: float(next(epochs))


def _splits(n: int, repeats: int, val: int = 40) -> Splits:
    """Every repeat trains on all rows and validates on the first ``val`` (half tune, half score)."""
    rows = torch.arange(n)
    return Splits(0, rows.expand(repeats, n), rows[:val].expand(repeats, val), val // 2)


BEST = {"best_epoch": None}


@pytest.mark.parametrize("pooled", [True, False])
def test_batched_training_equals_training_each_member_alone(pooled):
    x, y = _data()
    specs = [
        *SPECS,
        {"loss": "cross_entropy", "params": {"weight": [1.0, 2.0, 3.0]}},  # never pooled
        {"loss": "focal", "params": {"gamma": 1.0, "reduction": "sum"}},  # outside the softmax family
    ]
    config = TrainConfig(seeds=(3, 7), epochs=3, budget_s=60, batch_size=32, hidden=16, lr=1e-2)
    members = _members(specs, pooled)
    assert [m.pooled for m in members] == (["mean"] * 4 + [None, "sum"] if pooled else [None] * 6)
    trainer = BatchedTrainer(members, x.shape[1], config)
    assert [sorted(trainer.groups[0][p.start : p.stop]) for p in trainer.plans[0].fused] == [[0, 1, 2, 3, 4]]
    x_val, y_val = x[:40], y[:40]
    splits = _splits(len(x), 2)
    run = trainer.fit(x, y, splits, _latest_epoch_is_best(), higher_is_better=True, patience=BEST)
    assert run.stopped_by == "epochs" and run.epochs_completed == 3
    for member in run.members:
        # The same member trained alone: same seed, same batches, same loss, its own AdamW.
        seed = config.seeds[member.repeat]
        model = standalone_mlp(x.shape[1], 16, 3, seed)
        loss = advisor.build_loss(specs[member.candidate])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=config.weight_decay)
        for epoch in range(3):
            for indices in _batches(splits, 32, config.seeds, epoch)[:, member.repeat]:
                value = loss(model(x[indices]), y[indices])
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
        with torch.no_grad():
            alone = model(x_val)
        kept = member.choices["best_epoch"]
        assert kept.epoch == 3
        torch.testing.assert_close(kept.output, alone, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(loss(kept.output, y_val), loss(alone, y_val), rtol=1e-5, atol=1e-6)


def test_fused_adamw_matches_torch_adamw():
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(4))]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    start = ours[0].detach().clone()
    optimizer = FusedAdamW(ours, lr=3e-2, weight_decay=0.1)
    reference = torch.optim.AdamW(theirs, lr=3e-2, weight_decay=0.1)
    for step in range(6):
        inputs = torch.randn(4, generator=torch.Generator().manual_seed(step))
        for params, opt in ((ours, optimizer), (theirs, reference)):
            opt.zero_grad()
            ((params[0].sum(1)[:4] * inputs).sum() ** 2 + params[1].square().sum()).backward()
            opt.step()
    for mine, expected in zip(ours, theirs, strict=True):
        torch.testing.assert_close(mine, expected, rtol=1e-6, atol=1e-7)
    assert (ours[0] - start).abs().min() > 1e-3  # every entry moved: the comparison is not vacuous


def test_a_bad_target_fails_once_before_training_with_the_catalog_error():
    x, y = _data()
    y = y.clone()
    y[3] = 7  # three classes: index 7 is out of range
    trainer = BatchedTrainer(_members(SPECS), x.shape[1], TrainConfig(seeds=(0,), epochs=2, batch_size=32))
    assert trainer.plans[0].fused, "the softmax family is fused"
    with pytest.raises(LossInputError, match="class index 7"):
        trainer.fit(x, y, _splits(len(x), 1), lambda c, r, o: 0.0, higher_is_better=True, patience=BEST)


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
        _splits(len(x), 1),
        lambda c, r, out: float((out.argmax(1) == y[:20]).float().mean()),
        higher_is_better=True,
        patience=BEST,
    )
    healthy, broken = run.members
    assert broken.diverged_at_epoch == 0 and len(broken.tune_curve) == 0
    assert healthy.diverged_at_epoch is None and len(healthy.tune_curve) == 3
    assert all(math.isfinite(v) for v in healthy.train_loss)


def test_time_budget_cancel_and_progress():
    x, y = _data(n=2000)
    seen = []
    config = TrainConfig(seeds=(0, 1), epochs=500, budget_s=0.3, batch_size=16)
    run = BatchedTrainer(_members(SPECS[:2]), x.shape[1], config).fit(
        x, y, _splits(len(x), 2), lambda c, r, o: 0.5, higher_is_better=True, patience=BEST,
        progress=seen.append,
    )  # fmt: skip
    assert run.stopped_by == "time" and 1 <= run.epochs_completed < 500
    assert [p.epoch for p in seen] == list(range(1, run.epochs_completed + 1))
    assert seen[-1].alive == seen[-1].members == 4 and seen[-1].best_so_far == 0.5
    calls = iter(range(10_000))
    run = BatchedTrainer(_members(SPECS[:2]), x.shape[1], config).fit(
        x, y, _splits(len(x), 2), lambda c, r, o: 0.5, higher_is_better=True, patience=BEST,
        cancel=lambda: next(calls) >= 3,
    )  # fmt: skip
    assert run.stopped_by == "cancelled" and run.steps == 3 and run.epochs_completed == 0


def test_early_stopping_keeps_the_best_tune_epoch_before_its_patience_ran_out():
    x, y = _data()
    curve = [0.5, 0.7, 0.6, 0.65, 0.69, 0.9, 0.95]  # improvement at epoch 6 comes after patience 3 ran out
    values = iter(curve * 10)
    seen_rows = []

    def select(candidate, repeat, output):
        seen_rows.append(output.shape[0])
        return next(values)

    config = TrainConfig(seeds=(0,), epochs=len(curve), batch_size=32, hidden=8)
    run = BatchedTrainer(_members(SPECS[:1]), x.shape[1], config).fit(
        x, y, _splits(len(x), 1), select, higher_is_better=True,
        patience={"early_stopping": 3, "best_epoch": None},
    )  # fmt: skip
    (member,) = run.members
    assert member.choices["early_stopping"].epoch == 2 and member.choices["early_stopping"].stopped
    assert member.choices["best_epoch"].epoch == 7 and member.choices["best_epoch"].tune_value == 0.95
    assert set(seen_rows) == {20}  # only the tune rows are ever rated during training


def test_a_member_whose_every_protocol_stopped_stops_training():
    x, y = _data()
    config = TrainConfig(seeds=(0,), epochs=50, batch_size=32, hidden=8)
    run = BatchedTrainer(_members(SPECS[:1]), x.shape[1], config).fit(
        x, y, _splits(len(x), 1), lambda c, r, o: 0.5, higher_is_better=True, patience={"early_stopping": 2}
    )
    assert run.stopped_by == "early_stopping" and run.epochs_completed == 3
    assert run.members[0].choices["early_stopping"].epoch == 1
