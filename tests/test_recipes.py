"""Prediction-time recipes: values against hand-computed float64 formulas, clear errors, and the hand-off end to
end (train with the spec, predict with the recipe, reach the metric the evidence promised)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score

import advisor
from advisor.recipes import Recipe, RecipeError, apply_recipe, parse_recipe, smoothed_priors

LOGITS = np.array([[2.0, 1.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 0.5, 0.4]])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_logit_adjustment_subtracts_tau_log_priors():
    priors = [0.7, 0.2, 0.1]
    recipe = Recipe(kind="logit_adjustment", tau=1.5, class_priors=priors)
    expected = LOGITS - 1.5 * np.log(np.array(priors))
    z = torch.tensor(LOGITS, dtype=torch.float64)
    assert np.allclose(apply_recipe(recipe, z, output="logits").numpy(), expected)
    assert apply_recipe(recipe, z).tolist() == expected.argmax(1).tolist()
    assert np.allclose(apply_recipe(recipe, z, output="probabilities").numpy(), _softmax(expected))
    # the rarest class wins row 2 only after the adjustment
    assert apply_recipe(recipe, z)[2].item() == 2 and LOGITS[2].argmax() == 1


def test_threshold_on_one_sigmoid_logit_and_on_two_softmax_logits():
    t = 0.3
    logit = np.array([-1.0, -0.8, 0.0, 2.0])  # sigmoid: 0.269, 0.310, 0.5, 0.881
    sigmoid = Recipe(kind="threshold", threshold=t, activation="sigmoid")
    labels = apply_recipe(sigmoid, torch.tensor(logit)).tolist()
    assert labels == [int(p >= t) for p in 1 / (1 + np.exp(-logit))] == [0, 1, 1, 1]
    pairs = np.stack([np.zeros(4), logit], 1) + 0.7  # a shared offset: the positive logit is still z_1 - z_0
    softmax = Recipe(kind="threshold", threshold=t)
    assert apply_recipe(softmax, torch.tensor(pairs)).tolist() == labels
    shifted = apply_recipe(softmax, torch.tensor(pairs), output="probabilities").numpy()[:, 1]
    assert np.allclose(shifted, 1 / (1 + np.exp(-(logit - math.log(t / (1 - t))))))


def test_temperature_divides_the_logits():
    recipe = Recipe(kind="temperature", temperature=2.5)
    z = torch.tensor(LOGITS)
    assert np.allclose(apply_recipe(recipe, z, output="probabilities").numpy(), _softmax(LOGITS / 2.5))
    assert apply_recipe(recipe, z).tolist() == LOGITS.argmax(1).tolist()  # a temperature keeps the argmax
    multilabel = Recipe(kind="temperature", temperature=2.0, activation="sigmoid")
    assert np.allclose(
        apply_recipe(multilabel, z, output="probabilities").numpy(), 1 / (1 + np.exp(-LOGITS / 2.0))
    )


def test_smoothed_priors_add_one_to_every_count():
    assert smoothed_priors([8, 0, 2]) == pytest.approx([9 / 13, 1 / 13, 3 / 13])


@pytest.mark.parametrize(
    ("recipe", "logits", "field", "words"),
    [
        ({"kind": "threshold"}, torch.zeros(3), "recipe", "threshold not tuned"),
        ({"kind": "logit_adjustment", "tau": 1.0}, torch.zeros(3, 2), "recipe", "tau and class_priors"),
        ({"kind": "threshold", "threshold": 0.4}, torch.zeros(3, 3), "logits", "(N, 2) softmax"),
        (
            {"kind": "logit_adjustment", "tau": 1.0, "class_priors": [0.5, 0.5]},
            torch.zeros(3, 3),
            "logits",
            "(N, 2) logits",
        ),
        ({"kind": "threshold", "threshold": 1.5}, torch.zeros(3), "recipe.threshold", "less than 1"),
        ({"kind": "magic"}, torch.zeros(3), "recipe.kind", "logit_adjustment"),
        ({"kind": "logit_adjustment", "class_priors": [1.0]}, torch.zeros(3), "recipe.class_priors", "2"),
    ],
)
def test_recipe_errors_name_the_field(recipe, logits, field, words):
    with pytest.raises(RecipeError) as caught:
        apply_recipe(recipe, logits)
    assert isinstance(caught.value, ValueError)
    assert caught.value.violations[0].field == field and words in str(caught.value)


def test_bad_output_and_non_mapping_recipes_are_refused():
    with pytest.raises(RecipeError, match="output"):
        apply_recipe({"kind": "temperature", "temperature": 1.0}, torch.zeros(2, 2), output="proba")
    with pytest.raises(RecipeError, match="expected a mapping"):
        parse_recipe("threshold")


def test_train_with_the_spec_predict_with_the_recipe_reach_the_promised_metric():
    """A user's own training loop (not the trials') with the recommended spec, then apply_recipe on rows the
    advisor never saw: balanced accuracy reaches what the evidence promised and beats a plain argmax."""
    x, y = make_classification(
        n_samples=4000, n_features=10, n_informative=6, n_classes=3, weights=[0.85, 0.12, 0.03],
        class_sep=0.8, random_state=0,
    )  # fmt: skip
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(10)]).assign(y=y)
    train, test = frame.iloc[:3000], frame.iloc[3000:]
    result = advisor.recommend(
        train, target="y", metric="balanced_accuracy", epochs=30, repeats=4, race=False
    )
    candidate = next(
        c for c in result.heads[0].candidates if c.post_hoc and c.post_hoc.kind == "logit_adjustment"
    )
    recipe = candidate.post_hoc
    assert recipe.ready and recipe.tau is not None and len(recipe.class_priors) == 3

    torch.manual_seed(0)
    features = torch.tensor(train.drop(columns="y").to_numpy(), dtype=torch.float32)
    mean, std = features.mean(0), features.std(0)
    x_train, y_train = (features - mean) / std, torch.tensor(train["y"].to_numpy())
    x_test = (torch.tensor(test.drop(columns="y").to_numpy(), dtype=torch.float32) - mean) / std
    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    loss_fn = candidate.choice().build_loss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(30):
        for rows in torch.randperm(len(x_train)).split(128):
            optimizer.zero_grad()
            loss_fn(model(x_train[rows]), y_train[rows]).backward()
            optimizer.step()
    with torch.no_grad():
        logits = model(x_test)
    plain = balanced_accuracy_score(test["y"], logits.argmax(1).numpy())
    adjusted = balanced_accuracy_score(test["y"], advisor.apply_recipe(recipe, logits).numpy())
    assert adjusted > plain + 0.05
    assert adjusted >= candidate.evidence.ci_low
