"""The evidence layer: repeated splits, selection on tune rows only, protocols, racing, the time cap,
determinism under load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from advisor.core import recommend
from advisor.losses import normalize_spec
from advisor.ranking import RepeatValues, clearly_behind, indistinguishable
from advisor.rules import Candidate, PostHoc
from advisor.task import Head
from advisor.trials import posthoc
from advisor.trials.adapters import adapter_for
from advisor.trials.data import prepare, repeat_splits
from advisor.trials.evidence import TrialOptions, evaluate_head, scorer

HEAD = Head(type="multiclass", num_classes=3, class_histogram=[300, 150, 50], metric="accuracy")


def _data(rows=500, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6))
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=rows), [0.3, 1.2])
    return prepare(x, y, HEAD, max_rows=rows)


def _candidate(spec, post_hoc=None, prior=0.5, rule="r"):
    return Candidate(
        head=HEAD.name, spec=normalize_spec(spec), post_hoc=post_hoc, prior=prior, rule_id=rule, title=rule,
        rationale="", references=[],
    )  # fmt: skip


def test_repeats_are_fresh_disjoint_stratified_splits_and_stable_under_racing():
    data = _data()
    splits = repeat_splits(data, 0, 4, seed=0)
    y = data.y.numpy()
    for r in range(4):
        train, tune, score = (set(part[r].tolist()) for part in (splits.train, splits.tune, splits.score))
        assert not (train & tune or train & score or tune & score)
        assert len(train | tune | score) == data.rows
        # Stratified: each part holds each class in about its share.
        for part in (splits.train[r], splits.score[r]):
            shares = np.bincount(y[part.numpy()], minlength=3) / len(part)
            assert np.allclose(shares, np.bincount(y, minlength=3) / len(y), atol=0.03)
    assert len({tuple(s.tolist()) for s in splits.score}) == 4  # every repeat scores on other rows
    later = repeat_splits(data, 2, 2, seed=0)  # a race's second round draws the same repeats 2 and 3
    assert torch.equal(later.train, splits.train[2:]) and torch.equal(later.validation, splits.validation[2:])


@pytest.mark.parametrize("kind", ["logit_adjustment", "threshold", "temperature"])
def test_recipes_tune_on_tune_rows_only(kind):
    """Changing the score rows' labels never changes the tuned parameter; the reported value may change."""
    generator = torch.Generator().manual_seed(0)
    binary = kind == "threshold"
    head = Head(type="binary" if binary else "multiclass", num_classes=2 if binary else 3)
    adapter = adapter_for(head, normalize_spec({"loss": "cross_entropy"}))
    classes = 2 if binary else 3
    output = torch.randn(200, classes, generator=generator) * 2
    y = torch.randint(0, classes, (200,), generator=generator)
    data = prepare(
        np.zeros((200, 1)), y.numpy(), head.model_copy(update={"metric": "balanced_accuracy"}), max_rows=200
    )
    score = scorer("balanced_accuracy", data)
    priors = torch.tensor([0.6, 0.3, 0.1]) if not binary else torch.tensor([0.8, 0.2])
    recipe = posthoc.recipe_for(PostHoc(kind=kind))

    def run(labels):
        inputs = posthoc.RecipeInputs(
            output, adapter, labels, 100, score, True, priors, scorer("log_loss", data)
        )
        assert recipe.applies(inputs)
        return recipe.run(inputs)

    flipped = y.clone()
    flipped[100:] = (flipped[100:] + 1) % classes
    (value, parameter), (other_value, other_parameter) = run(y), run(flipped)
    assert parameter == other_parameter and value != other_value


def test_protocols_are_read_off_the_same_runs_and_epochs_are_chosen_on_tune_rows():
    data = _data()
    candidates = [
        _candidate({"loss": "cross_entropy"}),
        _candidate({"loss": "focal", "params": {"gamma": 2.0}}),
    ]
    options = TrialOptions(repeats=2, epochs=12, race=False)
    measured = evaluate_head(candidates, data, options)
    for evidence in measured.evidence:
        early, best = evidence.protocols
        assert (early.name, best.name) == ("early_stopping", "best_epoch")
        for repeat, curve in enumerate(evidence.curves):
            assert best.epochs[repeat] == int(np.argmax(curve)) + 1  # the first best tune epoch
            assert early.epochs[repeat] <= best.epochs[repeat]
        worst = [min(a, b) for a, b in zip(early.per_repeat, best.per_repeat, strict=True)]
        assert evidence.per_repeat == worst and evidence.repeats == 2


def test_a_stated_protocol_is_matched():
    result = recommend(
        {"heads": [{"type": "multiclass", "class_histogram": [300, 150, 50]}], "n_features": 6},
        training={"epochs": 8, "early_stopping_patience": 2, "batch_size": 32}, repeats=2, max_rows=400,
    )  # fmt: skip
    head = result.heads[0]
    assert head.protocols == ["early stopping with patience 2 (at most 8 epochs)"]
    assert result.settings.training == {"epochs": 8, "early_stopping_patience": 2, "batch_size": 32}
    for candidate in head.candidates:
        (stated,) = candidate.evidence.protocols
        for curve, epoch in zip(candidate.evidence.curves, stated.epochs, strict=True):
            assert len(curve) <= 8
            # Early stopping with patience 2 keeps the first best epoch among those it saw.
            best = int(np.argmax(curve)) + 1
            assert epoch == best and (len(curve) == 8 or len(curve) - best == 2)
        assert "patience 2" in head.explanation


def test_racing_drops_a_clearly_worse_candidate_and_spends_repeats_on_the_rest():
    data = _data(rows=600)
    broken = {"loss": "cross_entropy", "params": {"weight": [1000.0, 0.001, 0.001]}}  # predicts class 0 only
    candidates = [_candidate({"loss": "cross_entropy"}), _candidate(broken)]
    raced = evaluate_head(candidates, data, TrialOptions(repeats=6, epochs=10, lr=1e-2))
    good, bad = raced.evidence
    assert bad.dropped_after == 3 and bad.repeats == 3
    assert good.repeats == 6 and good.dropped_after is None
    full = evaluate_head(candidates, data, TrialOptions(repeats=6, epochs=10, lr=1e-2, race=False))
    assert full.evidence[1].repeats == 6 and full.member_epochs > raced.member_epochs
    # Racing changes who trains, not what a repeat measures: the shared repeats agree.
    assert good.per_repeat == full.evidence[0].per_repeat


def test_clearly_behind_needs_a_consistent_paired_deficit():
    leader = RepeatValues((0.80, 0.82, 0.81, 0.79), True)
    assert clearly_behind(leader, RepeatValues((0.70, 0.71, 0.69, 0.70), True))
    assert not clearly_behind(leader, RepeatValues((0.81, 0.70, 0.83, 0.75), True))
    assert not clearly_behind(leader, RepeatValues((0.70, 0.71), True))  # too few repeats to tell
    assert clearly_behind(RepeatValues((1.0, 1.1, 0.9), False), RepeatValues((2.0, 2.2, 1.9), False))


def test_a_raced_out_candidate_never_ties_with_the_leader_that_dropped_it():
    rng = np.random.default_rng(0)
    dropped = 0
    for _ in range(300):
        leader = RepeatValues(tuple(rng.normal(0.8, 0.02, 3)), True)
        other = RepeatValues(tuple(np.array(leader.values) - rng.normal(0.03, 0.03, 3)), True)
        if clearly_behind(leader, other):
            dropped += 1
            assert not indistinguishable(leader, other)
    assert dropped > 20  # the property was exercised


def test_a_binding_time_cap_is_said_loudly():
    result = recommend(
        {"heads": [{"type": "multiclass", "class_histogram": [300, 150, 50]}], "n_features": 6},
        budget_s=0.05, epochs=200, repeats=9, max_rows=2000,
    )  # fmt: skip
    head = result.heads[0]
    assert head.stopped_by == "time" and head.cut_short
    assert any(c.startswith("The time cap bound") for c in head.caveats)
    assert any("time cap" in n for n in result.notes)


BURN = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"


def test_the_same_input_gives_the_same_ranking_beside_a_cpu_burning_process():
    task = {"heads": [{"type": "binary", "class_histogram": [700, 300]}], "n_features": 6}
    options = {"epochs": 15, "repeats": 4, "max_rows": 800}

    def ranking():
        result = recommend(task, **options).heads[0]
        return [(c.label, c.tie_group, c.evidence.per_repeat) for c in result.candidates], result.stopped_by

    quiet = ranking()
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(2)]
    try:
        busy = ranking()
    finally:
        for burner in burners:
            burner.kill()
    assert quiet == busy and quiet[1] != "time"


def test_default_protocols_name_early_stopping_and_the_full_budget():
    assert [p.describe(50) for p in TrialOptions().protocols] == [
        "early stopping with patience 10 (at most 50 epochs)",
        "the best tune epoch of 50",
    ]


def test_segmentation_heads_are_read_at_the_best_epoch_alone_unless_a_protocol_is_stated():
    task = {
        "heads": [
            {"name": "mask", "type": "segmentation", "num_classes": 2, "foreground_shares": [0.2]},
            {"name": "label", "type": "binary", "class_histogram": [60, 40]},
        ],
        "n_features": 4,
    }
    result = recommend(task, epochs=2, repeats=2, max_rows=100, race=False, cache=False)
    by_name = {head.head: head for head in result.heads}
    assert by_name["mask"].protocols == ["the best tune epoch of 2"]
    assert [p.name for p in by_name["mask"].candidates[0].evidence.protocols] == ["best_epoch"]
    assert by_name["label"].protocols == [
        "early stopping with patience 10 (at most 2 epochs)",
        "the best tune epoch of 2",
    ]
    stated = recommend(
        task, epochs=2, repeats=2, max_rows=100, race=False, cache=False,
        training={"early_stopping_patience": 1},
    )  # fmt: skip
    assert {head.head: head.protocols for head in stated.heads} == {
        "mask": ["early stopping with patience 1 (at most 2 epochs)"],
        "label": ["early stopping with patience 1 (at most 2 epochs)"],
    }


def test_progress_counts_epochs_across_racing_rounds():
    seen = []
    recommend(
        {"heads": [{"type": "multiclass", "class_histogram": [300, 150, 50]}], "n_features": 6},
        epochs=3, repeats=5, max_rows=400, progress=seen.append,
    )  # fmt: skip
    assert [p.progress.epoch for p in seen] == list(range(1, 7))  # rounds of 3 and 2 repeats, 3 epochs each
    assert {p.progress.epochs for p in seen} == {6}
