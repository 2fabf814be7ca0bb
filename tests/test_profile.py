"""Data profiling: head types, exact class counts and target traits recovered from data with known traits.

Generated data have a known answer (a 10% outlier share, a variance that grows with an input, negative
binomial counts); the sklearn datasets have published class counts. Seeds are fixed.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine, make_classification

from advisor.errors import AdvisorError
from advisor.profiling import ProfileError, profile

# The module itself (for monkeypatching), even if the package re-exports the function under the same name.
profile_module = importlib.import_module("advisor.profiling")

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "client_examples" / "data" / "churn.csv"


def _profile_error(*args, **kwargs) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        profile(*args, **kwargs)
    assert isinstance(caught.value, AdvisorError) and isinstance(caught.value, ValueError)
    return caught.value


def _fields(error: ProfileError) -> list[str]:
    return [violation.field for violation in error.violations]


def _regression_data(n: int, seed: int, outlier_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Linear data with unit normal noise; ``outlier_share`` of the targets shifted by 10 to 30 sigma."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 5))
    target = features @ np.array([1.0, 2.0, -1.0, 0.5, 0.0]) + rng.normal(size=n)
    outliers = rng.random(n) < outlier_share
    target[outliers] += rng.choice([-1.0, 1.0], outliers.sum()) * rng.uniform(10, 30, outliers.sum())
    return features, target


# ----------------------------------------------------------------------------------------------------------
# scikit-learn's bundled datasets


def test_iris_frame_infers_the_target_column_and_three_equal_classes():
    task = profile(load_iris(as_frame=True).frame)
    (head,) = task.heads
    assert (head.name, head.type, head.num_classes) == ("target", "multiclass", 3)
    assert head.class_histogram == [50, 50, 50]
    assert head.class_labels == ["0", "1", "2"]
    assert (task.n_samples, task.n_features, task.source) == (150, 4, "data")
    assert any("'target' inferred from its name" in note for note in task.notes)


def test_breast_cancer_arrays_give_a_binary_head_with_the_published_counts():
    features, labels = load_breast_cancer(return_X_y=True)
    task = profile((features, labels))
    (head,) = task.heads
    assert head.type == "binary"
    assert head.class_histogram == [212, 357]
    assert (task.n_samples, task.n_features) == (569, 30)


def test_diabetes_is_regression_with_exact_moments():
    data = load_diabetes(as_frame=True)
    task = profile((data.data, data.target))
    (head,) = task.heads
    assert head.type == "regression"  # whole numbers stored as floats are measurements, not counts
    summary = head.target
    target = data.target.to_numpy()
    assert summary.mean == pytest.approx(target.mean(), rel=1e-12)
    assert summary.variance == pytest.approx(target.var(ddof=1), rel=1e-12)
    assert (summary.minimum, summary.maximum) == (25.0, 346.0)
    assert summary.outlier_fraction is not None and summary.outlier_fraction < 0.05
    assert summary.robust_scale == pytest.approx(54, rel=0.3)  # the residual sd of a linear fit is ~54


def test_wine_three_unequal_classes():
    task = profile(load_wine(as_frame=True).frame)
    assert task.heads[0].type == "multiclass"
    assert task.heads[0].class_histogram == [59, 71, 48]
    assert task.n_features == 13


# ----------------------------------------------------------------------------------------------------------
# Generated data with known traits


def test_make_classification_weights_show_as_an_exact_imbalanced_histogram():
    features, labels = make_classification(
        n_samples=3000, n_classes=3, n_informative=4, weights=[0.8, 0.15, 0.05], random_state=0
    )
    task = profile((features, labels))
    head = task.heads[0]
    assert head.type == "multiclass"
    assert head.class_histogram == np.bincount(labels).tolist()
    assert head.imbalance_ratio == pytest.approx(np.bincount(labels).max() / np.bincount(labels).min())
    assert head.imbalance_ratio > 10
    assert head.metric == "balanced_accuracy"
    assert any("imbalance ratio" in note and "moderate" in note for note in task.notes)


def test_gross_outliers_are_counted_by_the_robust_fit():
    features, target = _regression_data(3000, seed=1, outlier_share=0.10)
    summary = profile((features, target)).heads[0].target
    assert 0.05 <= summary.outlier_fraction <= 0.15
    # The robust scale stays near the clean noise sd (1) although the outliers inflate the variance.
    assert summary.robust_scale == pytest.approx(1.0, rel=0.25)
    assert summary.variance > 10


def test_clean_regression_has_almost_no_outliers():
    features, target = _regression_data(3000, seed=2)
    summary = profile((features, target)).heads[0].target
    assert summary.outlier_fraction < 0.02
    assert summary.robust_scale == pytest.approx(1.0, rel=0.15)


def test_breusch_pagan_flags_variance_that_grows_with_an_input():
    rng = np.random.default_rng(3)
    features = rng.uniform(0, 3, size=(2000, 3))
    heteroscedastic = features[:, 0] + rng.normal(size=2000) * (0.2 + features[:, 0])
    homoscedastic = features[:, 0] + rng.normal(size=2000)
    assert profile((features, heteroscedastic)).heads[0].target.heteroscedasticity_pvalue < 0.05
    assert profile((features, homoscedastic)).heads[0].target.heteroscedasticity_pvalue > 0.05


def test_negative_binomial_counts_are_overdispersed_and_poisson_counts_are_not():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(4000, 3))
    mean = 12.0
    negative_binomial = rng.negative_binomial(2, 2 / (2 + mean), size=4000)
    poisson = rng.poisson(mean, size=4000)
    for counts, low, high in ((negative_binomial, 1.5, np.inf), (poisson, 0.8, 1.2)):
        task = profile((features, counts))
        head = task.heads[0]
        assert head.type == "count"
        dispersion = head.target.variance / head.target.mean
        assert low < dispersion < high
        assert dispersion == pytest.approx(counts.var(ddof=1) / counts.mean(), rel=1e-9)
    assert any("overdispersed" in note for note in profile((features, negative_binomial)).notes)


def test_zero_inflated_counts_report_the_exact_zero_share():
    rng = np.random.default_rng(5)
    counts = np.where(rng.random(3000) < 0.35, 0, rng.poisson(20, size=3000))
    task = profile((rng.normal(size=(3000, 2)), counts))
    head = task.heads[0]
    assert head.type == "count"
    assert head.target.zero_share == pytest.approx((counts == 0).mean(), abs=1e-12)
    assert head.target.zero_share > 0.3
    assert any("zeros" in note and "under a Poisson" in note for note in task.notes)


def _zero_heavy_continuous(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Tweedie-like data: about 40% exact zeros, the rest a continuous gamma amount that grows with an input."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 3))
    amount = rng.gamma(2.0, np.exp(0.5 + 0.4 * features[:, 0]))
    return features, np.where(rng.random(n) < 0.4, 0.0, amount)


def test_zero_heavy_non_negative_continuous_target_reports_minimum_and_exact_zero_share():
    features, target = _zero_heavy_continuous(3000, seed=8)
    head = profile((features, target)).heads[0]
    assert head.type == "regression"
    assert head.target.minimum == 0.0 and head.target.maximum == pytest.approx(target.max())
    assert head.target.zero_share == pytest.approx((target == 0).mean(), abs=1e-12)
    assert 0.35 < head.target.zero_share < 0.45


def test_profiled_zero_heavy_target_takes_a_deviance_metric_and_gets_log_link_candidates():
    from advisor.rules import candidates
    from advisor.task import Head

    features, target = _zero_heavy_continuous(2000, seed=9)
    task = profile((features, target))
    for metric in ("poisson_deviance", "tweedie_deviance"):
        # What recommend(metric=...) does with a profiled head; it used to fail with "metric 'poisson_deviance'
        # does not fit a regression head".
        head = Head.model_validate({**task.heads[0].model_dump(), "metric": metric})
        found = candidates(task.model_copy(update={"heads": [head]}))
        losses = {c.spec.loss: c for c in found}
        assert {"tweedie", "poisson_nll"} <= set(losses), metric
        assert losses["tweedie"].prior > losses["mse"].prior, metric
        assert losses["poisson_nll"].spec.params["log_input"] is True
    # The gamma deviance needs a strictly positive target: refused, naming the metric.
    with pytest.raises(ValueError, match=r"gamma_deviance.*strictly positive"):
        Head.model_validate({**task.heads[0].model_dump(), "metric": "gamma_deviance"})


def test_several_zero_one_targets_make_one_multilabel_head():
    rng = np.random.default_rng(6)
    labels = (rng.random((500, 3)) < [0.5, 0.2, 0.05]).astype(int)
    frame = pd.DataFrame(rng.normal(size=(500, 4)), columns=list("abcd"))
    frame[["cat", "dog", "bird"]] = labels
    task = profile(frame, target=["cat", "dog", "bird"])
    (head,) = task.heads
    assert (head.name, head.type, head.num_classes) == ("cat+dog+bird", "multilabel", 3)
    assert head.positive_rates == pytest.approx(labels.mean(axis=0).tolist())
    assert task.n_features == 4
    # The same from arrays with a 2-D y.
    from_arrays = profile((frame[list("abcd")].to_numpy(), labels)).heads[0]
    assert from_arrays.name == "target0+target1+target2"
    assert from_arrays.positive_rates == head.positive_rates


def test_several_targets_of_different_kinds_get_one_head_each():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=400), "price": rng.normal(10, 2, 400)})
    frame["segment"] = rng.choice(["a", "b", "c"], 400)
    task = profile(frame, target=["price", "segment"])
    assert [(head.name, head.type) for head in task.heads] == [
        ("price", "regression"),
        ("segment", "multiclass"),
    ]
    assert task.n_features == 1


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.arange(300) % 5, "multiclass"),  # few non-negative integers
        (np.arange(300) % 40, "count"),  # many non-negative integers
        (np.arange(300) % 7 - 3, "multiclass"),  # few integers with negatives
        (np.arange(300) % 60 - 30, "regression"),  # many integers with negatives
        (np.arange(300) % 2 * 2 - 1, "binary"),  # -1 / +1
        (np.linspace(0, 1, 300), "regression"),
        (np.where(np.arange(300) % 3, "yes", "no"), "binary"),
        (np.arange(300) % 2 == 0, "binary"),
    ],
)
def test_head_type_inference(values, expected):
    rng = np.random.default_rng(8)
    task = profile((rng.normal(size=(300, 2)), values))
    assert task.heads[0].type == expected
    assert any(f"-> {expected}" in note for note in task.notes)


def test_text_labels_are_sorted_and_counted():
    frame = pd.DataFrame({"x": range(6), "Label": ["yes", "no", "yes", "yes", "no", "yes"]})
    task = profile(frame)
    head = task.heads[0]
    assert (head.name, head.class_labels, head.class_histogram) == ("Label", ["no", "yes"], [2, 4])


def test_forced_task_types():
    rng = np.random.default_rng(9)
    features, small_counts = rng.normal(size=(300, 2)), rng.poisson(2, 300)
    assert profile((features, small_counts)).heads[0].type == "multiclass"
    assert profile((features, small_counts), task="count").heads[0].type == "count"
    ordinal = profile((features, small_counts), task="ordinal").heads[0]
    values, counts = np.unique(small_counts, return_counts=True)  # observed values only
    assert ordinal.type == "ordinal" and ordinal.class_histogram == counts.tolist()
    assert ordinal.class_labels == [str(value) for value in values]
    error = _profile_error((features, small_counts), task="binary")
    assert _fields(error) == ["task"] and "2 distinct values" in str(error)
    assert _fields(_profile_error((features, rng.normal(size=300)), task="count")) == ["task"]
    assert _fields(_profile_error((features, small_counts), task="multilabel")) == ["task"]
    assert _fields(_profile_error((features, small_counts), task="ranking")) == ["task"]
    assert _fields(_profile_error((features, small_counts), max_rows=0)) == ["max_rows"]


# ----------------------------------------------------------------------------------------------------------
# Target inference and its errors


def test_no_obvious_target_asks_for_one_and_lists_the_columns():
    frame = pd.DataFrame({"age": [1, 2], "income": [3.0, 4.0]})
    error = _profile_error(frame)
    assert _fields(error) == ["target"]
    message = str(error)
    assert "target=" in message and "--target" in message and "'age'" in message and "'income'" in message


def test_two_target_like_columns_are_ambiguous():
    frame = pd.DataFrame({"y": [0, 1, 0], "label": [1, 0, 1], "x": [1.0, 2.0, 3.0]})
    error = _profile_error(frame)
    assert _fields(error) == ["target"] and "several columns" in str(error)
    assert profile(frame, target="label").heads[0].name == "label"


def test_unknown_target_column_names_it_and_lists_columns(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame({"a": [1, 2, 3], "b": [0, 1, 0]}).to_csv(path, index=False)
    error = _profile_error(path, target="churn")
    assert _fields(error) == ["target"]
    assert "'churn'" in str(error) and "'a'" in str(error) and "'b'" in str(error)


def test_single_class_names_the_column_and_the_class():
    frame = pd.DataFrame({"x": range(50), "outcome": ["ok"] * 50})
    error = _profile_error(frame)
    assert _fields(error) == ["target"]
    assert "'outcome'" in str(error) and "'ok'" in str(error)


def test_free_text_target_is_refused():
    frame = pd.DataFrame({"x": range(300), "label": [f"comment number {i}" for i in range(300)]})
    error = _profile_error(frame)
    assert _fields(error) == ["target"] and "too many to be classes" in str(error)


def test_empty_and_header_only_files_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert _fields(_profile_error(empty, target="y")) == ["data"]
    header_only = tmp_path / "header.csv"
    header_only.write_text("x,y\n")
    error = _profile_error(header_only, target="y")
    assert _fields(error) == ["data"] and "'x'" in str(error)
    assert _fields(_profile_error(tmp_path / "missing.csv")) == ["data"]
    assert _fields(_profile_error([1, 2, 3])) == ["data"]


def test_arrays_of_different_lengths_are_refused():
    assert _fields(_profile_error((np.zeros((5, 2)), np.zeros(4)))) == ["data"]


# ----------------------------------------------------------------------------------------------------------
# Messy CSVs


def _messy_frame(n: int = 600, seed: int = 10) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    income = rng.normal(50, 10, n).round(2).astype(object)
    income[rng.random(n) < 0.05] = "?"  # UCI-style missing marker
    frame = pd.DataFrame(
        {
            "row_number": np.arange(n),  # an integer ID
            "user_key": [f"U{index:06d}" for index in rng.permutation(n)],  # a string ID
            "account_id": rng.integers(0, n // 2, n),  # named like an ID, repeats
            "x": np.where(rng.random(n) < 0.1, np.nan, x),
            "income": income,
            "city": rng.choice([f"city_{index}" for index in range(30)], n),  # 30 levels -> top 20
            "plan": rng.choice(["basic", "pro", None], n),
            "comment": [f"the customer said thing {rng.integers(1e6)} about the service" for _ in range(n)],
            "source": "web",  # constant
            "blank": np.nan,  # every value missing
        }
    )
    frame["y"] = np.where(rng.random(n) < 0.05, np.nan, 3 * x + rng.normal(size=n))
    return frame


def test_messy_csv_drops_ids_text_constants_and_rows_without_target(tmp_path):
    frame = _messy_frame()
    path = tmp_path / "messy.csv"
    frame.to_csv(path, index=False)
    task = profile(path)  # 'y' is the obvious target
    notes = " | ".join(task.notes)
    missing_target = int(frame["y"].isna().sum())
    assert task.n_samples == len(frame) - missing_target
    assert f"Dropped {missing_target} of {len(frame)} rows with a missing target" in notes
    assert "ID-like columns: row_number, user_key, account_id" in notes
    assert "free-text column: comment" in notes
    assert "constant column: source (always 'web')" in notes
    assert "empty column: blank (every value missing)" in notes
    assert "'city': 30 levels; one-hot encoded the 20 most frequent" in notes
    # "?" is read as a missing cell (no junk note); the missing-cell note lists the worst columns.
    assert "'?'" not in notes
    (missing_note,) = [note for note in task.notes if "of feature cells are missing" in note]
    income_share = frame.loc[frame["y"].notna(), "income"].eq("?").mean()
    assert "plan 3" in missing_note and "x " in missing_note
    assert f"income {income_share:.1%}" in missing_note
    # x and income numeric, city 20 levels, plan 2 levels (missing is no level).
    assert task.n_features == 1 + 1 + 20 + 2
    assert task.heads[0].type == "regression"
    assert task.heads[0].target.outlier_fraction < 0.03


def test_junk_cells_in_a_numeric_column_become_missing():
    frame = _messy_frame()
    frame["income"] = frame["income"].replace("?", "unknown")
    task = profile(frame, target="y")
    assert any(
        "'income'" in note and "'unknown'" in note and "treated as missing" in note for note in task.notes
    )
    assert task.n_features == 1 + 1 + 20 + 2


def test_column_roles_from_names_and_values():
    rng = np.random.default_rng(14)
    n = 400
    frame = pd.DataFrame(
        {
            "session_uuid": [f"{rng.integers(16**12):012x}-4a1b-9c2d-{index:012d}" for index in range(n)],
            "customerId": rng.integers(0, 10**9, n),  # camelCase ID name, random (not dense) integers
            "store_id": rng.integers(0, 5, n),  # named like an ID but only 5 values: a category
            "paid": rng.integers(0, 10**6, n),  # "paid" ends in "id" but is an amount
            "signed_up": pd.date_range("2024-01-01", periods=n, freq="h"),
            "flag": rng.random(n) < 0.3,
            "target": rng.normal(size=n),
        }
    )
    task = profile(frame)
    notes = " | ".join(task.notes)
    assert "ID-like columns: session_uuid, customerId" in notes
    assert "unsupported (date/time or complex) column: signed_up" in notes
    assert "free-text" not in notes and "store_id" not in notes and "paid" not in notes
    assert task.n_features == 3  # store_id, paid, flag


def test_wide_data_fit_a_seeded_subset_of_features():
    rng = np.random.default_rng(15)
    features = rng.normal(size=(4000, 350))
    task = profile((features, features[:, 0] + rng.normal(size=4000)))
    assert task.n_features == 350
    # At most one feature per 10 fit rows, so the residuals are not shrunk by overfitting.
    assert "The quick fit uses a random 300 of 350 encoded features." in task.notes
    assert task.heads[0].target.robust_scale == pytest.approx(1.0, rel=0.5)
    small = profile((features[:500], features[:500, 0] + rng.normal(size=500)))
    assert "The quick fit uses a random 50 of 350 encoded features." in small.notes


def test_boolean_target_and_named_arrays():
    rng = np.random.default_rng(16)
    flags = rng.random(200) < 0.25
    head = profile((rng.normal(size=(200, 2)), flags), target="fraud").heads[0]
    assert (head.name, head.type, head.class_labels) == ("fraud", "binary", ["False", "True"])
    assert head.class_histogram == [int((~flags).sum()), int(flags.sum())]
    error = _profile_error((rng.normal(size=(200, 2)), flags), target=["a", "b"])
    assert _fields(error) == ["target"]


def test_semicolon_separated_csv_is_sniffed(tmp_path):
    path = tmp_path / "semicolon.csv"
    path.write_text("a;b;class\n" + "".join(f"{i};{i % 7};{'ab'[i % 3 == 0]}\n" for i in range(90)))
    head = profile(path).heads[0]
    assert (head.name, head.class_labels, head.class_histogram) == ("class", ["a", "b"], [60, 30])


def test_target_with_missing_values_in_an_integer_column_stays_a_count(tmp_path):
    rng = np.random.default_rng(11)
    counts = rng.poisson(30, 500).astype(float)
    counts[:10] = np.nan  # pandas reads the column as float only because of these
    path = tmp_path / "counts.csv"
    pd.DataFrame({"x": rng.normal(size=500), "visits": counts}).to_csv(path, index=False, na_rep="")
    path.write_text(path.read_text().replace(".0\n", "\n"))  # counts written as integers
    task = profile(path, target="visits")
    assert task.heads[0].type == "count" and task.n_samples == 490


# ----------------------------------------------------------------------------------------------------------
# Large files: chunks and sampling


def _class_csv(path: Path, n: int, seed: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["group"] = rng.choice(["g1", "g2", "g3"], n)
    frame["label"] = rng.choice(["cat", "dog", "eel", "fox"], n, p=[0.6, 0.3, 0.08, 0.02])
    frame.to_csv(path, index=False)
    return frame


def test_sampled_csv_keeps_exact_class_counts_and_says_it_sampled(tmp_path, monkeypatch):
    # Small chunks (1,000 rows) so the stream and the sampler cross several chunks.
    monkeypatch.setattr(profile_module, "CHUNK_CELLS", 1)
    path = tmp_path / "big.csv"
    frame = _class_csv(path, 7_500)
    task = profile(path, max_rows=500)
    expected = frame["label"].value_counts().sort_index()
    head = task.heads[0]
    assert head.class_labels == expected.index.tolist()
    assert head.class_histogram == expected.tolist()
    assert task.n_samples == 7_500 and task.n_features == 6
    assert (
        "Profiled a uniform sample of 500 of 7,500 rows; class counts and target moments use all rows."
        in task.notes
    )
    assert profile(path, max_rows=500) == task  # deterministic for a random_state


def test_streamed_moments_are_exact_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(profile_module, "CHUNK_CELLS", 1)
    features, target = _regression_data(4_200, seed=13)
    target = target * 1000 + 1e6  # a large offset tests the numerically stable merge of chunk moments
    path = tmp_path / "regression.csv"
    pd.DataFrame({"u": features[:, 0], "v": features[:, 1], "target": target}).to_csv(path, index=False)
    summary = profile(path, max_rows=800).heads[0].target
    written = pd.read_csv(path)["target"].to_numpy()
    assert summary.mean == pytest.approx(written.mean(), rel=1e-12)
    assert summary.variance == pytest.approx(written.var(ddof=1), rel=1e-9)
    assert (summary.minimum, summary.maximum) == (written.min(), written.max())


def test_bottom_k_sample_is_uniform_and_seeded():
    stream = [pd.DataFrame({"row": np.arange(start, start + 1_000)}) for start in range(0, 20_000, 1_000)]

    def sample(seed: int) -> np.ndarray:
        sampler = profile_module._BottomKSampler(2_000, np.random.default_rng(seed))
        for chunk in stream:
            sampler.offer(chunk)
        return sampler.sample()["row"].to_numpy()

    rows = sample(0)
    assert len(rows) == 2_000 and len(np.unique(rows)) == 2_000
    assert np.all(np.diff(rows) > 0)  # kept in stream order
    # Uniform: each fifth of the stream holds about a fifth of the sample (400 +- 4.5 sd).
    per_fifth = np.bincount(rows // 4_000, minlength=5)
    assert np.all(np.abs(per_fifth - 400) < 80), per_fifth
    assert np.array_equal(sample(0), rows) and not np.array_equal(sample(1), rows)


# ----------------------------------------------------------------------------------------------------------
# The bundled churn example


def test_churn_example_profiles_as_a_binary_churn_task():
    task = profile(CHURN, target="churned")
    (head,) = task.heads
    counts = pd.read_csv(CHURN)["churned"].value_counts().sort_index()
    assert (head.name, head.type, head.class_labels) == ("churned", "binary", ["0", "1"])
    assert head.class_histogram == counts.tolist()
    assert 0.10 < counts[1] / counts.sum() < 0.14
    notes = " | ".join(task.notes)
    assert "ID-like column: customer_id" in notes and "constant column: country" in notes
    assert task.n_samples == 3_000
    # 8 numeric columns plus one-hot contract_type (3) and payment_method (4).
    assert task.n_features == 15


def test_churn_generator_reproduces_the_committed_file(tmp_path):
    spec = importlib.util.spec_from_file_location("make_churn", CHURN.with_name("make_churn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "churn.csv")
    assert (tmp_path / "churn.csv").read_bytes() == CHURN.read_bytes()
