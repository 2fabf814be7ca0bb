"""Issue 11 at the Python boundary: declared limits, non-finite numbers, deep nesting, long echoes, infinite
feature cells and data without features each give a precise error of ours (or a note), never a crash."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import advisor
from advisor.core import OptionsError, recommend
from advisor.errors import MAX_DESCRIPTION, AdvisorError
from advisor.profiling import ProfileError
from advisor.rules import derivations
from advisor.spec import MAX_JSON_DEPTH
from advisor.task import MAX_CLASSES, MAX_SAMPLE_RATE, TaskError, parse_task
from advisor.trials.protocols import MAX_TRIAL_CLASSES


def _violation(error: type[AdvisorError], call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(error) as caught:
        call(*args, **kwargs)
    assert isinstance(caught.value, ValueError)
    violation = caught.value.violations[0]
    return violation.field, violation.description


def _head(**head) -> dict:
    return {"heads": [{"name": "y", **head}]}


@pytest.mark.parametrize(
    ("head", "field", "limit"),
    [
        ({"type": "multiclass", "num_classes": 2**31 - 1}, "heads.0.num_classes", MAX_CLASSES),
        ({"type": "multiclass", "class_histogram": [3] * (MAX_CLASSES + 1)}, "heads.0.class_histogram", MAX_CLASSES),
        ({"type": "audio", "sample_rate": 2**31 - 1}, "heads.0.sample_rate", MAX_SAMPLE_RATE),
        ({"type": "multilabel", "positive_rates": [0.1] * (MAX_CLASSES + 1)}, "heads.0.positive_rates", MAX_CLASSES),
    ],
)  # fmt: skip
def test_sizes_a_client_chooses_are_bounded_and_the_error_names_the_limit(head, field, limit):
    got_field, message = _violation(TaskError, parse_task, _head(**head))
    assert got_field == field and str(limit) in message.replace(",", "")


def test_too_many_heads_are_refused():
    heads = [{"name": f"h{i}", "type": "binary"} for i in range(65)]
    field, message = _violation(TaskError, parse_task, {"heads": heads})
    assert field == "heads" and "64" in message


@pytest.mark.parametrize("text", ['{"mean": NaN}', '{"mean": Infinity}', '{"variance": -Infinity}'])
def test_non_finite_numbers_in_a_task_description_are_refused(text):
    task = '{"heads": [{"name": "y", "type": "regression", "target": ' + text + "}]}"
    field, message = _violation(TaskError, parse_task, task)
    assert field == "task" and "non-finite" in message
    as_python = _head(type="regression", target={"mean": math.inf})
    field, message = _violation(TaskError, parse_task, as_python)
    assert field == "heads.0.target.mean" and "finite" in message


def test_trials_refuse_more_classes_than_they_train_and_rules_alone_accept_them():
    task = _head(type="multiclass", class_histogram=list(range(1, MAX_TRIAL_CLASSES + 2)))
    field, message = _violation(TaskError, recommend, task, epochs=2)
    assert field == "heads.0.num_classes" and "1,000" in message and "trials=false" in message
    ranked = recommend(task, trials=False).heads[0].candidates
    assert ranked


def test_class_weight_derivations_stay_exact_at_the_class_limit():
    """Each weight is n-independent arithmetic (the sums are taken once; they were once per class)."""
    counts = list(range(1, MAX_CLASSES + 1))
    result = recommend(_head(type="multiclass", class_histogram=counts), trials=False)
    assert len(result.heads[0].candidates) > 1
    head = parse_task(_head(type="multiclass", class_histogram=counts)).heads[0]

    class Context:  # what a derivation reads
        pass

    ctx = Context()
    ctx.head = head
    alpha = derivations.normalized_inverse_frequency(ctx)
    inverse = [1.0 / n for n in counts]
    assert alpha[0] == pytest.approx(inverse[0] / sum(inverse), rel=1e-5)
    assert sum(alpha) == pytest.approx(1.0, rel=1e-4)
    weights = derivations.effective_number_weights(ctx, beta=0.999)
    raw = [(1 - 0.999) / (1 - 0.999**n) for n in counts]
    assert weights[-1] == pytest.approx(raw[-1] * len(raw) / sum(raw), rel=1e-5)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ('{"loss": "focal", "params": {"gamma": Infinity}}', "spec"),
        ('{"loss": "huber", "params": {"delta": NaN}}', "spec"),
        ({"loss": "focal", "params": {"gamma": math.inf}}, "params.gamma"),
        ({"loss": "focal", "params": {"alpha": [0.5, math.nan]}}, "params.alpha.1"),
        ({"loss": "cross_entropy", "params": {"weight": [1.0, math.inf]}}, "params.weight.1"),
        ({"loss": "cross_entropy", "params": {"ignore_index": 2**80}}, "params.ignore_index"),
    ],
)
def test_specs_with_non_finite_or_out_of_range_numbers_are_refused(spec, field):
    got_field, message = _violation(advisor.SpecError, advisor.normalize_spec, spec)
    assert got_field == field
    assert "finite" in message or "9223372036854775807" in message


def test_deeply_nested_json_is_refused_not_a_recursion_error():
    for depth in (MAX_JSON_DEPTH + 1, 5_000, 200_000):
        text = "[" * depth + "]" * depth
        field, message = _violation(advisor.SpecError, advisor.normalize_spec, text)
        assert field == "spec" and "nested deeper" in message
        field, message = _violation(TaskError, parse_task, '{"heads": ' + text + "}")
        assert field == "task" and "nested deeper" in message
    nested: dict = {}
    for _ in range(5_000):
        nested = {"inner": nested}
    field, _ = _violation(advisor.SpecError, advisor.normalize_spec, {"loss": "mse", "params": nested})
    assert field == "spec"


def test_long_echoed_values_are_shortened_in_every_message():
    field, message = _violation(OptionsError, recommend, _head(type="binary"), device="x" * 100_000)
    assert field == "device" and len(message) <= MAX_DESCRIPTION and message.endswith("...")


def _informative(rows: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=rows)
    return pd.DataFrame({"signal": x, "noise": rng.normal(size=rows), "y": (x > 0).astype(int)})


def test_an_infinite_feature_cell_is_treated_as_missing_with_a_note_and_the_evidence_holds():
    frame = _informative()
    frame.loc[5, "signal"] = np.inf
    frame.loc[9, "signal"] = -np.inf
    result = recommend(frame, target="y", epochs=8, repeats=2, metric="roc_auc")
    assert any("'signal'" in note and "infinite" in note for note in result.notes)
    # With the cell read as +-inf the standardised column became NaN and the AUC fell to chance (0.45).
    assert result.heads[0].candidates[0].evidence.mean > 0.95


def test_data_without_a_usable_feature_is_a_clear_error_and_rules_alone_still_answer():
    frame = pd.DataFrame({"constant": 1, "y": np.arange(400) % 2})
    field, message = _violation(ProfileError, recommend, frame, target="y", epochs=2, repeats=2)
    assert field == "data" and "no usable feature" in message and "trials=False" in message
    assert recommend(frame, target="y", trials=False).heads[0].candidates


def test_the_json_reader_refuses_non_finite_literals_everywhere_it_reads():
    with pytest.raises(TaskError):
        parse_task(json.dumps(_head(type="regression", target={"mean": float("nan")})))


def _csv_bytes(separator: str = ",", encoding: str = "utf-8") -> bytes:
    frame = _informative(300)
    frame["city"] = np.where(frame["noise"] > 0, "Zürich", "Genève")
    return frame.to_csv(index=False, sep=separator).encode(encoding)


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"PK\x03\x04\x14\x00", "Excel workbook (.xlsx)"), (b"\xd0\xcf\x11\xe0\xa1\xb1", "legacy Excel"),
     (b"PAR1\x15\x04", "Parquet"), (b"a,b\n1,\x00\x002\n", "NUL bytes")],
)  # fmt: skip
def test_a_binary_file_named_csv_names_its_format_and_what_to_do(tmp_path, head, kind):
    path = tmp_path / "data.csv"
    path.write_bytes(head + bytes(range(256)) * 4)
    field, message = _violation(ProfileError, recommend, str(path), target="y", trials=False)
    assert field == "data" and kind in message and ("not CSV text" in message or "binary" in message)


def test_one_csv_reader_for_paths_and_bytes_semicolons_and_latin_1_included(tmp_path):
    import io

    for separator, encoding in ((";", "latin-1"), (",", "utf-8"), ("\t", "latin-1")):
        raw = _csv_bytes(separator, encoding)
        path = tmp_path / "data.csv"
        path.write_bytes(raw)
        from_path = recommend(str(path), target="y", trials=False)
        from_bytes = recommend(io.BytesIO(raw), target="y", trials=False)
        # signal, noise and the two cities one-hot: the accents survive (or are replaced) the same way
        assert from_path.task == from_bytes.task and from_path.task.n_features == 4


@pytest.mark.parametrize("option", ["repeats", "epochs", "max_rows", "budget_s"])
def test_a_bool_is_not_taken_as_a_number(option):
    field, message = _violation(OptionsError, recommend, _head(type="binary"), trials=False, **{option: True})
    assert field == option and "True" in message


# Rule files (finding 7).

RULE = """\
rules:
  - id: my-rule
    title: A rule
    status: stable
    when: {fact: head_type, eq: binary}
    recommend:
      loss: bce
      params: {pos_weight: {derive: pos_weight, cap: CAP}}
      prior: 0.5
      rationale: Rare positives get the weight of the negatives they are outnumbered by.
    references: ["Any reference, 2024"]
    examples:
      match:
        - head: {type: binary, class_histogram: [90, 10]}
          expect: {pos_weight: [9.0]}
      no_match:
        - head: {type: multiclass, class_histogram: [90, 10, 5]}
"""


def _rule_error(path) -> str:
    from advisor.rules.loader import RuleLoadError, load_rules

    with pytest.raises(RuleLoadError) as caught:
        load_rules([path.parent], builtin=False)
    assert isinstance(caught.value, ValueError) and len(str(caught.value)) < 2_000
    return str(caught.value)


def test_a_yaml_alias_bomb_is_refused_with_a_short_message(tmp_path):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    bomb = "\n".join(levels) + "\nrules:\n  - id: bomb\n    when: *a8\n"
    (tmp_path / "bomb.yaml").write_text(bomb)
    assert "alias" in _rule_error(tmp_path / "bomb.yaml")


def test_an_oversized_rule_file_is_refused_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (2 * 1024 * 1024) + "\nrules: []\n")
    message = _rule_error(path)
    assert "big.yaml:1" in message and "at most" in message


def test_a_symlink_loop_and_a_non_utf8_rule_file_are_named(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(tmp_path / "loop.yaml")
    assert "loop.yaml" in _rule_error(loop) and "symbolic links" in _rule_error(loop)
    loop.unlink()
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(RULE.replace("CAP", "100").replace("A rule", "Réglé").encode("latin-1"))
    message = _rule_error(latin)
    assert "latin.yaml:1" in message and "UTF-8" in message


@pytest.mark.parametrize("cap", ['"abc"', "true", "[1, 2]", ".inf"])
def test_a_derivation_argument_of_the_wrong_type_fails_at_load_with_its_line(tmp_path, cap):
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.replace("CAP", cap))
    message = _rule_error(path)
    assert "rules.yaml:8" in message and "argument 'cap'" in message and "a finite number" in message
    path.write_text(RULE.replace("CAP", "100"))
    from advisor.rules.loader import load_rules

    assert [rule.id for rule in load_rules([tmp_path], builtin=False).rules] == ["my-rule"]
