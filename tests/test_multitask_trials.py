"""Joint multi-task trials (advisor.trials.multitask): the heads trained together, one model per weighting
scheme, ranked by the combined score; the multi_task recommendation, its explanation and where it is shown."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from rich.console import Console

import advisor
from advisor.cache import incomplete
from advisor.core import recommend
from advisor.display import print_recommendation
from advisor.explain import multi_task_summary
from advisor.recommendation import Evidence, HeadShare, ProtocolEvidence, RankedCandidate
from advisor.report import render_report
from advisor.spec import LossSpec
from advisor.task import parse_task
from advisor.trials.adapters import adapter_for
from advisor.trials.data import repeat_splits
from advisor.trials.evidence import TrialOptions, batch_size
from advisor.trials.models import standalone_mlp
from advisor.trials.multitask import (
    HeadReference,
    JointHead,
    JointTrialsUnavailable,
    chance_level,
    combined_score,
    evaluate_joint,
    inverse_initial_weights,
    joint_data,
    references_for,
)

ROWS = 600
QUICK = {"epochs": 3, "repeats": 2, "budget_s": 60.0, "cache": False}


def _frame() -> pd.DataFrame:
    """A binary and a regression target from the same five features."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 5))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(5)])
    frame["churn"] = (x[:, 0] + 0.5 * x[:, 1] + 0.5 * rng.normal(size=ROWS) > 0).astype(int)
    frame["price"] = 3 * x[:, 0] - x[:, 2] + 0.5 * rng.normal(size=ROWS) + 10
    return frame


@pytest.fixture(scope="module")
def result() -> advisor.Recommendation:
    return recommend(_frame(), target=["churn", "price"], **QUICK)


def _joint_heads(single: tuple[float, float] = (0.8, 2.5)) -> list[JointHead]:
    """Trial data of both heads on shared rows, with bce and mse as their winners."""
    frame = _frame()
    x = frame[[f"f{i}" for i in range(5)]].to_numpy(np.float32)
    task = parse_task({
        "heads": [
            {"name": "churn", "type": "binary", "class_histogram": np.bincount(frame["churn"]).tolist()},
            {"name": "price", "type": "regression", "target": {"mean": 10.0, "variance": 10.0}},
        ]
    })  # fmt: skip
    real = {"churn": (x, frame["churn"].to_numpy()), "price": (x, frame["price"].to_numpy())}
    churn, price = joint_data(task, real, max_rows=ROWS, seed=0)
    return [
        JointHead(churn, LossSpec(loss="bce"), single[0]),
        JointHead(price, LossSpec(loss="mse"), single[1]),
    ]


def test_the_multi_task_candidates_are_one_per_scheme_with_joint_evidence(result):
    schemes = [
        (m.spec.params["weighting"]["scheme"], m.spec.params["weighting"].get("weights"))
        for m in result.multi_task
    ]
    assert sorted(s for s, _ in schemes) == ["dwa", "static", "static", "uncertainty"]
    assert sum(weights is not None for _, weights in schemes) == 1  # static equal and static by inverse loss
    assert [m.rank for m in result.multi_task] == [1, 2, 3, 4]
    groups = [m.tie_group for m in result.multi_task]
    assert groups == sorted(groups) and groups[0] == 1
    for multi in result.multi_task:
        e = multi.evidence
        assert e is not None and e.metric == "combined_score" and len(e.per_repeat) == 2
        assert all(v is not None and math.isfinite(v) for v in e.per_repeat)
        assert [h.head for h in e.per_head] == ["churn", "price"]
        assert [h.metric for h in e.per_head] == [result.head("churn").metric, result.head("price").metric]
    assert result.best() == result.multi_task[0]
    joint = result.multi_task_trials
    assert joint is not None and (joint.repeats, joint.epochs_completed, joint.stopped_by) == (2, 3, "epochs")
    assert any("trained together" in note for note in result.notes)
    assert not any("train the heads separately" in note for note in result.notes)


def test_the_combined_score_per_repeat_is_the_mean_of_the_head_shares(result):
    """Recomputed in float64 from the reported head metrics and the normalising constants."""
    references = {r.head: r for r in result.multi_task_trials.heads}
    assert references["churn"].chance == pytest.approx(0.5)  # roc_auc of a constant score
    price = _frame()["price"].to_numpy()
    assert references["price"].chance == pytest.approx(np.std(price), rel=1e-4)  # rmse of predicting the mean
    for name, reference in references.items():
        single = result.head(name).top.evidence
        assert reference.single_head == pytest.approx(single.mean)
        # A head counts when its single-head 95% interval lies on the better side of chance.
        clear = (
            single.ci_low > reference.chance
            if reference.higher_is_better
            else single.ci_high < reference.chance
        )
        assert reference.in_combined == clear
    counted = [name for name, r in references.items() if r.in_combined]
    assert counted  # the premise: some head's own winner clearly beat chance
    for multi in result.multi_task:
        shares = {h.head: h.share for h in multi.evidence.per_head}
        assert all((shares[name] is None) == (name not in counted) for name in references)
        for repeat, value in enumerate(multi.evidence.per_repeat):
            expected = [
                (h.per_repeat[repeat] - references[h.head].chance)
                / (references[h.head].single_head - references[h.head].chance)
                for h in multi.evidence.per_head
                if h.head in counted
            ]
            assert value == pytest.approx(float(np.mean(np.asarray(expected, dtype=np.float64))), rel=1e-9)


def test_combined_score_by_hand_for_both_directions():
    auc = HeadReference("churn", "roc_auc", chance=0.5, single_head=0.9, counted=True)
    rmse = HeadReference("price", "rmse", chance=3.0, single_head=1.5, counted=True)
    expected = np.mean([(0.8 - 0.5) / (0.9 - 0.5), (2.0 - 3.0) / (1.5 - 3.0)])  # 0.75 and 2/3
    assert combined_score([0.8, 2.0], [auc, rmse]) == pytest.approx(expected, abs=1e-12)
    # A lower rmse must raise the score: the formula is direction-aware.
    assert combined_score([0.8, 1.8], [auc, rmse]) > combined_score([0.8, 2.0], [auc, rmse])
    # A head whose own winner did not beat chance is left out.
    left_out = HeadReference("price", "rmse", chance=3.0, single_head=3.2, counted=False)
    assert combined_score([0.8, 2.0], [auc, left_out]) == pytest.approx(0.75, abs=1e-12)
    assert math.isnan(combined_score([math.nan, 2.0], [auc, rmse]))


def test_chance_levels_are_feature_blind_predictions():
    churn, price = (h.data for h in _joint_heads())
    assert chance_level(churn) == pytest.approx(0.5)
    raw = price.y.double() * price.target_scale + price.target_shift
    assert chance_level(price) == pytest.approx(float(raw.std(unbiased=False)), rel=1e-5)


def test_a_head_counts_only_when_its_own_winner_clearly_beat_chance():
    churn, price = _joint_heads()
    clear = references_for([churn, price])
    assert [r.counted for r in clear] == [True, True]
    # An interval that reaches chance (roc_auc 0.5; rmse: the target's spread) leaves the head out.
    vague = replace(price, single_head_interval=(2.0, 1e9))
    assert [r.counted for r in references_for([churn, vague])] == [True, False]
    with pytest.raises(JointTrialsUnavailable, match="clearly beat its chance level"):
        references_for([replace(churn, single_head_interval=(0.4, 0.9)), vague])


def test_inverse_initial_loss_weights_by_hand():
    assert inverse_initial_weights([0.5, 2.0]) == pytest.approx([1.6, 0.4])  # 2 * (2, 0.5) / 2.5
    with pytest.raises(ValueError):
        inverse_initial_weights([0.5, -0.1])
    heads = _joint_heads()
    options = TrialOptions(repeats=2, epochs=1, seed=0)
    measured = evaluate_joint(heads, options)
    churn, price = (h.data for h in heads)
    splits = repeat_splits(churn, 0, 2, 0)  # the class head stratifies the joint splits
    per_repeat = []
    for repeat in range(2):
        rows = splits.train[repeat]
        with torch.no_grad():
            out = standalone_mlp(5, 64, 2, seed=repeat)(churn.x[rows]).double()  # the untrained twin
        initial = [
            F.binary_cross_entropy_with_logits(out[:, 0], churn.y[rows].double()).item(),
            F.mse_loss(out[:, 1], price.y[rows].double()).item(),
        ]
        per_repeat.append([2 * (1 / v) / sum(1 / u for u in initial) for v in initial])
    median = np.median(per_repeat, axis=0)
    expected = median * 2 / median.sum()
    inverse = next(w for s, w in zip(measured.schemes, measured.weightings, strict=True) if s.inverse_initial)
    assert [inverse["weights"]["churn"], inverse["weights"]["price"]] == pytest.approx(expected, abs=1e-3)


def test_every_recommended_spec_builds_and_trains_a_shared_trunk(result):
    frame = _frame()
    x = torch.tensor(frame[[f"f{i}" for i in range(5)]].to_numpy(np.float32))
    targets = {
        "churn": torch.tensor(frame["churn"].to_numpy()),
        "price": torch.tensor(frame["price"].to_numpy(np.float32)),
    }
    targets["price"] = (targets["price"] - targets["price"].mean()) / targets["price"].std()
    for multi in result.multi_task:
        loss = advisor.build_loss(multi.spec)
        adapters = {
            n: adapter_for(result.task.head(n), LossSpec.model_validate(s))
            for n, s in multi.spec.params["heads"].items()
        }
        torch.manual_seed(0)
        trunk = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.ReLU())
        outputs = torch.nn.ModuleDict({n: torch.nn.Linear(16, a.out_dim) for n, a in adapters.items()})
        optimizer = torch.optim.Adam(
            [*trunk.parameters(), *outputs.parameters(), *loss.parameters()], lr=0.01
        )
        values = []
        for _ in range(2):
            for _ in range(20):
                hidden = trunk(x)
                total = loss(
                    {n: a.loss_input(outputs[n](hidden)) for n, a in adapters.items()},
                    {n: a.loss_target(targets[n]) for n, a in adapters.items()},
                )
                optimizer.zero_grad()
                total.backward()
                optimizer.step()
                values.append(total.item())
            loss.end_epoch()
        scheme = multi.spec.params["weighting"]
        assert all(math.isfinite(v) for v in values) and values[-1] < values[0], scheme


def test_uncertainty_learns_its_log_variances_and_dwa_reweights(monkeypatch):
    from advisor.losses.multitask import MultiTaskLoss

    seen: list[tuple[str, list[float]]] = []
    original = MultiTaskLoss.end_epoch

    def spy(self):
        original(self)
        scheme = self.params.weighting.scheme
        state = self.log_vars if scheme == "uncertainty" else self.weights
        seen.append((scheme, state.detach().tolist()))

    monkeypatch.setattr(MultiTaskLoss, "end_epoch", spy)
    evaluate_joint(_joint_heads(), TrialOptions(repeats=2, epochs=3, seed=0))
    assert len(seen) == 2 * 4 * 3  # every member closes every epoch
    assert all(any(v != 0 for v in state) for scheme, state in seen if scheme == "uncertainty")
    assert any(any(abs(w - 1) > 1e-6 for w in state) for scheme, state in seen if scheme == "dwa")


def test_cancel_keeps_what_was_computed():
    heads = _joint_heads()
    steps = (ROWS - int(0.3 * ROWS)) // batch_size("binary", ROWS - int(0.3 * ROWS))  # steps of one epoch
    calls = iter(range(10_000))
    measured = evaluate_joint(
        heads, TrialOptions(repeats=2, epochs=5, seed=0), cancel=lambda: next(calls) > steps + 2
    )
    assert measured.stopped_by == "cancelled" and measured.epochs_completed == 1
    for evidence in measured.evidence:
        assert all(v is not None for v in evidence.per_repeat)  # the first epoch's evidence is kept
        assert all(p.epochs == [1, 1] for p in evidence.protocols)


def _evidence(per_head: list[HeadShare]) -> Evidence:
    return Evidence(
        metric="combined_score", per_repeat=[0.5, 0.6, 0.7], mean=0.6, std=0.1, ci_low=0.4, ci_high=0.8,
        protocols=[ProtocolEvidence(name="best_epoch", description="", per_repeat=[0.5, 0.6, 0.7], mean=0.6, epochs=[1, 1, 1])],
        repeats=3, diverged_repeats=0, curves=[], per_head=per_head,
    )  # fmt: skip


def _candidate(rule_id: str, per_head: list[HeadShare]) -> RankedCandidate:
    return RankedCandidate(
        rank=1, head="*", spec=LossSpec(loss="multi_task", params={"heads": {"a": {"loss": "mse"}}}), prior=0.5,
        score=1.0, tie_group=1, rule_id=rule_id, title="", rationale="", references=[], evidence=_evidence(per_head),
    )  # fmt: skip


def test_the_summary_says_which_head_a_scheme_favours():
    def share(head, metric, higher, values, kept):
        return HeadShare(head=head, metric=metric, higher_is_better=higher, per_repeat=values,
                         mean=float(np.mean(values)), share=kept)  # fmt: skip

    baseline = _candidate("static", [
        share("churn", "accuracy", True, [0.80, 0.82, 0.81], 0.9),
        share("price", "rmse", False, [1.00, 1.10, 1.05], 0.7),
    ])  # fmt: skip
    other = _candidate("uncertainty", [
        share("churn", "accuracy", True, [0.79, 0.81, 0.80], 0.85),
        share("price", "rmse", False, [0.97, 1.08, 1.01], 0.8),
    ])  # fmt: skip
    text = multi_task_summary("uncertainty", other, "static equal", baseline)
    assert text.startswith("uncertainty favours 'price' (rmse -0.03")
    assert "over static equal" in text and "at the cost of 'churn' (accuracy -0.010" in text
    assert multi_task_summary("static equal", baseline, "static equal", baseline) == (
        "static equal keeps 90% ('churn') and 70% ('price') of each head's single-head gain over chance: it "
        "favours 'churn'."
    )


def test_the_favoured_head_appears_in_every_summary_and_in_the_outputs(result):
    heads = ("'churn'", "'price'")
    for multi in result.multi_task:
        assert multi.summary and "favours" in multi.summary and any(h in multi.summary for h in heads)
    assert result.multi_task_trials.verdict
    console = Console(file=io.StringIO(), width=100, record=True)
    print_recommendation(console, result, None, explain=False)
    shown = console.export_text()
    assert "combined_score" in shown and "the heads trained together" in shown
    assert all(multi.title[:20] in shown for multi in result.multi_task)
    page = render_report(result)
    assert "The heads were trained together" in page and "combined_score" in page
    dumped = result.model_dump(mode="json")
    assert dumped["multi_task"][0]["evidence"]["per_head"][0]["head"] == "churn"
    assert dumped["multi_task_trials"]["heads"][1]["metric"] == "rmse"
    assert advisor.Recommendation.model_validate_json(result.model_dump_json()) == result


def test_a_cut_joint_trial_is_not_cached(result):
    assert not incomplete(result)
    cut = result.multi_task_trials.model_copy(update={"stopped_by": "time"})
    assert incomplete(result.model_copy(update={"multi_task_trials": cut}))


def test_without_shared_rows_the_specs_keep_the_rules_order_and_say_why():
    task = {
        "heads": [
            {"name": "label", "type": "binary", "class_histogram": [300, 300]},
            {"name": "price", "type": "regression", "target": {"mean": 0.0, "variance": 1.0}},
        ],
        "n_features": 4,
    }
    found = recommend(task, epochs=1, repeats=2, max_rows=300, cache=False)
    assert found.multi_task_trials is None
    assert [m.spec.params["weighting"]["scheme"] for m in found.multi_task] == ["static", "uncertainty"]
    assert all(m.evidence is None and m.summary is None for m in found.multi_task)
    assert any("not trained together (synthetic trial data" in note for note in found.notes)
    rules_only = recommend(task, trials=False)
    assert any("not trained together (no trials ran)" in note for note in rules_only.notes)


def test_the_time_cap_cuts_after_the_first_epoch_and_says_so():
    measured = evaluate_joint(_joint_heads(), TrialOptions(repeats=2, epochs=5, seed=0, budget_s=1e-9))
    assert measured.stopped_by == "time" and measured.epochs_completed == 1
    assert all(None not in e.per_repeat for e in measured.evidence)  # the first epoch always runs, and counts
    spent = recommend(_frame(), target=["churn", "price"], epochs=3, repeats=2, budget_s=1e-9, cache=False)
    assert spent.multi_task_trials is None and len(spent.multi_task) == 2
    assert any("not trained together (the single-head trials spent the time cap" in n for n in spent.notes)


def test_a_non_positive_initial_loss_skips_the_inverse_weights_and_says_why(monkeypatch):
    from advisor.trials import multitask

    real = multitask.initial_losses

    def negative_price(*args):
        return [[churn, -abs(price)] for churn, price in real(*args)]  # as a Gaussian NLL head can start

    monkeypatch.setattr(multitask, "initial_losses", negative_price)
    measured = evaluate_joint(_joint_heads(), TrialOptions(repeats=2, epochs=1, seed=0))
    assert [s.name for s in measured.schemes] == ["static", "uncertainty", "dwa"]
    assert len(measured.evidence) == len(measured.weightings) == 3
    assert measured.skipped == ["static by inverse initial loss: the initial loss of price is not positive"]
