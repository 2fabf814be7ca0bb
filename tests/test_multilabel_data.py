"""Multilabel targets from one delimited label column ("cat|dog"), and label cardinality: profiled from small
CSVs written here, checked against values computed by hand or with numpy, then through recommend(), the CLI
and the gRPC service."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import advisor
import advisor.profiling as profile_module
from advisor.cache import cache_key
from advisor.cli import app
from advisor.client import AdvisorClient, DataError
from advisor.profiling import ProfileError, profile, profile_data
from advisor.rules import facts_for
from advisor.service.npz import pack
from advisor.task import TaskError, parse_task
from lossadvisor.v1 import advisor_pb2 as pb
from tests.service_helpers import ServerProcess, rpc_error

LABELS = ["bird", "cat", "dog"]  # sorted, as the profiler orders the labels of a delimited column
RATES = [0.5, 0.3, 0.1]


def _label_matrix(rows: int, seed: int) -> np.ndarray:
    """(rows, 3) 0/1 labels with the positive rates RATES, some rows without any label."""
    return (np.random.default_rng(seed).random((rows, len(LABELS))) < RATES).astype(int)


def _joined(labels: np.ndarray, separator: str) -> list[str]:
    """Each row's labels joined by ``separator``; "" for a row without labels (an empty CSV cell)."""
    return [separator.join(name for name, on in zip(LABELS, row, strict=True) if on) for row in labels]


def _expected(labels: np.ndarray) -> dict:
    """Positive rates, cardinality and share of rows without a label, computed from the 0/1 matrix."""
    return {
        "positive_rates": labels.mean(axis=0).tolist(),
        "label_cardinality": float(labels.sum(axis=1).mean()),
        "no_label_share": float((labels.sum(axis=1) == 0).mean()),
    }


def _write_pair(
    folder: Path, rows: int = 300, seed: int = 0, separator: str = "|"
) -> tuple[Path, Path, np.ndarray]:
    """The same labels as one delimited column ``tags`` and as three 0/1 columns, with two features."""
    labels = _label_matrix(rows, seed)
    features = np.random.default_rng(seed + 1).normal(size=(rows, 2)) + labels[:, :2]
    delimited, columns = folder / "delimited.csv", folder / "columns.csv"
    frame = pd.DataFrame(features, columns=["u", "v"])
    frame.assign(tags=_joined(labels, separator)).to_csv(delimited, index=False)
    frame.assign(**{name: labels[:, i] for i, name in enumerate(LABELS)}).to_csv(columns, index=False)
    return delimited, columns, labels


def _head_summary(head) -> dict:
    return {
        "type": head.type,
        "num_classes": head.num_classes,
        "class_labels": head.class_labels,
        "positive_rates": head.positive_rates,
        "label_cardinality": head.label_cardinality,
        "no_label_share": head.no_label_share,
    }


# ---------------------------------------------------------------------------------------------- profiling


@pytest.mark.parametrize("separator", ["|", ";", ", "])
def test_a_delimited_column_gives_the_head_of_the_equivalent_zero_one_columns(tmp_path, separator):
    delimited, columns, labels = _write_pair(tmp_path, separator=separator)
    task = profile(delimited, target="tags")  # inferred and sniffed: no option given
    (head,) = task.heads
    from_columns = profile(columns, target=LABELS).heads[0]
    assert head.name == "tags" and from_columns.name == "bird+cat+dog"
    assert _head_summary(head) == _head_summary(from_columns)  # the same counts over the same rows
    expected = _expected(labels)
    assert head.class_labels == LABELS and head.num_classes == 3
    assert head.positive_rates == pytest.approx(expected["positive_rates"])
    assert head.label_cardinality == pytest.approx(expected["label_cardinality"])
    assert head.no_label_share == pytest.approx(expected["no_label_share"])
    # Every row counts, those with an empty cell (no label) too, and no row is reported dropped.
    assert task.n_samples == len(labels) and task.n_features == 2
    assert not any(note.startswith("Dropped") for note in task.notes)
    assert any(
        "label sets, one multilabel head 'tags'" in note and "task='multiclass'" in note
        for note in task.notes
    )
    # The explicit separator gives the same head.
    assert profile(delimited, target="tags", label_separator=separator.strip()).heads[0] == head
    # Trial targets: the (n, L) 0/1 matrix the 0/1 columns give, row for row.
    encoded = profile_data(delimited, target="tags").targets["tags"]
    assert encoded.shape == labels.shape and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, profile_data(columns, target=LABELS).targets["bird+cat+dog"])
    np.testing.assert_array_equal(encoded, labels)


def test_the_sniffed_separator_is_the_one_most_values_hold_and_an_explicit_one_wins():
    # '|' is in 4 values, ';' in 1 (inside a label's name): '|' splits, and "x;y" is one label.
    tags = ["a|b", "a|c", "b|c", "a|b|c", "x;y", "a", "b", "c"] * 5
    frame = pd.DataFrame({"f": np.arange(len(tags), dtype=float), "tags": tags})
    head = profile(frame, target="tags", task="multilabel").heads[0]
    assert head.class_labels == ["a", "b", "c", "x;y"]
    assert head.positive_rates == pytest.approx([4 / 8, 4 / 8, 4 / 8, 1 / 8])  # a is in a|b, a|c, a|b|c, a
    assert head.label_cardinality == pytest.approx((2 + 2 + 2 + 3 + 1 + 1 + 1 + 1) / 8)
    # A separator that is not a candidate: without it the column is classes, with it label sets.
    slashed = frame.assign(tags=[value.replace("|", "/") for value in tags])
    assert profile(slashed, target="tags").heads[0].type == "multiclass"
    split = profile(slashed, target="tags", label_separator="/")
    assert split.heads[0].class_labels == ["a", "b", "c", "x;y"]
    assert "Target 'tags': label_separator='/' was given" in split.notes[0]
    # Explicit ';' splits only "x;y"; "a|b" is then one label of its own.
    semicolon = profile(frame, target="tags", label_separator=";").heads[0]
    assert semicolon.class_labels == ["a", "a|b", "a|b|c", "a|c", "b", "b|c", "c", "x", "y"]


def test_blank_and_missing_values_are_rows_without_labels():
    # Blank, spaces around the separator, an empty part, a repeated label, a missing value.
    tags = ["cat", "", "cat | dog", " | ", "dog||dog", None, "bird|cat", "dog"]
    frame = pd.DataFrame({"f": np.linspace(0, 1, len(tags)), "tags": tags})
    task = profile(frame, target="tags", task="multilabel")
    head = task.heads[0]
    # By hand: bird 1 row, cat 3, dog 3; labels per row 1,0,2,0,1,0,2,1 (8 rows, 3 without a label).
    assert head.class_labels == ["bird", "cat", "dog"]
    assert head.positive_rates == pytest.approx([1 / 8, 3 / 8, 3 / 8])
    assert head.label_cardinality == pytest.approx(7 / 8)
    assert head.no_label_share == pytest.approx(3 / 8)
    assert task.n_samples == 8
    targets = profile_data(frame, target="tags", task="multilabel").targets["tags"]
    np.testing.assert_array_equal(targets.sum(axis=1), [1, 0, 2, 0, 1, 0, 2, 1])


def test_city_state_values_stay_classes_unless_forced():
    cities = ["New York, NY", "Buffalo, NY", "Austin, TX", "Dallas, TX", "Houston, TX", "Portland, OR"]
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"f": rng.normal(size=240), "city": rng.choice(cities, 240)})
    task = profile(frame, target="city")
    assert (task.heads[0].type, task.heads[0].num_classes) == ("multiclass", 6)
    hint = next(note for note in task.notes if "hold ','" in note)
    assert "9 distinct parts for 6 distinct values, not fewer" in hint and "task='multilabel'" in hint
    # A separator in few values does not make label sets either.
    rare = frame.assign(city=["a, b" if i % 20 == 0 else cities[i % 3].split(",")[0] for i in range(240)])
    assert profile(rare, target="city").heads[0].type == "multiclass"
    forced = profile(frame, target="city", task="multilabel").heads[0]
    assert forced.type == "multilabel"
    assert forced.class_labels == sorted({part.strip() for city in cities for part in city.split(",")})
    assert forced.label_cardinality == pytest.approx(2.0) and forced.no_label_share == 0.0


def _violations(call) -> dict[str, str]:
    with pytest.raises(ProfileError) as caught:
        call()
    return {v.field: v.description for v in caught.value.violations}


def test_too_many_labels_and_bad_separators_are_refused_naming_the_field():
    rows = 402
    tags = [f"label{i % 201}|label{(i + 1) % 201}" for i in range(rows)]  # 201 labels in 201 distinct pairs
    frame = pd.DataFrame({"f": np.arange(rows, dtype=float), "tags": tags})
    found = _violations(lambda: profile(frame, target="tags", task="multilabel"))
    assert list(found) == ["target"]
    assert "holds 201 distinct labels" in found["target"] and "at most 200" in found["target"]
    assert "label_separator" in _violations(lambda: profile(frame, target="tags", label_separator="|"))
    for bad in ("", "x" * 9, 3):
        message = _violations(lambda bad=bad: profile(frame, target="tags", label_separator=bad))[
            "label_separator"
        ]
        assert f"got {bad!r}" in message and "1 to 8 characters" in message
    excluded = _violations(lambda: profile(frame, target="tags", label_separator="|", task="multiclass"))
    assert "excludes task='multiclass'" in excluded["label_separator"]
    several = frame.assign(other=["a|b"] * rows)
    assert (
        "2 targets were given"
        in _violations(lambda: profile(several, target=["tags", "other"], label_separator="|"))[
            "label_separator"
        ]
    )
    one_label = frame.assign(tags=["a", ""] * (rows // 2))
    assert (
        "only the label 'a'"
        in _violations(lambda: profile(one_label, target="tags", task="multilabel"))["target"]
    )
    numbers = frame.assign(tags=np.arange(rows) % 3)
    assert (
        "holds numbers"
        in _violations(lambda: profile(numbers, target="tags", label_separator="|"))["label_separator"]
    )
    images = (np.zeros((4, 8, 8), np.uint8), np.zeros((4, 8, 8), np.uint8))
    assert "not a table" in _violations(lambda: profile(images, label_separator="|"))["label_separator"]


def test_label_counts_are_exact_across_csv_chunks_and_the_sample_keeps_unlabelled_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_module, "CHUNK_CELLS", 1)  # 1,000-row chunks: the stream crosses six
    delimited, columns, _ = _write_pair(tmp_path, rows=5_500, seed=9)
    task = profile(delimited, target="tags", max_rows=400)
    head = task.heads[0]
    # Independent of the profiler: pandas alone, the file read whole ("" for an empty cell, which get_dummies
    # makes a column of its own).
    written = pd.read_csv(delimited, keep_default_na=False)["tags"]
    by_pandas = written.str.get_dummies(sep="|").drop(columns="")
    assert head.class_labels == sorted(by_pandas.columns) == LABELS
    assert head.positive_rates == pytest.approx(by_pandas.mean().tolist(), rel=1e-12)
    assert head.label_cardinality == pytest.approx(by_pandas.sum(axis=1).mean(), rel=1e-12)
    assert head.no_label_share == pytest.approx((written == "").mean(), rel=1e-12)
    assert _head_summary(profile(columns, target=LABELS, max_rows=400).heads[0]) == _head_summary(head)
    assert task.n_samples == 5_500
    assert (
        "Profiled a uniform sample of 400 of 5,500 rows; class counts and target moments use all rows."
        in task.notes
    )
    # The trial sample is drawn from every row: rows without a label (missing cells) are in it at their share.
    sample = profile_data(delimited, target="tags", max_rows=400).targets["tags"]
    assert sample.shape == (400, 3)
    unlabelled = float((sample.sum(axis=1) == 0).mean())
    assert abs(unlabelled - head.no_label_share) < 0.08
    assert profile(delimited, target="tags", max_rows=400) == task  # deterministic for a random_state


# ---------------------------------------------------------------------------------------------- task, rules, cache


def test_cardinality_is_a_head_field_and_a_rule_fact():
    described = parse_task(
        {
            "heads": [
                {
                    "type": "multilabel",
                    "positive_rates": [0.5, 0.25],
                    "label_cardinality": 0.75,
                    "no_label_share": 0.4,
                }
            ]
        }
    )
    facts = facts_for(described, described.heads[0])
    assert (facts.label_cardinality, facts.no_label_share) == (0.75, 0.4)
    rates_only = parse_task({"heads": [{"type": "multilabel", "positive_rates": [0.5, 0.25]}]})
    assert facts_for(rates_only, rates_only.heads[0]).label_cardinality == 0.75  # the sum of the rates
    for head, words in (
        ({"positive_rates": [0.5, 0.25], "label_cardinality": 3.0}, "exceeds num_classes 2"),
        ({"positive_rates": [0.5, 0.25], "label_cardinality": 1.5}, "disagrees with the sum 0.75"),
        ({"positive_rates": [0.5, 0.25], "no_label_share": 0.6}, "no_label_share 0.6 exceeds"),
        ({"num_classes": 3, "label_cardinality": -1.0}, "greater than or equal to 0"),
    ):
        with pytest.raises(TaskError, match=words):
            parse_task({"heads": [{"type": "multilabel", **head}]})
    with pytest.raises(TaskError) as caught:
        parse_task({"heads": [{"type": "binary", "label_cardinality": 1.0}]})
    assert caught.value.violations[0].field == "heads.0.label_cardinality"


def test_the_cache_key_includes_the_separator(tmp_path):
    delimited, _, _ = _write_pair(tmp_path, rows=50)
    keys = {
        cache_key(delimited, {"target": "tags", "label_separator": separator}, description=False)
        for separator in (None, "|", ";")
    }
    assert len(keys) == 3 and None not in keys


# ---------------------------------------------------------------------------------------------- the faces


def test_recommend_with_trials_on_a_delimited_csv_uses_the_data(tmp_path):
    delimited, _, _ = _write_pair(tmp_path, rows=160, seed=4)
    result = advisor.recommend(
        delimited, target="tags", label_separator="|", trials=True, epochs=2, repeats=2, cache=False
    )
    (head,) = result.heads
    assert head.type == "multilabel" and head.head == "tags" and head.evidence_source == "data"
    assert result.task.heads[0].class_labels == LABELS
    assert result.task.heads[0].label_cardinality is not None
    with pytest.raises(advisor.AdvisorError, match="label_separator"):
        advisor.recommend({"heads": [{"type": "multilabel", "num_classes": 2}]}, label_separator="|")


def test_cli_profile_and_recommend_take_the_label_separator(tmp_path):
    delimited, _, labels = _write_pair(tmp_path, rows=120, separator="/")
    runner = CliRunner()
    listed = runner.invoke(
        app, ["profile", str(delimited), "--target", "tags", "--label-separator", "/", "--json"]
    )
    assert listed.exit_code == 0, listed.output
    head = json.loads(listed.output)["heads"][0]
    assert (head["type"], head["class_labels"]) == ("multilabel", LABELS)
    assert head["label_cardinality"] == pytest.approx(_expected(labels)["label_cardinality"])
    shown = runner.invoke(app, ["profile", str(delimited), "--target", "tags", "--label-separator", "/"])
    printed = " ".join(shown.output.split())  # the table and the notes wrap at the terminal width
    assert shown.exit_code == 0 and '"label_cardinality":' in printed and "per row on average" in printed
    ranked = runner.invoke(
        app,
        ["recommend", str(delimited), "--target", "tags", "--label-separator", "/", "--no-trials", "--json"],
    )
    assert ranked.exit_code == 0, ranked.output
    assert json.loads(ranked.output)["heads"][0]["type"] == "multilabel"
    refused = runner.invoke(app, ["profile", str(delimited), "--target", "tags", "--label-separator", ""])
    assert isinstance(refused.exception, ProfileError)
    assert [v.field for v in refused.exception.violations] == ["label_separator"]


@pytest.fixture(scope="module")
def server():
    process = ServerProcess("--workers", "1")
    yield process
    assert process.stop() == 0


def test_grpc_round_trip_and_refusals_name_the_field(server, tmp_path):
    delimited, _, labels = _write_pair(tmp_path, rows=120, separator="/")
    with AdvisorClient(server.address) as client:
        result = client.recommend(delimited, target="tags", label_separator="/", trials=False)
    head = result.task.heads[0]
    assert (head.name, head.type, head.class_labels) == ("tags", "multilabel", LABELS)
    assert head.label_cardinality == pytest.approx(_expected(labels)["label_cardinality"])
    assert head.no_label_share == pytest.approx(_expected(labels)["no_label_share"])
    with AdvisorClient(server.address) as client, pytest.raises(DataError) as caught:
        client.recommend(delimited, target="tags", label_separator=7, trials=False)
    assert [v.field for v in caught.value.violations] == ["label_separator"]
    csv = delimited.read_bytes()
    cases = [
        (pb.Dataset(csv=csv, target_columns=["tags"], label_separator=""), "1 to 8 characters"),
        (pb.Dataset(csv=csv, label_separator="|", head_type=pb.HEAD_TYPE_BINARY), "excludes task='binary'"),
        (pb.Dataset(npz=pack({"images": np.zeros((2, 4, 4)), "masks": np.zeros((2, 4, 4), np.uint8)}),
                    label_separator="|"), "an npz holds arrays"),
    ]  # fmt: skip
    for dataset, words in cases:
        code, found = rpc_error(server.stub.Recommend, pb.RecommendRequest(dataset=dataset), timeout=60)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and found["reason"] == "INVALID_DATASET"
        assert words in found["fields"].get("dataset.label_separator", ""), found
