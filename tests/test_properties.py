"""Property tests (hypothesis): identities between losses that hold for any input."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import advisor

settings.register_profile("ci", deadline=None, max_examples=40)
settings.load_profile("ci")

finite = st.floats(-30, 30, allow_nan=False, width=64)


@st.composite
def logits_and_classes(draw, max_classes: int = 6):
    n = draw(st.integers(1, 8))
    c = draw(st.integers(2, max_classes))
    logits = draw(arrays(np.float64, (n, c), elements=finite))
    classes = draw(arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    return torch.from_numpy(logits), torch.from_numpy(classes)


@given(logits_and_classes())
def test_focal_with_gamma_zero_and_no_alpha_is_cross_entropy(data):
    logits, classes = data
    focal = advisor.build_loss({"loss": "focal", "params": {"gamma": 0.0}})
    torch.testing.assert_close(focal(logits, classes), F.cross_entropy(logits, classes))


@given(arrays(np.float64, st.integers(1, 20), elements=finite), st.data())
def test_binary_focal_with_gamma_zero_and_no_alpha_is_bce(logits, data):
    labels = data.draw(arrays(np.float64, logits.shape, elements=st.sampled_from([0.0, 1.0])))
    x, y = torch.from_numpy(logits), torch.from_numpy(labels)
    focal = advisor.build_loss({"loss": "binary_focal", "params": {"gamma": 0.0, "alpha": None}})
    torch.testing.assert_close(focal(x, y), F.binary_cross_entropy_with_logits(x, y))


@given(
    arrays(np.float64, st.integers(1, 20), elements=finite),
    st.data(),
    st.floats(0.01, 20, allow_nan=False),
)
def test_huber_is_delta_times_smooth_l1(pred, data, delta):
    target = data.draw(arrays(np.float64, pred.shape, elements=finite))
    x, y = torch.from_numpy(pred), torch.from_numpy(target)
    huber = advisor.build_loss({"loss": "huber", "params": {"delta": delta}})
    smooth = advisor.build_loss({"loss": "smooth_l1", "params": {"beta": delta}})
    torch.testing.assert_close(huber(x, y), delta * smooth(x, y))


@given(logits_and_classes(), st.lists(st.integers(0, 1000), min_size=6, max_size=6))
def test_logit_adjustment_with_tau_zero_is_cross_entropy(data, counts):
    logits, classes = data
    spec = {"loss": "logit_adjusted", "params": {"tau": 0.0, "samples_per_class": counts[: logits.shape[1]]}}
    torch.testing.assert_close(advisor.build_loss(spec)(logits, classes), F.cross_entropy(logits, classes))


@given(
    st.integers(1, 3),
    st.integers(2, 4),
    st.integers(1, 6),
    st.sampled_from(["dice", "jaccard", "tversky", "focal_tversky"]),
    st.booleans(),
    st.data(),
)
def test_overlap_losses_of_a_perfect_prediction_are_zero(n, c, size, name, batch, data):
    classes = torch.from_numpy(data.draw(arrays(np.int64, (n, size, size), elements=st.integers(0, c - 1))))
    perfect = F.one_hot(classes, c).movedim(-1, 1).double()
    loss = advisor.build_loss({"loss": name, "params": {"activation": "none", "batch": batch}})
    assert abs(loss(perfect, classes).item()) < 1e-9


def _round_trip(spec):
    module = advisor.build_loss(spec)
    again = advisor.build_loss(module.spec().to_json())
    assert again.spec() == module.spec() == advisor.normalize_spec(spec)


positive = st.floats(0.01, 10, allow_nan=False)
weights = st.lists(st.floats(0, 10, allow_nan=False), min_size=2, max_size=5)


@given(
    st.one_of(
        st.builds(
            lambda g, a: {"loss": "focal", "params": {"gamma": g, "alpha": a}}, st.floats(0, 5), weights
        ),
        st.builds(lambda d: {"loss": "huber", "params": {"delta": d}}, positive),
        st.builds(
            lambda q: {"loss": "quantile", "params": {"quantiles": sorted(set(q))}},
            st.lists(st.floats(0.01, 0.99), min_size=1, max_size=4),
        ),
        st.builds(
            lambda a, b, batch: {
                "loss": "tversky",
                "params": {"fp_weight": a, "fn_weight": b, "batch": batch},
            },
            positive,
            positive,
            st.booleans(),
        ),
        st.builds(lambda w, pw: {"loss": "bce", "params": {"weight": w, "pos_weight": pw}}, weights, weights),
        st.builds(
            lambda n, b, g: {
                "loss": "class_balanced",
                "params": {"samples_per_class": n, "beta": b, "gamma": g},
            },
            st.lists(st.integers(0, 10_000), min_size=2, max_size=6),
            st.floats(0, 0.9999),
            st.floats(0, 3),
        ),
        st.builds(
            lambda s, t: {
                "loss": "multi_task",
                "params": {
                    "heads": {"a": {"loss": "focal", "params": {"gamma": t}}, "b": {"loss": "mse"}},
                    "weighting": {"scheme": s},
                },
            },
            st.sampled_from(["static", "uncertainty", "dwa"]),
            st.floats(0, 5),
        ),
    )
)
def test_spec_round_trip_for_generated_parameters(spec):
    _round_trip(spec)
