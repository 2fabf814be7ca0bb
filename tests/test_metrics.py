"""Deviance metrics for non-negative targets, each against its float64 formula written out here (not read back
from scikit-learn or the code under test), and the task-boundary checks that go with them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from advisor.heads import HIGHER_IS_BETTER, METRICS_BY_HEAD
from advisor.task import TaskError, parse_task
from advisor.trials import metrics

FLOOR = 1e-9  # the documented prediction floor


def _poisson(y: np.ndarray, mu: np.ndarray) -> float:
    """2 mean(y log(y / mu) - (y - mu)), with y log(y / mu) = 0 at y = 0."""
    total = 0.0
    for yi, mi in zip(y.tolist(), mu.tolist(), strict=True):
        term = yi * math.log(yi / mi) if yi > 0 else 0.0
        total += 2.0 * (term - (yi - mi))
    return total / len(y)


def _tweedie(y: np.ndarray, mu: np.ndarray, p: float) -> float:
    """2 mean(y^(2-p) / ((1-p)(2-p)) - y mu^(1-p) / (1-p) + mu^(2-p) / (2-p)), 1 < p < 2."""
    total = 0.0
    for yi, mi in zip(y.tolist(), mu.tolist(), strict=True):
        total += 2.0 * (
            yi ** (2 - p) / ((1 - p) * (2 - p)) - yi * mi ** (1 - p) / (1 - p) + mi ** (2 - p) / (2 - p)
        )
    return total / len(y)


def _gamma(y: np.ndarray, mu: np.ndarray) -> float:
    """2 mean(log(mu / y) + y / mu - 1), y > 0."""
    total = 0.0
    for yi, mi in zip(y.tolist(), mu.tolist(), strict=True):
        total += 2.0 * (math.log(mi / yi) + yi / mi - 1.0)
    return total / len(y)


def _score(metric: str, prediction: np.ndarray, target: np.ndarray, **kwargs) -> float:
    predictions = {"value": torch.tensor(prediction, dtype=torch.float32)}
    return metrics.score(metric, predictions, torch.tensor(target, dtype=torch.float32), **kwargs)


@pytest.fixture
def zero_heavy() -> tuple[np.ndarray, np.ndarray]:
    """A non-negative target with 40% exact zeros and positive predictions (float32-exact values)."""
    rng = np.random.default_rng(0)
    y = np.where(rng.random(200) < 0.4, 0.0, rng.gamma(2.0, 3.0, 200)).astype(np.float32)
    mu = rng.uniform(0.2, 9.0, 200).astype(np.float32)
    return y.astype(np.float64), mu.astype(np.float64)


@pytest.fixture
def positive() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.gamma(2.0, 3.0, 150).astype(np.float32) + np.float32(0.1)
    mu = rng.uniform(0.5, 9.0, 150).astype(np.float32)
    return y.astype(np.float64), mu.astype(np.float64)


def test_poisson_deviance_matches_its_formula(zero_heavy):
    y, mu = zero_heavy
    assert _score("poisson_deviance", mu, y) == pytest.approx(_poisson(y, mu), rel=1e-9)


@pytest.mark.parametrize("power", [1.2, 1.5, 1.8])
def test_tweedie_deviance_matches_its_formula_at_the_given_power(zero_heavy, power):
    y, mu = zero_heavy
    assert _score("tweedie_deviance", mu, y, tweedie_power=power) == pytest.approx(
        _tweedie(y, mu, power), rel=1e-9
    )


def test_tweedie_deviance_defaults_to_power_1_5(zero_heavy):
    y, mu = zero_heavy
    assert _score("tweedie_deviance", mu, y) == pytest.approx(_tweedie(y, mu, 1.5), rel=1e-9)
    assert _score("tweedie_deviance", mu, y) != pytest.approx(_tweedie(y, mu, 1.2), rel=1e-3)


def test_gamma_deviance_matches_its_formula(positive):
    y, mu = positive
    assert _score("gamma_deviance", mu, y) == pytest.approx(_gamma(y, mu), rel=1e-9)


def test_tweedie_power_ends_are_the_poisson_and_gamma_deviances(zero_heavy, positive):
    y, mu = zero_heavy
    assert _score("tweedie_deviance", mu, y, tweedie_power=1.0) == pytest.approx(_poisson(y, mu), rel=1e-9)
    y, mu = positive
    assert _score("tweedie_deviance", mu, y, tweedie_power=2.0) == pytest.approx(_gamma(y, mu), rel=1e-9)


def test_predictions_are_clipped_to_a_small_positive_floor():
    y = np.array([0.0, 1.0, 3.0, 0.0])
    raw = np.array([0.0, -2.0, 2.0, 1.0])
    mu = np.maximum(raw, FLOOR)
    assert _score("poisson_deviance", raw, y) == pytest.approx(_poisson(y, mu), rel=1e-9)
    assert _score("tweedie_deviance", raw, y, tweedie_power=1.5) == pytest.approx(
        _tweedie(y, mu, 1.5), rel=1e-9
    )
    positive_y = np.array([0.5, 1.0, 3.0, 2.0])
    assert _score("gamma_deviance", raw, positive_y) == pytest.approx(_gamma(positive_y, mu), rel=1e-9)
    assert all(math.isfinite(_score(m, raw, positive_y)) for m in ("poisson_deviance", "gamma_deviance"))


def test_perfect_predictions_score_zero_and_worse_ones_more(positive):
    y, mu = positive
    for metric in ("poisson_deviance", "tweedie_deviance", "gamma_deviance"):
        assert _score(metric, y, y) == pytest.approx(0.0, abs=1e-6)
        assert _score(metric, mu, y) > 0.1
        assert HIGHER_IS_BETTER[metric] is False  # lower is better


def test_a_target_outside_the_deviance_domain_gives_nan_not_an_exception():
    mu = np.array([1.0, 2.0, 3.0])
    assert math.isnan(_score("poisson_deviance", mu, np.array([-1.0, 2.0, 3.0])))
    assert math.isnan(_score("gamma_deviance", mu, np.array([0.0, 2.0, 3.0])))
    assert math.isnan(_score("tweedie_deviance", mu, np.array([0.0, 2.0, 3.0]), tweedie_power=2.0))


# The task boundary.


def _head(**head) -> dict:
    return {"heads": [{"name": "y", **head}]}


def _violation(task: dict) -> tuple[str, str]:
    with pytest.raises(TaskError) as caught:
        parse_task(task)
    violation = caught.value.violations[0]
    return violation.field, violation.description


def test_deviance_metrics_fit_regression_heads_and_tweedie_deviance_count_heads():
    for metric in ("poisson_deviance", "tweedie_deviance", "gamma_deviance"):
        assert metric in METRICS_BY_HEAD["regression"]
        assert parse_task(_head(type="regression", metric=metric)).heads[0].metric == metric
    assert "tweedie_deviance" in METRICS_BY_HEAD["count"] and "gamma_deviance" not in METRICS_BY_HEAD["count"]
    head = parse_task(_head(type="count", metric="tweedie_deviance", tweedie_power=1.2)).heads[0]
    assert (head.metric, head.tweedie_power) == ("tweedie_deviance", 1.2)
    assert parse_task(_head(type="regression")).heads[0].tweedie_power is None  # unset means 1.5


@pytest.mark.parametrize("power", [0.5, 2.5, -1.0])
def test_tweedie_power_outside_1_to_2_names_the_field_the_value_and_the_range(power):
    field, message = _violation(_head(type="regression", tweedie_power=power))
    assert field == "heads.0.tweedie_power"
    assert repr(power) in message and "1 <= p <= 2" in message


def test_a_non_finite_tweedie_power_is_refused_as_not_finite():
    field, message = _violation(_head(type="regression", tweedie_power=float("nan")))
    assert field == "heads.0.tweedie_power" and "nan" in message and "finite" in message


def test_tweedie_power_ends_are_allowed_and_other_heads_refuse_it():
    for power in (1.0, 2.0):
        assert parse_task(_head(type="regression", tweedie_power=power)).heads[0].tweedie_power == power
    field, message = _violation(_head(type="binary", tweedie_power=1.5))
    assert field == "heads.0.tweedie_power" and "regression, count" in message


@pytest.mark.parametrize("metric", ["poisson_deviance", "tweedie_deviance", "gamma_deviance"])
def test_a_deviance_metric_on_a_target_with_negative_values_is_refused(metric):
    field, message = _violation(_head(type="regression", metric=metric, target={"minimum": -0.5}))
    assert field == "heads.0.metric"
    assert repr(metric) in message and "non-negative" in message and "-0.5" in message
    assert "rmse" in message  # what to choose instead


def test_the_gamma_deviance_needs_a_strictly_positive_target():
    field, message = _violation(
        _head(type="regression", metric="gamma_deviance", target={"minimum": 0.0, "zero_share": 0.2})
    )
    assert field == "heads.0.metric" and "strictly positive" in message and "zero_share 0.2" in message
    field, message = _violation(_head(type="regression", metric="gamma_deviance", target={"minimum": 0.0}))
    assert "minimum 0" in message
    # tweedie_deviance at p = 2 is the gamma deviance.
    field, message = _violation(
        _head(type="regression", metric="tweedie_deviance", tweedie_power=2.0, target={"zero_share": 0.1})
    )
    assert field == "heads.0.metric" and "tweedie_power 2" in message and "strictly positive" in message
    # Exact zeros are fine below p = 2, and a strictly positive target is fine for the gamma deviance.
    parse_task(
        _head(type="regression", metric="tweedie_deviance", target={"minimum": 0.0, "zero_share": 0.4})
    )
    parse_task(
        _head(type="regression", metric="poisson_deviance", target={"minimum": 0.0, "zero_share": 0.4})
    )
    parse_task(_head(type="regression", metric="gamma_deviance", target={"minimum": 0.1, "zero_share": 0.0}))


def test_tweedie_power_crosses_the_grpc_boundary_both_ways():
    from advisor.service.convert import task_from_proto, task_to_proto
    from lossadvisor.v1 import advisor_pb2 as pb

    message = pb.TaskDescription(
        heads=[pb.Head(name="y", type="regression", metric="tweedie_deviance", tweedie_power=1.3)]
    )
    head = task_from_proto(message).heads[0]
    assert (head.metric, head.tweedie_power) == ("tweedie_deviance", 1.3)
    back = task_to_proto(task_from_proto(message)).heads[0]
    assert back.HasField("tweedie_power") and back.tweedie_power == 1.3
    unset = task_to_proto(task_from_proto(pb.TaskDescription(heads=[pb.Head(type="regression")]))).heads[0]
    assert not unset.HasField("tweedie_power")
    with pytest.raises(TaskError) as caught:
        task_from_proto(pb.TaskDescription(heads=[pb.Head(type="regression", tweedie_power=2.5)]))
    assert caught.value.violations[0].field == "task.heads.0.tweedie_power"


@pytest.mark.parametrize("seed", range(6))
def test_per_epoch_metrics_agree_with_scikit_learn_ties_and_missing_classes_included(seed):
    """The numpy forms rated after every epoch against scikit-learn (the peer library), on scores rounded
    to produce ties and on labels where some classes are missing from the predictions or the target."""
    from sklearn import metrics as skm

    rng = np.random.default_rng(seed)
    rows, classes = 120, 4
    y = rng.integers(0, classes - (seed % 2), rows)  # odd seeds: the last class never occurs in the target
    logits = torch.tensor(np.round(rng.normal(size=(rows, classes)), 1))
    proba = {"proba": logits.softmax(1)}
    labels = proba["proba"].numpy().argmax(1)
    target = torch.tensor(y)
    assert metrics.score("balanced_accuracy", proba, target) == pytest.approx(
        skm.balanced_accuracy_score(y, labels), abs=1e-12
    )
    assert metrics.score("macro_f1", proba, target) == pytest.approx(
        skm.f1_score(y, labels, average="macro", zero_division=0), abs=1e-12
    )
    binary = (y == 0).astype(int)
    positive = torch.tensor(np.round(rng.random(rows), 1))  # many ties
    two = {"proba": torch.stack([1 - positive, positive], 1)}
    for metric, reference in (
        ("average_precision", skm.average_precision_score),
        ("roc_auc", skm.roc_auc_score),
    ):
        expected = reference(binary, positive.numpy())
        assert metrics.score(metric, two, torch.tensor(binary)) == pytest.approx(expected, abs=1e-12)
    multilabel = rng.integers(0, 2, (rows, 3))
    scores = torch.tensor(np.round(rng.random((rows, 3)), 1))
    expected_map = np.mean([skm.average_precision_score(multilabel[:, j], scores[:, j]) for j in range(3)])
    assert metrics.score("map", {"proba": scores}, torch.tensor(multilabel)) == pytest.approx(
        expected_map, abs=1e-12
    )
    multilabel[:, 2] = 0  # a label never present (and, below 0.5 everywhere, never predicted)
    scores[:, 2] = 0.1
    expected_f1 = skm.f1_score(multilabel, scores.numpy() > 0.5, average="macro", zero_division=0)
    assert metrics.score("macro_f1", {"proba": scores}, torch.tensor(multilabel)) == pytest.approx(
        expected_f1, abs=1e-12
    )
    value = torch.tensor(rng.normal(size=rows))
    spread = torch.tensor(rng.random(rows)) + 0.1
    quantiles = torch.stack([value - spread, value, value + 2 * spread], 1)
    truth = rng.normal(size=rows)
    expected_pinball = np.mean([
        skm.mean_pinball_loss(truth, quantiles[:, i].numpy(), alpha=q) for i, q in enumerate((0.05, 0.5, 0.95))
    ])  # fmt: skip
    got = metrics.score("pinball", {"value": value, "quantiles": quantiles}, torch.tensor(truth))
    assert got == pytest.approx(expected_pinball, abs=1e-12)


def _overlap_by_hand(predicted: np.ndarray, truth: np.ndarray, jaccard: bool) -> float:
    """Per image and foreground class: 2|P & T| / (|P| + |T|) (or |P & T| / |P | T|), 1 when both are empty."""
    values = []
    for image_pred, image_true in zip(predicted, truth, strict=True):
        for c in range(1, max(truth.max(), predicted.max(), 1) + 1):
            p, t = image_pred == c, image_true == c
            inter, union, total = (p & t).sum(), (p | t).sum(), p.sum() + t.sum()
            values.append(1.0 if total == 0 else (inter / union if jaccard else 2 * inter / total))
    return float(np.mean(values))


@pytest.mark.parametrize("metric", ["dice", "iou"])
def test_dice_and_iou_per_image_and_class_match_their_definition(metric):
    rng = np.random.default_rng(3)
    logits = torch.tensor(rng.normal(size=(5, 3, 6, 7)))
    logits[0, 2] = -9.0  # class 2 never predicted in image 0
    truth = rng.integers(0, 3, (5, 6, 7))
    truth[0][truth[0] == 2] = 0  # ... nor present there: that pair scores 1
    predicted = logits.argmax(1).numpy()
    expected = _overlap_by_hand(predicted, truth, jaccard=metric == "iou")
    got = metrics.score(metric, {"proba": logits.softmax(1)}, torch.tensor(truth))
    assert got == pytest.approx(expected, abs=1e-12)


def test_ranking_metrics_are_undefined_with_one_class_only():
    one_class = {"proba": torch.tensor([[0.3, 0.7], [0.6, 0.4]])}
    assert math.isnan(metrics.score("average_precision", one_class, torch.tensor([0, 0])))
    assert math.isnan(metrics.score("roc_auc", one_class, torch.tensor([1, 1])))
