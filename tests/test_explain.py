"""The verdict and caveats: every branch on hand-made evidence, the numbers against scipy's t-interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import advisor
from advisor.explain import caveats, verdict
from advisor.recommendation import Evidence, RankedCandidate
from advisor.trials.evidence import HeadEvidence


def _candidate(
    rank: int, loss: str, values: list[float] | None, tie: int, rule: str = "r", **params
) -> RankedCandidate:
    evidence = None
    if values is not None:
        mean = float(np.mean(values))
        evidence = Evidence(
            metric="accuracy", per_repeat=values, mean=mean, std=float(np.std(values, ddof=1)), ci_low=mean - 0.1,
            ci_high=mean + 0.1, protocols=[], repeats=len(values), diverged_repeats=0, curves=[],
        )  # fmt: skip
    return RankedCandidate(
        rank=rank, head="y", spec=advisor.normalize_spec({"loss": loss, "params": params}), prior=0.5, score=0.0,
        tie_group=tie, rule_id=rule, title=loss, rationale="because", references=[], evidence=evidence,
    )  # fmt: skip


DEFAULT = "multiclass-baseline"


def test_a_clear_winner_beats_the_default_by_the_paired_interval():
    focal = [0.80, 0.82, 0.85, 0.81]
    plain = [0.70, 0.74, 0.73, 0.72]
    ranked = [_candidate(1, "focal", focal, 1), _candidate(2, "cross_entropy", plain, 2, rule=DEFAULT)]
    differences = np.subtract(focal, plain)
    half = stats.t.ppf(0.975, 3) * differences.std(ddof=1) / 2
    text = verdict(ranked, "accuracy", True)
    digits = 3  # the smallest spread (0.017) shown with two significant digits
    assert text == (
        f"focal beats the default cross_entropy by {differences.mean():.{digits}f} accuracy (95% CI "
        f"{differences.mean() - half:.{digits}f} to {differences.mean() + half:.{digits}f}, 4 paired repeats)."
    )


def test_lower_is_better_differences_are_oriented_as_gains():
    ranked = [
        _candidate(1, "huber", [1.0, 1.1, 0.9], 1),
        _candidate(2, "mse", [2.0, 2.2, 1.9], 2, rule="regression-baseline"),
    ]
    text = verdict(ranked, "rmse", False)
    assert text.startswith("huber beats the default mse by 1.0") and "rmse" in text


def test_a_tie_at_the_top_says_whether_the_default_is_among_them():
    tied = [
        _candidate(1, "focal", [0.8, 0.7], 1),
        _candidate(2, "cross_entropy", [0.75, 0.74], 1, rule=DEFAULT),
    ]
    behind = _candidate(3, "nll", [0.1, 0.2], 2)
    assert verdict([*tied, behind], "accuracy", True) == (
        "2 losses tie at the top on accuracy (focal, cross_entropy); the default cross_entropy is among them."
    )
    everyone = verdict(tied, "accuracy", True)
    assert everyone.startswith("All 2 candidates tie on accuracy: the evidence cannot tell them apart")
    default_behind = [
        tied[0],
        _candidate(2, "poly1", [0.75, 0.74], 1),
        _candidate(3, "cross_entropy", [0.5, 0.4], 2, rule=DEFAULT),
    ]
    text = verdict(default_behind, "accuracy", True)
    assert "2 losses tie at the top" in text and "the default cross_entropy is behind focal by 0.30" in text


def test_many_tied_candidates_are_counted_not_dropped():
    losses = ["focal", "cross_entropy", "poly1", "gce", "sce", "nll", "mse"]
    ranked = [_candidate(i + 1, loss, [0.5, 0.6], 1) for i, loss in enumerate(losses)]
    ranked.append(_candidate(8, "l1", [0.1, 0.1], 2))
    text = verdict(ranked, "accuracy", True)
    assert text.startswith(
        "7 losses tie at the top on accuracy (focal, cross_entropy, poly1, gce, sce and 2 more)"
    )
    assert text.endswith("no default loss was among the candidates.")


def test_the_default_alone_at_the_top_and_rules_only():
    ranked = [
        _candidate(1, "cross_entropy", [0.9, 0.91, 0.92], 1, rule=DEFAULT),
        _candidate(2, "focal", [0.5, 0.52, 0.5], 2),
    ]
    assert verdict(ranked, "accuracy", True).startswith(
        "The default cross_entropy is best on accuracy, ahead of the next best, focal, by 0.40"
    )
    rules = [_candidate(1, "focal", None, 1, gamma=1.0)]
    assert verdict(rules, "accuracy", True).startswith(
        "Ranked by the rules alone (no trial fits): focal gamma=1"
    )


def test_a_recipe_keeps_the_default_label_apart():
    recipe = advisor.Recipe(kind="logit_adjustment", tau=1.0, class_priors=[0.5, 0.5])
    adjusted = _candidate(1, "cross_entropy", [0.9, 0.95, 0.92], 1, rule=DEFAULT).model_copy(
        update={"post_hoc": recipe}
    )
    plain = _candidate(2, "cross_entropy", [0.5, 0.55, 0.5], 2, rule=DEFAULT)
    text = verdict([adjusted, plain], "accuracy", True)
    assert text.startswith("cross_entropy + logit adjustment beats the default cross_entropy by")


def _trials(**fields) -> HeadEvidence:
    base = {"evidence": [], "stopped_by": "epochs", "epochs_completed": 30, "elapsed_s": 1.0, "train_rows": 100,
            "score_rows": 50, "repeats": 6, "member_epochs": 10, "cut_short": []}  # fmt: skip
    return HeadEvidence(**{**base, **fields})


@pytest.mark.parametrize(
    ("source", "trials", "expected"),
    [
        ("data", _trials(), []),
        ("synthetic", _trials(), ["Synthetic evidence"]),
        (
            "data",
            _trials(stopped_by="time", epochs_completed=4),
            ["The time cap bound: trials stopped after 4 of 30"],
        ),
        (
            "data",
            _trials(stopped_by="time", cut_short=["focal"]),
            ["The time cap bound: focal got fewer than the 6"],
        ),
        ("data", _trials(stopped_by="cancelled"), ["The trials were cancelled"]),
        ("rules", None, ["No trial fits ran"]),
    ],
)
def test_caveats_name_what_limits_the_evidence(source, trials, expected):
    found = caveats(source, trials, 30)
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True))


def test_a_fully_diverged_head_supports_no_loss():
    candidate = _candidate(1, "focal", [math.nan, math.nan], 1)
    candidate = candidate.model_copy(
        update={"evidence": candidate.evidence.model_copy(update={"mean": None})}
    )
    assert (
        verdict([candidate], "accuracy", True)
        == "Every candidate diverged on accuracy: this evidence supports no loss."
    )


def test_the_default_is_found_when_a_higher_prior_rule_proposed_the_same_loss():
    # segmentation-dice-ce-nnunet and the baseline rule propose the same Dice + CE: the deduplicated candidate
    # keeps the nnU-Net rule's id and credits the baseline.
    default = _candidate(2, "dice_ce", [0.40, 0.42, 0.41], 2, rule="segmentation-dice-ce-nnunet")
    default = default.model_copy(update={"also_proposed_by": ["segmentation-baseline-dice-ce"]})
    ranked = [_candidate(1, "tversky", [0.50, 0.53, 0.52], 1), default]
    text = verdict(ranked, "dice", True)
    assert text.startswith("tversky beats the default dice_ce by 0.1"), text
    credited = default.model_copy(update={"also_proposed_by": []})
    assert "no default loss" in verdict([ranked[0], credited], "dice", True)
