"""The rule engine: precise load errors for each kind of mistake, evaluation semantics, derivations,
user folders and overrides, determinism."""

from __future__ import annotations

import math
import textwrap

import pytest

import advisor
from advisor.rules import RuleLoadError, candidates, check_rules, load_rule_file, load_rules
from advisor.rules.derivations import DERIVATIONS, RuleContext
from advisor.rules.facts import facts_for
from advisor.task import parse_task

GOOD_RULE = """\
rules:
  - id: my-rule
    title: A user rule
    when:
      all:
        - {fact: head_type, eq: multiclass}
        - {fact: imbalance_ratio, ge: 3}
    recommend:
      loss: focal
      params:
        gamma: 1.0
        alpha: {derive: normalized_inverse_frequency}
      prior: 0.9
      rationale: A rule written by a user for their own data.
    references: [ours]
    examples:
      match:
        - head: {type: multiclass, class_histogram: [300, 100]}
          expect: {alpha: [0.25, 0.75]}
      no_match:
        - head: {type: multiclass, class_histogram: [100, 100]}
"""


def _write(tmp_path, text, name="rules.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _load_error(tmp_path, text) -> str:
    with pytest.raises(RuleLoadError) as caught:
        load_rule_file(_write(tmp_path, text))
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


def test_good_user_rule_loads_and_its_examples_pass(tmp_path):
    rules = load_rule_file(_write(tmp_path, GOOD_RULE))
    assert [r.id for r in rules] == ["my-rule"]
    assert rules[0].line == 2
    assert check_rules(advisor.rules.RuleSet(rules)) == []


@pytest.mark.parametrize(
    ("old", "new", "line", "fragment"),
    [
        (
            "{fact: imbalance_ratio, ge: 3}",
            "{fact: imbalance_ration, ge: 3}",
            7,
            "rule 'my-rule': when.all.1.fact: unknown fact 'imbalance_ration'; did you mean 'imbalance_ratio'",
        ),
        (
            "{fact: imbalance_ratio, ge: 3}",
            "{fact: long_tail, ge: 3}",
            7,
            "when.all.1.ge: operator 'ge' does not fit bool fact 'long_tail'; allowed: eq, ne, is_set",
        ),
        (
            "{fact: imbalance_ratio, ge: 3}",
            "{fact: imbalance_ratio, ge: 0.5}",
            7,
            "when.all.1.ge: 0.5 is not a possible value of fact 'imbalance_ratio'",
        ),
        (
            "{fact: head_type, eq: multiclass}",
            "{fact: head_type, eq: multiclas}",
            6,
            "'multiclas' is not a possible value of fact 'head_type'",
        ),
        (
            "{fact: head_type, eq: multiclass}",
            "{fact: head_type, equals: multiclass}",
            6,
            "unknown operator 'equals'",
        ),
        ("loss: focal", "loss: focall", 9, "recommend.loss: unknown loss 'focall'; did you mean 'focal'"),
        (
            "gamma: 1.0",
            "gama: 1.0",
            11,
            "recommend.params.gama: loss 'focal' has no parameter 'gama'; did you mean 'gamma'",
        ),
        ("gamma: 1.0", "gamma: -1.0", 11, "recommend.params.gamma: loss 'focal': got -1.0"),
        (
            "{derive: normalized_inverse_frequency}",
            "{derive: normalised_inverse_frequency}",
            12,
            "unknown derivation 'normalised_inverse_frequency'; did you mean 'normalized_inverse_frequency'",
        ),
        (
            "{derive: normalized_inverse_frequency}",
            "{derive: normalized_inverse_frequency, cap: 3}",
            12,
            "derivation 'normalized_inverse_frequency' takes no arguments, not ['cap']",
        ),
        ("prior: 0.9", "prior: 1.9", 13, "recommend.prior: Input should be less than or equal to 1"),
        ("    references: [ours]\n", "", 2, "references: Field required"),
    ],
)
def test_each_kind_of_mistake_is_reported_with_file_line_rule_and_path(tmp_path, old, new, line, fragment):
    assert old in GOOD_RULE
    message = _load_error(tmp_path, GOOD_RULE.replace(old, new))
    assert f"rules.yaml:{line}: " in message
    assert fragment in message


def test_invalid_yaml_and_wrong_top_level(tmp_path):
    assert "rules.yaml:3: invalid YAML" in _load_error(tmp_path, "rules:\n  - id: x\n   bad: [\n")
    assert "a rule file is a mapping with a 'rules:' list" in _load_error(tmp_path, "- id: x\n")


def test_repeated_id_in_a_file_and_across_user_folders(tmp_path):
    doubled = GOOD_RULE + GOOD_RULE.split("rules:\n", 1)[1]
    assert "repeats an id defined earlier" in _load_error(tmp_path, doubled)
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    _write(first, GOOD_RULE), _write(second, GOOD_RULE)
    with pytest.raises(RuleLoadError, match="already defined at"):
        load_rules([first, second], builtin=False)


def test_failing_examples_are_reported_precisely(tmp_path):
    wrong_expect = GOOD_RULE.replace("expect: {alpha: [0.25, 0.75]}", "expect: {alpha: [0.5, 0.5]}")
    problems = check_rules(advisor.rules.RuleSet(load_rule_file(_write(tmp_path, wrong_expect))))
    assert len(problems) == 1
    assert problems[0].field.endswith("rules.yaml:18")
    assert (
        "examples.match.0: parameter 'alpha' is [0.25, 0.75], expected [0.5, 0.5]" in problems[0].description
    )
    never = GOOD_RULE.replace("class_histogram: [100, 100]}", "class_histogram: [900, 100]}")
    problems = check_rules(advisor.rules.RuleSet(load_rule_file(_write(tmp_path, never))))
    assert "examples.no_match.0: the rule matched a task it must not match" in str(problems)
    invalid = GOOD_RULE.replace("class_histogram: [300, 100]}", "class_histogram: [300, -1]}")
    problems = check_rules(advisor.rules.RuleSet(load_rule_file(_write(tmp_path, invalid))))
    assert "invalid example" in str(problems) and "class_histogram.1" in str(problems)


def test_derived_parameters_need_an_expect(tmp_path):
    text = GOOD_RULE.replace("          expect: {alpha: [0.25, 0.75]}\n", "")
    assert "a rule with derived parameters needs an example with 'expect'" in _load_error(tmp_path, text)


def test_user_rule_overrides_builtin_visibly(tmp_path, monkeypatch):
    builtin = load_rules()
    target_id = builtin.rules[0].id
    _write(tmp_path, GOOD_RULE.replace("my-rule", target_id))
    monkeypatch.setenv(advisor.rules.RULES_ENV, str(tmp_path))
    merged = load_rules()
    assert [o.rule_id for o in merged.overrides] == [target_id]
    replaced = next(r for r in merged.rules if r.id == target_id)
    assert not replaced.builtin and replaced.model.recommend.loss == "focal"
    assert len(merged.rules) == len(builtin.rules)


def test_user_folder_rules_propose_candidates(tmp_path):
    _write(tmp_path, GOOD_RULE)
    task = {"heads": [{"type": "multiclass", "class_histogram": [300, 100]}]}
    found = candidates(task, rule_dirs=[tmp_path])
    mine = [c for c in found if c.rule_id == "my-rule"]
    assert len(mine) == 1 and mine[0].spec.params["alpha"] == [0.25, 0.75] and mine[0].prior == 0.9
    assert "my-rule" not in {c.rule_id for c in candidates(task)}


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RuleLoadError, match="no such rule folder"):
        load_rules([tmp_path / "nope"])


def _context(head: dict, **task) -> RuleContext:
    description = parse_task({"heads": [{"name": "y", **head}], **task})
    return RuleContext(description, description.heads[0], facts_for(description, description.heads[0]))


def test_condition_on_an_unstated_fact_is_false_except_is_set_false(tmp_path):
    text = GOOD_RULE.replace("{fact: imbalance_ratio, ge: 3}", "{fact: outlier_fraction, lt: 0.5}")
    rule = load_rule_file(_write(tmp_path, text))[0]
    assert not rule.predicate(_context({"type": "multiclass", "num_classes": 3}).facts)
    unset = GOOD_RULE.replace("{fact: imbalance_ratio, ge: 3}", "{fact: outlier_fraction, is_set: false}")
    rule = load_rule_file(_write(tmp_path, unset, "unset.yaml"))[0]
    assert rule.predicate(_context({"type": "multiclass", "num_classes": 3}).facts)


# Derivations, each against its formula computed here by hand.


def test_inverse_frequency_and_effective_number_weights_with_zero_counts():
    ctx = _context({"type": "multiclass", "class_histogram": [900, 100, 0]})
    weights = DERIVATIONS["inverse_frequency_weights"](ctx)
    assert weights == pytest.approx([1000 / 2700, 1000 / 300, 1000 / 3], rel=1e-5)  # zero count treated as 1
    beta = 0.99
    raw = [(1 - beta) / (1 - beta**n) for n in (900, 100, 1)]
    expected = [w * 3 / sum(raw) for w in raw]
    assert DERIVATIONS["effective_number_weights"](ctx, beta=beta) == pytest.approx(expected, rel=1e-5)
    assert all(math.isfinite(w) for w in DERIVATIONS["normalized_inverse_frequency"](ctx))


def test_pos_weight_binary_and_multilabel_capped():
    assert DERIVATIONS["pos_weight"](_context({"type": "binary", "class_histogram": [950, 50]})) == [19.0]
    ctx = _context({"type": "multilabel", "positive_rates": [0.5, 0.2, 0.0]})
    assert DERIVATIONS["pos_weight"](ctx, cap=50.0) == [1.0, 4.0, 50.0]


def test_class_balanced_beta_and_logit_adjustment_counts():
    ctx = _context({"type": "multiclass", "class_histogram": [5000, 50, 5]})
    assert DERIVATIONS["class_balanced_beta"](ctx) == pytest.approx(1 - 1 / 5000)
    assert DERIVATIONS["class_counts"](ctx) == [5000, 50, 5]
    small = _context({"type": "multiclass", "class_histogram": [5, 3]})
    assert DERIVATIONS["class_balanced_beta"](small) == 0.9  # clipped from 0.8


def test_huber_delta_from_robust_scale_or_variance():
    ctx = _context({"type": "regression", "target": {"robust_scale": 2.0, "variance": 100.0}})
    assert DERIVATIONS["huber_delta"](ctx) == pytest.approx(1.345 * 2.0)
    ctx = _context({"type": "regression", "target": {"variance": 4.0}})
    assert DERIVATIONS["huber_delta"](ctx) == pytest.approx(1.345 * 2.0)


def test_tweedie_power_and_stft_resolutions():
    ctx = _context({"type": "count", "target": {"mean": 2.0, "variance": 2.0}})
    assert DERIVATIONS["tweedie_power"](ctx) == 1.1
    ctx = _context({"type": "count", "target": {"mean": 1.0, "variance": 100.0}})
    assert DERIVATIONS["tweedie_power"](ctx) == 1.9  # 1 + log10(100)/2 + 0.1 = 2.1, clipped
    audio = _context({"type": "audio", "sample_rate": 48_000})
    assert DERIVATIONS["stft_fft_sizes"](audio) == [2048, 4096, 1024]
    assert DERIVATIONS["stft_hop_sizes"](audio) == [240, 480, 100]
    assert DERIVATIONS["stft_win_lengths"](audio) == [1200, 2400, 480]


def test_tweedie_power_prefers_the_stated_power_then_the_metric_then_the_dispersion():
    derive = DERIVATIONS["tweedie_power"]
    # No dispersion (a regression head): 1.5.
    assert derive(_context({"type": "regression", "target": {"minimum": 0.0, "zero_share": 0.3}})) == 1.5
    # A stated power is used as it is, also over the dispersion (D = 5 would give 1.45) ...
    stated = _context({"type": "count", "tweedie_power": 1.37, "target": {"mean": 2.0, "variance": 10.0}})
    assert derive(stated) == 1.37
    # ... but clipped into the loss's range (1 < p < 2) as [1.1, 1.9].
    assert derive(_context({"type": "regression", "tweedie_power": 1.0})) == 1.1
    assert derive(_context({"type": "regression", "tweedie_power": 2.0})) == 1.9
    # The gamma deviance's p = 2, clipped.
    assert derive(_context({"type": "regression", "metric": "gamma_deviance"})) == 1.9
    # from_dispersion=False ignores the dispersion: 1.5 for D = 5.
    over = _context({"type": "count", "target": {"mean": 2.0, "variance": 10.0}})
    assert derive(over) == round(1 + math.log10(5.0) / 2 + 0.1, 2)
    assert derive(over, from_dispersion=False) == 1.5


@pytest.mark.parametrize(
    ("head", "kind", "ranking"),
    [
        ({"type": "binary", "metric": "balanced_accuracy"}, "class_balanced", False),
        ({"type": "multiclass", "num_classes": 3, "metric": "macro_f1"}, "class_balanced", False),
        ({"type": "multiclass", "num_classes": 3, "metric": "accuracy"}, "thresholded", False),
        ({"type": "binary", "metric": "average_precision"}, "threshold_free", True),
        ({"type": "binary", "metric": "roc_auc"}, "threshold_free", True),
        ({"type": "binary", "metric": "log_loss"}, "threshold_free", False),
        ({"type": "binary", "metric": "brier"}, "threshold_free", False),
        ({"type": "multilabel", "num_classes": 3, "metric": "map"}, "threshold_free", True),
        ({"type": "regression", "metric": "poisson_deviance"}, "deviance", False),
        ({"type": "regression", "metric": "tweedie_deviance"}, "deviance", False),
        ({"type": "regression", "metric": "gamma_deviance"}, "deviance", False),
        ({"type": "count"}, "deviance", False),  # poisson_deviance is the count default
        ({"type": "regression"}, "other", False),  # rmse
        ({"type": "segmentation", "num_classes": 2, "metric": "iou"}, "other", False),
    ],
)
def test_metric_kind_and_ranking_metric_facts(head, kind, ranking):
    facts = _context(head).facts
    assert (facts.metric_kind, facts.ranking_metric) == (kind, ranking)


def test_every_metric_has_a_kind_and_the_kinds_are_rule_choices(tmp_path):
    from advisor.heads import METRIC_KIND_CHOICES, METRICS_BY_HEAD, metric_kind

    for metrics in METRICS_BY_HEAD.values():
        for metric in metrics:
            assert metric_kind(metric) in METRIC_KIND_CHOICES
    text = GOOD_RULE.replace("{fact: imbalance_ratio, ge: 3}", "{fact: metric_kind, eq: class_balance}")
    assert "did you mean 'class_balanced'" in _load_error(tmp_path, text)


def test_label_smoothing_from_noise_rate_is_clipped():
    ctx = _context({"type": "multiclass", "num_classes": 3, "label_noise": {"rate": 0.02}})
    assert DERIVATIONS["noise_label_smoothing"](ctx) == 0.05
    ctx = _context({"type": "multiclass", "num_classes": 3, "label_noise": {"rate": 0.4}})
    assert DERIVATIONS["noise_label_smoothing"](ctx, high=0.2) == 0.2


def test_candidates_are_deterministic_and_deduplicated():
    task = {"heads": [{"type": "multiclass", "class_histogram": [600, 100, 100]}], "n_samples": 800}
    first, second = candidates(task), candidates(task)
    assert first == second
    keys = [c.key() for c in first]
    assert len(keys) == len(set(keys))
    priors = [c.prior for c in first if c.head == "target"]
    assert priors == sorted(priors, reverse=True)


def test_multi_head_task_gets_multi_task_candidates():
    task = {
        "heads": [
            {"name": "label", "type": "multiclass", "class_histogram": [100, 100, 100]},
            {"name": "price", "type": "regression", "target": {"mean": 1.0, "variance": 1.0}},
        ]
    }
    found = [c for c in candidates(task) if c.head == "*"]
    assert {c.spec.params["weighting"]["scheme"] for c in found} == {"static", "uncertainty"}
    for c in found:
        assert set(c.spec.params["heads"]) == {"label", "price"}
        advisor.build_loss(c.spec)  # a ready module
