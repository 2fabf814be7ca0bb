"""The built-in rules against selection.md: for typical tasks, the candidates contain what the evidence
prescribes (losses, key parameters, post-hoc recipes, baselines) and leave out what it rules out.

Expected parameter values are computed here from the formulas in selection.md / losses.md, not read back from
the engine.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest

import advisor
from advisor.rules import Candidate, candidates, check_rules, load_rules
from advisor.task import parse_task

ANY = object()  # post_hoc wildcard for _find
NO_POST_HOC = None

# Typical tasks, one head named "y" unless a task has several.
TASKS: dict[str, list[dict[str, Any]]] = {
    "balanced_multiclass": [{"type": "multiclass", "class_histogram": [100, 110, 120]}],
    "moderate_imbalance": [{"type": "multiclass", "class_histogram": [600, 100, 100]}],
    "moderate_imbalance_accuracy": [
        {"type": "multiclass", "class_histogram": [600, 100, 100], "metric": "accuracy"}
    ],
    "mild_imbalance_macro_f1": [
        {"type": "multiclass", "class_histogram": [200, 100, 100], "metric": "macro_f1"}
    ],
    "mild_imbalance_accuracy": [
        {"type": "multiclass", "class_histogram": [200, 100, 100], "metric": "accuracy"}
    ],
    "near_balanced_balanced_accuracy": [
        {"type": "multiclass", "class_histogram": [140, 100, 100], "metric": "balanced_accuracy"}
    ],
    "long_tail": [
        {"type": "multiclass", "class_histogram": [5000, 2500, 1200, 600, 300, 150, 80, 40, 20, 10]}
    ],
    "long_tail_accuracy": [
        {
            "type": "multiclass",
            "class_histogram": [5000, 2500, 1200, 600, 300, 150, 80, 40, 20, 10],
            "metric": "accuracy",
        }
    ],
    "binary_rare_positive": [{"type": "binary", "class_histogram": [990, 10]}],
    "binary_rare_positive_balanced_accuracy": [
        {"type": "binary", "class_histogram": [990, 10], "metric": "balanced_accuracy"}
    ],
    "binary_mild_balanced_accuracy": [
        {"type": "binary", "class_histogram": [600, 300], "metric": "balanced_accuracy"}
    ],
    "binary_mild_roc_auc": [{"type": "binary", "class_histogram": [600, 300], "metric": "roc_auc"}],
    "binary_mild_accuracy": [{"type": "binary", "class_histogram": [600, 300], "metric": "accuracy"}],
    "binary_moderate_log_loss": [{"type": "binary", "class_histogram": [950, 50], "metric": "log_loss"}],
    "binary_moderate_brier": [{"type": "binary", "class_histogram": [950, 50], "metric": "brier"}],
    "binary_moderate_roc_auc": [{"type": "binary", "class_histogram": [950, 50], "metric": "roc_auc"}],
    "binary_moderate_macro_f1": [{"type": "binary", "class_histogram": [950, 50], "metric": "macro_f1"}],
    "binary_moderate": [{"type": "binary", "class_histogram": [950, 50]}],
    "binary_balanced_auc": [{"type": "binary", "class_histogram": [500, 480], "metric": "roc_auc"}],
    "noise_5": [{"type": "multiclass", "num_classes": 10, "label_noise": {"rate": 0.05}}],
    "noise_25": [
        {"type": "multiclass", "num_classes": 10, "label_noise": {"rate": 0.25, "kind": "symmetric"}}
    ],
    "noise_25_imbalanced": [
        {"type": "multiclass", "class_histogram": [5000, 500, 100], "label_noise": {"rate": 0.25}}
    ],
    "noise_25_binary_rare": [{"type": "binary", "class_histogram": [990, 10], "label_noise": {"rate": 0.25}}],
    "noise_40_many_classes": [{"type": "multiclass", "num_classes": 100, "label_noise": {"rate": 0.4}}],
    "calibration_multiclass": [
        {"type": "multiclass", "class_histogram": [600, 100, 100], "calibration_needed": True}
    ],
    "calibration_binary": [{"type": "binary", "class_histogram": [950, 50], "calibration_needed": True}],
    "calibration_long_tail": [
        {
            "type": "multiclass",
            "class_histogram": [5000, 2500, 1200, 600, 300, 150, 80, 40, 20, 10],
            "calibration_needed": True,
        }
    ],
    "log_probs": [{"type": "multiclass", "class_histogram": [600, 100, 100], "outputs_log_probs": True}],
    "ordinal": [{"type": "ordinal", "num_classes": 5}],
    "regression_clean": [{"type": "regression", "target": {"outlier_fraction": 0.0, "robust_scale": 1.0}}],
    "regression_10pct_outliers": [
        {"type": "regression", "target": {"outlier_fraction": 0.1, "robust_scale": 2.0}}
    ],
    "regression_30pct_outliers": [
        {"type": "regression", "target": {"outlier_fraction": 0.3, "robust_scale": 2.0}}
    ],
    "regression_mae": [{"type": "regression", "target": {"outlier_fraction": 0.0}, "metric": "mae"}],
    "regression_intervals": [{"type": "regression", "intervals_needed": True}],
    "regression_heteroscedastic": [{"type": "regression", "target": {"heteroscedasticity_pvalue": 0.001}}],
    "regression_zeros": [
        {"type": "regression", "target": {"minimum": 0.0, "maximum": 500.0, "zero_share": 0.3}}
    ],
    "regression_zeros_poisson_deviance": [
        {
            "type": "regression",
            "metric": "poisson_deviance",
            "target": {"minimum": 0.0, "maximum": 500.0, "zero_share": 0.3, "outlier_fraction": 0.0},
        }
    ],
    "regression_zeros_tweedie_deviance": [
        {
            "type": "regression",
            "metric": "tweedie_deviance",
            "tweedie_power": 1.3,
            "target": {"minimum": 0.0, "maximum": 500.0, "zero_share": 0.3},
        }
    ],
    "regression_positive_gamma_deviance": [
        {"type": "regression", "metric": "gamma_deviance", "target": {"minimum": 2.0, "zero_share": 0.0}}
    ],
    "regression_positive_poisson_deviance": [
        {"type": "regression", "metric": "poisson_deviance", "target": {"minimum": 0.5, "zero_share": 0.0}}
    ],
    "counts_poisson": [{"type": "count", "target": {"mean": 3.0, "variance": 3.3, "zero_share": 0.05}}],
    "counts_overdispersed": [{"type": "count", "target": {"mean": 2.0, "variance": 10.0, "zero_share": 0.2}}],
    "counts_excess_zeros": [{"type": "count", "target": {"mean": 2.0, "variance": 2.5, "zero_share": 0.4}}],
    "counts_tweedie_deviance": [
        {"type": "count", "metric": "tweedie_deviance", "target": {"mean": 2.0, "variance": 10.0}}
    ],
    "multilabel_rare": [{"type": "multilabel", "positive_rates": [0.4, 0.02, 0.005]}],
    "multilabel_common": [{"type": "multilabel", "positive_rates": [0.3, 0.4, 0.5]}],
    "multilabel_calibration": [
        {"type": "multilabel", "positive_rates": [0.4, 0.02, 0.005], "calibration_needed": True}
    ],
    "multilabel_rare_noisy": [
        {"type": "multilabel", "positive_rates": [0.4, 0.02, 0.005], "label_noise": {"rate": 0.2}}
    ],
    "segmentation_large": [{"type": "segmentation", "foreground_shares": [0.2, 0.03]}],
    "segmentation_tiny": [{"type": "segmentation", "foreground_shares": [0.2, 0.004]}],
    "segmentation_iou": [{"type": "segmentation", "foreground_shares": [0.2, 0.03], "metric": "iou"}],
    "audio_16k": [{"type": "audio", "sample_rate": 16000}],
    "audio_44k_si_sdr": [{"type": "audio", "sample_rate": 44100, "metric": "si_sdr"}],
    "audio_snr": [{"type": "audio", "sample_rate": 22050, "metric": "snr"}],
    "audio_esr": [{"type": "audio", "sample_rate": 48000, "metric": "esr"}],
    "distribution": [{"type": "distribution", "num_classes": 5}],
    "two_heads": [
        {"name": "label", "type": "multiclass", "class_histogram": [600, 100, 100]},
        {"name": "price", "type": "regression", "target": {"outlier_fraction": 0.1, "robust_scale": 2.0}},
    ],
    # Edge cases: zero counts and zero positive rates must not produce NaN or infinity anywhere.
    "zero_count_class": [{"type": "multiclass", "class_histogram": [1000, 0, 5]}],
    "zero_rate_label": [{"type": "multilabel", "positive_rates": [0.3, 0.0]}],
}

DEFAULT_LOSS = {
    "regression": "mse",
    "count": "poisson_nll",
    "binary": "bce",
    "multiclass": "cross_entropy",
    "ordinal": "cross_entropy",
    "multilabel": "bce",
    "segmentation": "dice_ce",
    "audio": "mr_stft",
    "distribution": "kl_div",
}
FOCAL_FAMILY = {"focal", "binary_focal", "focal_tversky"}
REWEIGHTING = {"logit_adjusted", "class_balanced", "ldam", "focal", "binary_focal", "asl"}
# Written out here, not read from advisor.heads: metrics that score decisions with every class weighing alike,
# metrics that never see a decision threshold, and those that see only the order of the scores.
CLASS_BALANCED = {"balanced_accuracy", "macro_f1"}
THRESHOLD_FREE = {"average_precision", "roc_auc", "log_loss", "brier"}
RANKING = {"average_precision", "roc_auc"}


def _task(name: str) -> dict[str, Any]:
    heads = [{"name": "y", **head} if "name" not in head else head for head in TASKS[name]]
    return {"heads": heads}


@pytest.fixture(scope="module")
def found() -> dict[str, list[Candidate]]:
    """Candidates of every task, computed once."""
    return {name: candidates(_task(name)) for name in TASKS}


def _close(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float):
        return isinstance(actual, int | float) and math.isclose(actual, expected, rel_tol=1e-4, abs_tol=1e-12)
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(_close(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected


def _find(cands: list[Candidate], loss: str, post_hoc: Any = NO_POST_HOC, **params: Any) -> list[Candidate]:
    """Candidates with this loss, post-hoc kind (None: none, ANY: any) and parameters (approximately)."""
    out = []
    for c in cands:
        kind = c.post_hoc.kind if c.post_hoc else None
        if c.spec.loss != loss or (post_hoc is not ANY and kind != post_hoc):
            continue
        if all(_close(c.spec.params.get(k), v) for k, v in params.items()):
            out.append(c)
    return out


def _has(cands: list[Candidate], loss: str, post_hoc: Any = NO_POST_HOC, **params: Any) -> Candidate:
    hits = _find(cands, loss, post_hoc, **params)
    assert hits, f"no {loss} (post_hoc={post_hoc}, {params}) in {[(c.rule_id, c.spec.loss) for c in cands]}"
    return hits[0]


def _losses(cands: list[Candidate]) -> set[str]:
    return {c.spec.loss for c in cands}


def _head(cands: list[Candidate], head: str = "y") -> list[Candidate]:
    return [c for c in cands if c.head == head]


def _metric(name: str) -> str:
    """The metric the first head of task ``name`` is judged by (its stated one, or the type's default)."""
    return parse_task(_task(name)).heads[0].metric


def _reweighted(cands: list[Candidate]) -> list[Candidate]:
    """Candidates whose loss re-weights or re-margins the classes."""
    return [
        c
        for c in cands
        if c.spec.loss in REWEIGHTING
        or c.spec.params.get("weight") is not None
        or c.spec.params.get("pos_weight") is not None
    ]


# The rule set as a whole.


def test_rule_set_is_large_and_every_example_passes():
    rules = load_rules()
    assert len(rules.rules) >= 30
    assert check_rules(rules) == []


def test_every_rule_cites_a_dated_reference_and_a_sensible_prior():
    for rule in load_rules().rules:
        assert any(re.search(r"\(\d{4}\)", ref) for ref in rule.model.references), rule.id
        assert 0.2 <= rule.model.recommend.prior <= 0.9, rule.id
        assert len(rule.model.recommend.rationale) >= 40, rule.id


def test_every_catalog_loss_but_multi_task_is_proposed_for_some_task(found):
    proposed = set().union(*(_losses(cands) for cands in found.values()))
    missing = set(advisor.loss_names()) - {"multi_task"} - proposed
    assert not missing, f"never proposed: {sorted(missing)}"
    assert "multi_task" in proposed  # composed by the engine for the two-head task


def test_order_is_deterministic_and_by_prior(found):
    for name in TASKS:
        again = candidates(_task(name))
        assert again == found[name], name
        for head in {c.head for c in again}:
            priors = [c.prior for c in again if c.head == head]
            assert priors == sorted(priors, reverse=True), name
        keys = [c.key() for c in again]
        assert len(keys) == len(set(keys)), name


def _numbers(value: Any):
    if isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, float | int) and not isinstance(value, bool):
        yield value


def test_no_candidate_has_nan_or_infinite_parameters_and_all_build(found):
    for name, cands in found.items():
        for c in cands:
            assert all(math.isfinite(v) for v in _numbers(c.spec.params)), (name, c.rule_id)
            assert 0 <= c.prior <= 1
            advisor.build_loss(c.spec)  # every proposal is a ready module


def test_baseline_of_each_head_type_is_always_present(found):
    for name, heads in TASKS.items():
        for head in heads:
            head_name = head.get("name", "y")
            cands = [c for c in found[name] if c.head == head_name]
            default = DEFAULT_LOSS[head["type"]]
            plain = [c for c in _find(cands, default) if c.spec.params.get("pos_weight") is None]
            assert plain, f"{name}: no plain {default} baseline"


def test_imbalanced_classes_get_ce_with_posthoc_logit_adjustment_where_the_metric_can_see_it(found):
    checked = 0
    for name, heads in TASKS.items():
        head = heads[0]
        histogram = head.get("class_histogram")
        if head["type"] in ("multiclass", "binary") and histogram:
            imbalanced = max(histogram) / max(min(histogram), 1) >= 3
            # For two classes a logit shift is monotone: a ranking metric cannot see it.
            visible = not (head["type"] == "binary" and _metric(name) in RANKING)
            hits = _find(found[name], "cross_entropy", "logit_adjustment", weight=None, label_smoothing=0.0)
            assert bool(hits) == (imbalanced and visible), name
            checked += bool(hits)
            if hits:
                assert hits[0].post_hoc.tau is None  # tuned on validation in [0, 2]
    assert checked >= 8


def test_no_focal_under_label_noise_of_five_percent_or_more(found):
    for name, heads in TASKS.items():
        noise = heads[0].get("label_noise", {}).get("rate", 0.0)
        if noise >= 0.05:
            assert not (_losses(found[name]) & FOCAL_FAMILY), name
            assert not _find(found[name], "class_balanced", gamma=1.0), name


# Classification.


def test_balanced_multiclass_ce_first_then_label_smoothing(found):
    cands = found["balanced_multiclass"]
    top = cands[0]
    assert (top.spec.loss, top.spec.params["label_smoothing"], top.post_hoc) == ("cross_entropy", 0.0, None)
    _has(cands, "cross_entropy", label_smoothing=0.1)
    assert not (_losses(cands) & REWEIGHTING)
    assert not _find(cands, "cross_entropy", ANY, weight=[1.0, 1.0, 1.0])
    assert all(c.post_hoc is None for c in cands)


def test_moderate_imbalance(found):
    cands = found["moderate_imbalance"]
    counts = [600, 100, 100]
    n, k = sum(counts), len(counts)
    assert _metric("moderate_imbalance") == "balanced_accuracy"  # the imbalanced default
    # Under a class-balanced metric focal with inverse-frequency alpha leads, the other re-weighted losses
    # follow, all above plain CE and above CE with post-hoc logit adjustment.
    assert cands[0].spec.loss == "focal" and cands[0].post_hoc is None
    posthoc = _has(cands, "cross_entropy", "logit_adjustment")
    plain = _has(cands, "cross_entropy", weight=None, label_smoothing=0.0)
    for c in _reweighted(cands):
        assert c.prior > posthoc.prior > plain.prior, c.rule_id
    # Under accuracy the post-hoc adjustment leads as before.
    accuracy = found["moderate_imbalance_accuracy"]
    assert accuracy[0].spec.loss == "cross_entropy" and accuracy[0].post_hoc.kind == "logit_adjustment"
    _has(cands, "cross_entropy", weight=[n / (k * c) for c in counts])
    _has(cands, "logit_adjusted", samples_per_class=counts, tau=1.0)
    _has(cands, "class_balanced", samples_per_class=counts, beta=1 - 1 / 600, gamma=0.0)
    inverse = [1 / c for c in counts]
    _has(cands, "focal", gamma=2.0, alpha=[w / sum(inverse) for w in inverse])
    assert "ldam" not in _losses(cands)  # LDAM is for severe imbalance / long tails


def test_long_tail_gets_balanced_softmax_ldam_and_class_balanced_focal(found):
    counts = TASKS["long_tail"][0]["class_histogram"]
    for name in ("long_tail", "long_tail_accuracy"):
        cands = found[name]
        _has(cands, "logit_adjusted", samples_per_class=counts, tau=1.0)
        _has(cands, "ldam", samples_per_class=counts, max_margin=0.5, scale=30.0)
        focal_cb = [
            c
            for c in _find(cands, "class_balanced", samples_per_class=counts, beta=1 - 1 / 5000)
            if c.spec.params["gamma"] in (0.5, 1.0, 2.0)
        ]
        assert focal_cb, name
    accuracy = found["long_tail_accuracy"]
    assert accuracy[0].post_hoc is not None and accuracy[0].post_hoc.kind == "logit_adjustment"
    assert accuracy[1].spec.loss == "logit_adjusted" and accuracy[1].spec.params["tau"] == 1.0
    # Inverse-frequency weighted CE is the moderate-imbalance recipe (ratio 500 is severe) ...
    assert not [c for c in _find(accuracy, "cross_entropy") if c.spec.params["weight"] is not None]
    # ... unless the metric is class-balanced (the default here), which brings it at any imbalance.
    balanced = found["long_tail"]
    n, k = sum(counts), len(counts)
    _has(balanced, "cross_entropy", weight=[n / (k * c) for c in counts])
    assert balanced[0].spec.loss == "focal"
    la = _has(balanced, "logit_adjusted", tau=1.0)
    assert la.prior > _has(balanced, "cross_entropy", "logit_adjustment").prior


def test_binary_rare_positive(found):
    cands = found["binary_rare_positive"]
    assert _metric("binary_rare_positive") == "average_precision"  # the imbalanced default
    _has(cands, "bce", pos_weight=[990 / 10])
    _has(cands, "binary_focal", gamma=2.0, alpha=0.25)
    _has(cands, "binary_focal", gamma=2.0, alpha=990 / 1000)
    _has(cands, "logit_adjusted", samples_per_class=[990, 10])
    # Average precision sees neither a threshold nor a two-class logit shift.
    assert all(c.post_hoc is None for c in cands)
    assert "ldam" not in _losses(cands)  # multiclass only
    balanced = found["binary_rare_positive_balanced_accuracy"]
    _has(balanced, "bce", "threshold", pos_weight=None)
    _has(balanced, "cross_entropy", "logit_adjustment")
    assert balanced[0].spec.loss == "binary_focal" and balanced[0].spec.params["alpha"] == pytest.approx(0.99)
    moderate = found["binary_moderate"]
    _has(moderate, "bce", pos_weight=[19.0])
    _has(moderate, "cross_entropy", weight=[1000 / (2 * 950), 1000 / (2 * 50)])


def test_binary_mild_imbalance_under_balanced_accuracy_ranks_reweighted_losses_above_bce(found):
    cands = found["binary_mild_balanced_accuracy"]  # [600, 300]: ratio 2, below the moderate band
    neg, pos = 600, 300
    n = neg + pos
    focal = _has(cands, "binary_focal", gamma=2.0, alpha=neg / n)
    pos_weight = _has(cands, "bce", pos_weight=[neg / pos])
    weighted = _has(cands, "cross_entropy", weight=[n / (2 * neg), n / (2 * pos)])
    adjusted = _has(cands, "logit_adjusted", samples_per_class=[neg, pos], tau=1.0)
    balanced = _has(cands, "class_balanced", samples_per_class=[neg, pos], beta=1 - 1 / neg, gamma=0.0)
    plain = _has(cands, "bce", pos_weight=None)
    threshold = _has(cands, "bce", "threshold", pos_weight=None)
    reweighted = [focal, pos_weight, weighted, adjusted, balanced]
    assert all(c.prior > threshold.prior > plain.prior for c in reweighted)
    # The measured order: focal with inverse-frequency alpha first, weighted losses next.
    assert cands[0] == focal
    assert focal.prior > pos_weight.prior and focal.prior > weighted.prior
    order = [c.key() for c in cands]
    assert all(order.index(c.key()) < order.index(plain.key()) for c in reweighted)
    # The same histogram under accuracy or ROC AUC (no class-balanced metric, ratio < 3): no re-weighting.
    for name in ("binary_mild_accuracy", "binary_mild_roc_auc"):
        assert not _reweighted(found[name]), name


def test_multiclass_mild_imbalance_under_macro_f1_gets_reweighted_candidates(found):
    cands = found["mild_imbalance_macro_f1"]
    counts = [200, 100, 100]
    n, k = sum(counts), len(counts)
    inverse = [1 / c for c in counts]
    focal = _has(cands, "focal", gamma=2.0, alpha=[w / sum(inverse) for w in inverse])
    weighted = _has(cands, "cross_entropy", weight=[n / (k * c) for c in counts])
    adjusted = _has(cands, "logit_adjusted", samples_per_class=counts, tau=1.0)
    balanced = _has(cands, "class_balanced", samples_per_class=counts, beta=1 - 1 / 200, gamma=0.0)
    plain = _has(cands, "cross_entropy", weight=None, label_smoothing=0.0)
    assert cands[0] == focal
    assert all(c.prior > plain.prior for c in (focal, weighted, adjusted, balanced))
    # Ratio 2 under accuracy, and ratio 1.4 under balanced accuracy: no real imbalance to correct.
    assert not _reweighted(found["mild_imbalance_accuracy"])
    assert not _reweighted(found["near_balanced_balanced_accuracy"])


def test_reweighted_candidates_rank_above_plain_ce_whenever_the_metric_is_class_balanced(found):
    checked = 0
    for name, heads in TASKS.items():
        head = heads[0]
        histogram = head.get("class_histogram")
        if head["type"] not in ("multiclass", "binary") or not histogram or head.get("calibration_needed"):
            continue
        if head.get("label_noise"):  # no focal under label noise; the noise rules have their own test
            continue
        if _metric(name) not in CLASS_BALANCED or max(histogram) / max(min(histogram), 1) < 1.5:
            continue
        cands = found[name]
        default = DEFAULT_LOSS[head["type"]]
        plain = (
            _has(cands, default, pos_weight=None) if default == "bce" else _has(cands, default, weight=None)
        )
        # The recipes the evidence names: focal with inverse-frequency alpha (binary: also BCE with pos_weight),
        # weighted CE, logit-adjusted CE with tau 1, class-balanced CE.
        if head["type"] == "binary":
            neg, pos = histogram
            named = [
                _has(cands, "binary_focal", gamma=2.0, alpha=neg / (neg + pos)),
                _has(cands, "bce", pos_weight=[min(neg / pos, 100.0)]),
            ]
        else:
            inverse = [1 / max(c, 1) for c in histogram]
            named = [_has(cands, "focal", gamma=2.0, alpha=[w / sum(inverse) for w in inverse])]
        n, k = sum(histogram), len(histogram)
        named += [
            _has(cands, "cross_entropy", weight=[n / (k * max(c, 1)) for c in histogram]),
            _has(cands, "logit_adjusted", samples_per_class=histogram, tau=1.0),
            _has(cands, "class_balanced", samples_per_class=histogram, gamma=0.0),
        ]
        assert cands[0] == named[0], name
        assert all(c.prior > plain.prior for c in named), name
        posthoc = [c for c in cands if c.post_hoc is not None]
        assert all(c.prior > p.prior for c in named for p in posthoc), name
        checked += 1
    assert checked >= 5


def test_threshold_free_metrics_get_no_recipe_they_cannot_see(found):
    checked = 0
    for name, heads in TASKS.items():
        head = heads[0]
        if head["type"] != "binary":
            continue
        metric = _metric(name)
        kinds = {c.post_hoc.kind for c in found[name] if c.post_hoc}
        if metric in THRESHOLD_FREE:
            assert "threshold" not in kinds, name
            checked += 1
        if metric in RANKING:
            assert "logit_adjustment" not in kinds, name
    assert checked >= 6
    # A metric that scores the probabilities themselves can see a logit shift, and decision metrics a threshold.
    for name in ("binary_moderate_log_loss", "binary_moderate_brier"):
        _has(found[name], "cross_entropy", "logit_adjustment")
    for name in (
        "binary_moderate_macro_f1",
        "binary_rare_positive_balanced_accuracy",
        "binary_mild_accuracy",
    ):
        _has(found[name], "bce", "threshold")
    # No candidate under a ranking metric differs from another only by a recipe the metric cannot see.
    for name in ("binary_moderate", "binary_moderate_roc_auc"):
        specs = [c.spec.to_json() for c in found[name]]
        assert len(specs) == len(set(specs)), name


def test_balanced_binary_with_ranking_metric_has_no_imbalance_machinery(found):
    cands = found["binary_balanced_auc"]
    assert [c.spec.loss for c in cands] == ["bce"]
    assert cands[0].post_hoc is None and cands[0].spec.params["pos_weight"] is None


def test_label_noise_five_percent_smooths_labels(found):
    cands = found["noise_5"]
    top = cands[0]
    assert top.spec.loss == "cross_entropy" and top.spec.params["label_smoothing"] == pytest.approx(0.05)
    assert not (_losses(cands) & {"gce", "sce"})


def test_label_noise_25_percent_uses_robust_losses(found):
    cands = found["noise_25"]
    assert cands[0].spec.loss == "gce" and cands[0].spec.params["q"] == pytest.approx(0.7)
    _has(cands, "sce", alpha=0.1, beta=1.0)
    noisy_imbalanced = found["noise_25_imbalanced"]
    _has(noisy_imbalanced, "gce", q=0.7)
    _has(noisy_imbalanced, "cross_entropy", "logit_adjustment")
    assert "focal" not in _losses(noisy_imbalanced)
    assert "binary_focal" not in _losses(found["noise_25_binary_rare"])
    many = found["noise_40_many_classes"]
    _has(many, "sce", alpha=6.0, beta=0.1)
    assert not _find(many, "sce", alpha=0.1)


def test_calibration_needed_puts_temperature_scaling_first_and_drops_reweighting(found):
    for name, loss in (
        ("calibration_multiclass", "cross_entropy"),
        ("calibration_long_tail", "cross_entropy"),
        ("calibration_binary", "bce"),
        ("multilabel_calibration", "bce"),
    ):
        cands = found[name]
        top = cands[0]
        assert (top.spec.loss, top.post_hoc.kind if top.post_hoc else None) == (loss, "temperature"), name
        assert top.spec.params.get("weight") is None and top.spec.params.get("pos_weight") is None
        assert not (_losses(cands) & REWEIGHTING), name
        assert all(c.spec.params.get("weight") is None for c in cands), name
        assert all(c.spec.params.get("pos_weight") is None for c in cands), name
    _has(found["calibration_multiclass"], "cross_entropy", "logit_adjustment")


def test_log_softmax_heads_get_nll(found):
    cands = found["log_probs"]
    _has(cands, "nll", weight=None)
    _has(cands, "nll", weight=[800 / 1800, 800 / 300, 800 / 300])
    assert "nll" not in _losses(found["moderate_imbalance"])


def test_ordinal_gets_the_cross_entropy_baseline(found):
    cands = found["ordinal"]
    assert cands[0].spec.loss == "cross_entropy" and cands[0].post_hoc is None


# Regression and counts.


def test_regression_by_outlier_share(found):
    clean = found["regression_clean"]
    assert clean[0].spec.loss == "mse"
    assert not (_losses(clean) & {"huber", "l1", "log_cosh"})
    ten = found["regression_10pct_outliers"]
    assert ten[0].spec.loss == "huber" and ten[0].spec.params["delta"] == pytest.approx(1.345 * 2.0)
    _has(ten, "log_cosh")
    _has(ten, "smooth_l1", beta=1.345 * 2.0)
    assert "l1" not in _losses(ten)
    thirty = found["regression_30pct_outliers"]
    assert thirty[0].spec.loss == "l1"
    _has(thirty, "quantile", quantiles=[0.5])
    assert "huber" not in _losses(thirty)
    assert _has(thirty, "mse").prior < thirty[0].prior


def test_regression_metric_intervals_and_heteroscedasticity(found):
    assert found["regression_mae"][0].spec.loss == "l1"
    intervals = found["regression_intervals"]
    assert intervals[0].spec.loss == "quantile" and intervals[0].spec.params["quantiles"] == [0.05, 0.5, 0.95]
    _has(intervals, "gaussian_nll")
    hetero = found["regression_heteroscedastic"]
    _has(hetero, "beta_nll", beta=0.5)
    _has(hetero, "gaussian_nll")
    _has(hetero, "quantile", quantiles=[0.05, 0.5, 0.95])
    assert "beta_nll" not in _losses(found["regression_clean"])
    _has(found["regression_zeros"], "tweedie", power=1.5)


def test_zero_heavy_non_negative_regression_under_a_deviance_metric_gets_log_link_losses(found):
    cands = found["regression_zeros_poisson_deviance"]
    mse = _has(cands, "mse")
    poisson = _has(cands, "poisson_nll", log_input=True)
    tweedie = _has(cands, "tweedie", power=1.5)
    assert cands[0] == poisson  # Poisson NLL is the Poisson deviance up to a constant
    assert poisson.prior > mse.prior and tweedie.prior > mse.prior
    # tweedie_deviance with a stated power: the Tweedie loss at that power leads.
    stated = found["regression_zeros_tweedie_deviance"]
    assert stated[0].spec.loss == "tweedie" and stated[0].spec.params["power"] == pytest.approx(1.3)
    assert _has(stated, "poisson_nll", log_input=True).prior > _has(stated, "mse").prior
    # Without zeros, a deviance metric still brings both; the gamma deviance (p = 2) the loss's largest power.
    for name, power in (
        ("regression_positive_poisson_deviance", 1.5),
        ("regression_positive_gamma_deviance", 1.9),
    ):
        found_here = found[name]
        mse_here = _has(found_here, "mse")
        assert _has(found_here, "tweedie", power=power).prior > mse_here.prior, name
        assert _has(found_here, "poisson_nll", log_input=True).prior > mse_here.prior, name
    # Zeros under RMSE: the log-link losses are trials, MSE (the metric itself) leads.
    rmse = found["regression_zeros"]
    assert rmse[0].spec.loss == "mse"
    _has(rmse, "tweedie", power=1.5)
    _has(rmse, "poisson_nll", log_input=True)
    # No zeros, no deviance metric: neither.
    assert not (_losses(found["regression_clean"]) & {"tweedie", "poisson_nll"})


def test_count_head_under_tweedie_deviance_trains_at_the_metric_power(found):
    cands = found["counts_tweedie_deviance"]
    assert cands[0].spec.loss == "tweedie" and cands[0].spec.params["power"] == pytest.approx(1.5)
    dispersion = 10.0 / 2.0
    _has(cands, "tweedie", power=round(1 + math.log10(dispersion) / 2 + 0.1, 2))
    _has(cands, "poisson_nll", log_input=True)


def test_counts_by_dispersion_and_zeros(found):
    poisson = found["counts_poisson"]
    assert poisson[0].spec.loss == "poisson_nll" and poisson[0].spec.params["log_input"] is True
    assert "tweedie" not in _losses(poisson)
    over = found["counts_overdispersed"]
    dispersion = 10.0 / 2.0
    power = round(min(max(1 + math.log10(dispersion) / 2 + 0.1, 1.1), 1.9), 2)
    assert over[0].spec.loss == "tweedie" and over[0].spec.params["power"] == pytest.approx(power)
    assert 1.1 <= power <= 1.9
    zeros = found["counts_excess_zeros"]
    assert zeros[0].spec.loss == "tweedie" and zeros[0].spec.params["power"] == pytest.approx(1.5)


# Multilabel, segmentation, audio, distribution, several heads.


def test_multilabel_rare_labels_step_up(found):
    cands = found["multilabel_rare"]
    rates = [0.4, 0.02, 0.005]
    _has(cands, "bce", pos_weight=[min((1 - p) / p, 100.0) for p in rates])
    _has(cands, "binary_focal", gamma=2.0)
    _has(cands, "asl", gamma_neg=2.0, gamma_pos=1.0, clip=0.0)
    _has(cands, "asl", gamma_neg=4.0, gamma_pos=1.0, clip=0.05)
    assert cands[0].spec.loss == "asl"  # the rarest label is below 1%
    assert _losses(found["multilabel_common"]) == {"bce"}
    noisy = found["multilabel_rare_noisy"]
    assert "binary_focal" not in _losses(noisy)
    _has(noisy, "bce", pos_weight=[min((1 - p) / p, 100.0) for p in rates])


def test_segmentation_by_foreground_share_and_metric(found):
    nnunet = {
        "include_background": False,
        "batch": True,
        "smooth_nr": 1e-5,
        "smooth_dr": 1e-5,
        "lambda_dice": 1.0,
        "lambda_ce": 1.0,
    }
    large = found["segmentation_large"]
    assert large[0].spec.loss == "dice_ce"
    assert all(_close(large[0].spec.params[k], v) for k, v in nnunet.items())
    assert not (_losses(large) & {"tversky", "focal_tversky"})
    tiny = found["segmentation_tiny"]
    # Compound Dice losses first, Tversky-type losses after the default (Ma et al. 2021: compounds are the
    # more robust), so trials that cannot separate them keep a compound loss.
    assert tiny[0].spec.loss in {"dice_ce", "compound"}
    order = [c.spec.loss for c in tiny]
    assert order.index("dice_ce") < order.index("tversky") < order.index("focal_tversky")
    _has(tiny, "tversky", fp_weight=0.3, fn_weight=0.7)
    _has(tiny, "focal_tversky", fp_weight=0.3, fn_weight=0.7, gamma=0.75)
    _has(tiny, "dice", include_background=False)
    _has(tiny, "dice_ce", **nnunet)
    iou = found["segmentation_iou"]
    _has(iou, "lovasz")
    _has(iou, "jaccard")
    assert not (_losses(large) & {"lovasz", "jaccard"})


def test_audio_resolutions_follow_the_sample_rate(found):
    low = found["audio_16k"]
    top = low[0]
    assert top.spec.loss == "mr_stft"
    # Parallel WaveGAN's 24 kHz settings scaled by 2/3, FFT sizes rounded to powers of two.
    assert top.spec.params["fft_sizes"] == [512, 1024, 256]
    assert top.spec.params["hop_sizes"] == [80, 160, 33]
    assert top.spec.params["win_lengths"] == [400, 800, 160]
    high = found["audio_44k_si_sdr"]
    _has(high, "si_sdr")
    stft = _has(high, "mr_stft")
    assert stft.spec.params["fft_sizes"] == [2048, 4096, 1024]
    for hop, ref in zip(stft.spec.params["hop_sizes"], (120, 240, 50), strict=True):
        assert abs(hop - ref * 44100 / 24000) <= 1
    assert all(
        w <= f for w, f in zip(stft.spec.params["win_lengths"], stft.spec.params["fft_sizes"], strict=True)
    )
    assert found["audio_snr"][0].spec.loss == "snr"
    assert found["audio_esr"][0].spec.loss == "esr"


def test_distribution_gets_kl(found):
    assert found["distribution"][0].spec.loss == "kl_div"


def test_two_heads_get_their_own_candidates_and_a_multi_task_composition(found):
    cands = found["two_heads"]
    label, price = _head(cands, "label"), _head(cands, "price")
    _has(label, "cross_entropy", "logit_adjustment")
    assert price[0].spec.loss == "huber"
    composed = _head(cands, "*")
    assert {c.spec.params["weighting"]["scheme"] for c in composed} == {"static", "uncertainty"}
    heads = composed[0].spec.params["heads"]
    assert heads["price"]["loss"] == "huber"
    assert heads["label"]["loss"] == next(c.spec.loss for c in label if c.post_hoc is None)
