"""advisor.recommend end to end: every head type on description-only input, real data, rules-only ranking,
determinism, cancel and progress, option errors, several heads."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris

import advisor
from advisor.core import OptionsError, recommend

QUICK = {"budget_s": 30.0, "epochs": 3, "repeats": 2, "max_rows": 600}
HEADS = {
    "binary": {"type": "binary", "class_histogram": [900, 100]},
    "multiclass": {"type": "multiclass", "class_histogram": [500, 200, 50]},
    "ordinal": {"type": "ordinal", "class_histogram": [100, 200, 300, 200]},
    "multilabel": {"type": "multilabel", "positive_rates": [0.3, 0.05]},
    "regression": {"type": "regression", "target": {"mean": 2.0, "variance": 4.0, "outlier_fraction": 0.1}},
    "count": {"type": "count", "target": {"mean": 2.0, "variance": 6.0, "zero_share": 0.3, "minimum": 0}},
    "segmentation": {"type": "segmentation", "foreground_shares": [0.05]},
    "audio": {"type": "audio", "sample_rate": 16000},
    "distribution": {"type": "distribution", "num_classes": 4},
}


def _check_result(result, source):
    head = result.heads[0]
    assert head.evidence_source == source and head.epochs_completed >= 1
    assert [c.rank for c in head.candidates] == list(range(1, len(head.candidates) + 1))
    assert head.candidates[0].tie_group == 1
    groups = [c.tie_group for c in head.candidates]
    assert groups == sorted(groups)
    for candidate in head.candidates:
        assert (
            candidate.evidence is not None and len(candidate.evidence.per_repeat) == result.settings.repeats
        )
        advisor.build_loss(candidate.spec)  # every recommended spec is ready to train with
    top = head.candidates[0].evidence
    assert top.mean is not None and top.ci_low <= top.mean <= top.ci_high
    assert head.explanation.startswith(head.candidates[0].spec.loss)


@pytest.mark.parametrize("name", sorted(HEADS))
def test_every_head_type_from_a_description(name):
    result = recommend({"heads": [HEADS[name]], "n_features": 8}, **QUICK)
    _check_result(result, "synthetic")
    assert "synthetic data" in result.heads[0].explanation


def test_real_data_csv_dataframe_and_arrays():
    churn = recommend("client_examples/data/churn.csv", target="churned", **QUICK)
    _check_result(churn, "data")
    assert churn.task.heads[0].class_histogram == [2643, 357]
    iris = load_iris(as_frame=True).frame
    result = recommend(iris, target="target", metric="macro_f1", **QUICK)
    _check_result(result, "data")
    assert result.heads[0].metric == "macro_f1"
    x, y = load_diabetes(return_X_y=True)
    result = recommend((x, y), metric="mae", **QUICK)
    _check_result(result, "data")
    assert result.heads[0].type == "regression"


def test_rules_only_ranks_by_prior_without_evidence():
    result = recommend({"heads": [HEADS["multiclass"]]}, trials=False)
    head = result.heads[0]
    assert head.evidence_source == "rules" and head.stopped_by == "not_run"
    priors = [c.prior for c in head.candidates]
    assert priors == sorted(priors, reverse=True)
    assert all(c.evidence is None for c in head.candidates)


def test_same_inputs_and_seed_give_the_same_result():
    task = {"heads": [HEADS["multiclass"]], "n_features": 8}
    first, second = recommend(task, **QUICK), recommend(task, **QUICK)
    assert first.heads[0].candidates[0].evidence.per_repeat  # trials ran, so the comparison covers them
    strip = {"timings": True, "heads": {"__all__": {"trial_seconds"}}}
    assert first.model_dump(exclude=strip) == second.model_dump(exclude=strip)


def test_post_hoc_recipes_are_tuned_on_validation():
    result = recommend({"heads": [HEADS["multiclass"]], "n_features": 8}, **QUICK)
    adjusted = next(
        c for c in result.heads[0].candidates if c.post_hoc and c.post_hoc.kind == "logit_adjustment"
    )
    assert len(adjusted.evidence.post_hoc_values) == 4  # 2 repeats x 2 protocols
    assert all(0 <= tau <= 2 for tau in adjusted.evidence.post_hoc_values)


def test_progress_and_cancel_keep_what_was_computed():
    seen = []
    calls = iter(range(100_000))
    result = recommend(
        {"heads": [{**HEADS["multiclass"], "name": "a"}, {**HEADS["binary"], "name": "b"}], "n_features": 8},
        budget_s=30, epochs=50, repeats=2, max_rows=600, progress=seen.append, cancel=lambda: next(calls) > 30,
    )  # fmt: skip
    first, second = result.heads
    assert first.stopped_by == "cancelled" and first.evidence_source == "synthetic"
    assert second.evidence_source == "rules"
    assert seen and {p.head for p in seen} == {"a"} and seen[-1].progress.alive == seen[-1].progress.members
    assert any("cancelled" in note for note in result.notes)


def test_several_heads_get_multi_task_specs_from_the_winners():
    result = recommend(
        {"heads": [{**HEADS["multiclass"], "name": "label"}, {**HEADS["regression"], "name": "price"}]},
        **QUICK,
    )
    assert [m.spec.params["weighting"]["scheme"] for m in result.multi_task] == ["static", "uncertainty"]
    winners = {h.head: next(c for c in h.candidates if c.post_hoc is None).spec for h in result.heads}
    for multi in result.multi_task:
        for name, spec in winners.items():
            assert multi.spec.params["heads"][name] == spec.model_dump()
    assert result.best() == result.multi_task[0]
    assert set(result.specs()) == {"label", "price", "*"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"budget_s": 0}, "budget_s"),
        ({"repeats": 1}, "repeats"),
        ({"training": {"lr": -1}}, "training.lr"),
        ({"training": {"patience": 3}}, "training.patience"),
        ({"epochs": 0}, "epochs"),
        ({"max_rows": 10}, "max_rows"),
        ({"device": "tpu"}, "device"),
        ({"metric": "dice"}, "metric"),
        ({"metric": {"nope": "accuracy"}}, "metric"),
    ],
)
def test_bad_options_name_the_field(options, field):
    with pytest.raises(OptionsError) as caught:
        recommend({"heads": [HEADS["multiclass"]]}, trials=False, **options)
    assert caught.value.violations[0].field == field
    assert isinstance(caught.value, ValueError)


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(advisor.TaskError, match="class_histogram"):
        recommend({"heads": [{"type": "multiclass", "class_histogram": [1, -1]}]}, trials=False)
    with pytest.raises(OptionsError, match="no such file"):
        recommend(str(tmp_path / "missing.csv"))
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": ["a", "a", "a"]})
    with pytest.raises(advisor.ProfileError, match="label"):
        recommend(frame, **QUICK)


def test_traits_the_data_cannot_show_reach_the_rules():
    wine = pd.DataFrame(load_iris(as_frame=True).frame)
    noisy = recommend(wine, target="target", traits={"target": {"label_noise": {"rate": 0.25}}}, **QUICK)
    rules = {c.rule_id for c in noisy.heads[0].candidates}
    assert {"noise-gce", "noise-sce"} <= rules and noisy.heads[0].evidence_source == "data"
    assert not any("focal" in c.spec.loss for c in noisy.heads[0].candidates)
    with pytest.raises(OptionsError) as caught:
        recommend(wine, target="target", traits={"target": {"colour": "red"}}, trials=False)
    assert caught.value.violations[0].field == "traits.target.colour"


def test_logit_adjustment_reports_the_tuned_tau():
    result = recommend({"heads": [HEADS["multiclass"]], "n_features": 8}, **QUICK)
    adjusted = next(
        c for c in result.heads[0].candidates if c.post_hoc and c.post_hoc.kind == "logit_adjustment"
    )
    values = sorted(adjusted.evidence.post_hoc_values)
    assert len(values) == 4 and adjusted.post_hoc.tau == pytest.approx((values[1] + values[2]) / 2)  # median


def test_a_deviance_metric_on_a_target_that_can_be_negative_names_the_metric():
    task = {"heads": [{"type": "regression", "target": {"mean": 2.0, "variance": 4.0, "minimum": -1.0}}]}
    with pytest.raises(OptionsError) as caught:
        recommend(task, metric="poisson_deviance", trials=False)
    assert caught.value.violations[0].field == "metric" and "non-negative" in str(caught.value)


def test_zero_heavy_non_negative_regression_is_ranked_by_a_deviance_at_the_stated_power():
    head = {"type": "regression", "metric": "tweedie_deviance", "tweedie_power": 1.3,
            "target": {"mean": 2.0, "variance": 9.0, "minimum": 0.0, "zero_share": 0.4}}  # fmt: skip
    result = recommend({"heads": [head], "n_features": 6}, **QUICK)
    losses = {c.spec.loss: c for c in result.heads[0].candidates}
    assert {"tweedie", "poisson_nll"} <= set(losses) and losses["tweedie"].spec.params["power"] == 1.3
    assert all(c.evidence.mean is not None and c.evidence.mean > 0 for c in result.heads[0].candidates)
