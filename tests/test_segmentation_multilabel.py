"""Multi-label segmentation (overlapping (N, K, H, W) channel masks) end to end, and per-class Dice / IoU in the
evidence of every segmentation head: profiled per-channel facts against numpy, the sigmoid-only candidate set
(checked against the catalog's tensor formats), trials with K sigmoid channels, the per-channel metric by hand,
the text and terminal output, and the proto."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import advisor
from advisor.display import ranking_lines
from advisor.explain import head_decimals
from advisor.losses import get_loss_info
from advisor.profiling import profile_data
from advisor.rules import candidates, facts_for
from advisor.service import npz
from advisor.service.convert import (
    recommendation_from_proto,
    response_to_proto,
    task_from_proto,
    task_to_proto,
)
from advisor.spec import LossSpec
from advisor.task import Head, TaskDescription, TaskError, parse_task
from advisor.trials import metrics
from advisor.trials.adapters import adapter_for
from advisor.trials.segmentation import generate

QUICK = {"epochs": 2, "repeats": 2, "cache": False}


def _overlapping(count: int = 24, side: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two channels per image: a 6 x 6 square and a 6 x 6 square shifted by 2 px (they overlap in 4 x 4); the
    second channel is empty in every fourth image."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, 2, side, side), dtype=np.uint8)
    for index, (row, column) in enumerate(rng.integers(1, side - 9, (count, 2))):
        masks[index, 0, row : row + 6, column : column + 6] = 1
        if index % 4:
            masks[index, 1, row + 2 : row + 8, column + 2 : column + 8] = 1
    images = masks[:, :1] * 1.0 + masks[:, 1:] * 2.0 + 0.3 * rng.normal(size=(count, 1, side, side))
    return images.astype(np.float32), masks


def _boundary_by_hand(plane: np.ndarray) -> int:
    """Pixels of ``plane`` with a 4-neighbour (inside the image) that is off."""
    padded = np.pad(plane, 1, mode="edge")  # the border repeats itself: it is no boundary
    centre = padded[1:-1, 1:-1]
    neighbours_off = (
        (padded[:-2, 1:-1] == 0)
        | (padded[2:, 1:-1] == 0)
        | (padded[1:-1, :-2] == 0)
        | (padded[1:-1, 2:] == 0)
    )
    return int((centre.astype(bool) & neighbours_off).sum())


def _reads_sigmoid_channels(spec: LossSpec) -> bool:
    """Whether every loss of ``spec`` (each term of a compound) reads per-channel sigmoid logits and accepts
    targets shaped like its input, by the catalog's own tensor formats."""
    specs = (
        [LossSpec(loss=t["loss"], params=t["params"]) for t in spec.params["terms"]]
        if spec.loss == "compound"
        else [spec]
    )
    for one in specs:
        info = get_loss_info(one.loss)
        found = info.module.format_for(info.params_model.model_validate(one.params))
        if found is None or found.input != "sigmoid_logits" or "like_input" not in found.targets:
            return False
    return True


@pytest.fixture(scope="module")
def multilabel_result() -> advisor.Recommendation:
    return advisor.recommend(_overlapping(), **QUICK)


# ----------------------------------------------------------------------------------------------------------
# Profiling


def test_overlapping_channels_profile_into_a_multilabel_head_counted_per_channel():
    images, masks = _overlapping(count=8, side=12)
    assert (masks.sum(1) > 1).any()  # the channels do overlap
    profiled = profile_data((images, masks))
    (head,) = profiled.task.heads
    assert head.overlapping_classes is True and head.num_classes == 2 and head.type == "segmentation"
    pixels = masks.shape[2] * masks.shape[3]
    expected_shares = [masks[:, k].sum((1, 2)).mean() / pixels for k in range(2)]
    expected_absent = [(masks[:, k].sum((1, 2)) == 0).mean() for k in range(2)]
    # One square object per image where a channel is on: the median object is that 6 x 6 square.
    expected_objects = [36 / pixels, 36 / pixels]
    boundary = [sum(_boundary_by_hand(m[k]) for m in masks) / masks[:, k].sum() for k in range(2)]
    assert head.foreground_shares == pytest.approx(expected_shares, rel=1e-5)
    assert head.absent_shares == pytest.approx(expected_absent)
    assert head.median_object_shares == pytest.approx(expected_objects, rel=1e-5)
    assert head.boundary_shares == pytest.approx(boundary, rel=1e-5)
    assert expected_absent[1] == pytest.approx(0.25)  # every fourth image lacks channel 1
    target = profiled.targets["mask"]
    assert target.shape == masks.shape and np.array_equal(target, masks)  # channels stay channels
    assert any("overlapping" in note for note in profiled.task.notes)
    assert facts_for(profiled.task, head).overlapping_classes is True


def test_one_hot_and_foreground_channels_still_decode_to_class_indices():
    indices = np.zeros((4, 10, 10), dtype=np.int64)
    indices[:, 1:4, 1:4] = 1
    indices[:2, 6:9, 6:9] = 2
    images = np.random.default_rng(1).normal(size=(4, 1, 10, 10)).astype(np.float32)
    one_hot = np.eye(3, dtype=np.uint8)[indices].transpose(0, 3, 1, 2)
    for masks in (one_hot, one_hot[:, 1:]):  # with the background channel, and without it
        profiled = profile_data((images, masks))
        (head,) = profiled.task.heads
        assert head.overlapping_classes is False and head.num_classes == 3
        assert np.array_equal(profiled.targets["mask"], indices)
        assert head.foreground_shares == pytest.approx([9 / 100, 2 * 9 / 100 / 4])


def test_a_head_with_overlapping_classes_needs_two_channels_and_a_segmentation_type():
    with pytest.raises(TaskError) as caught:
        parse_task(
            {"heads": [{"type": "segmentation", "foreground_shares": [0.1], "overlapping_classes": True}]}
        )
    assert "overlapping_classes needs at least 2 classes" in str(caught.value) and "got 1" in str(
        caught.value
    )
    with pytest.raises(TaskError) as caught:
        parse_task({"heads": [{"type": "multiclass", "num_classes": 3, "overlapping_classes": True}]})
    assert caught.value.violations[0].field == "heads.0.overlapping_classes"
    # Per-channel statistics: K values for K channels (an exclusive head has K - 1 for K classes).
    assert Head(type="segmentation", foreground_shares=[0.1, 0.2], overlapping_classes=True).num_classes == 2
    assert Head(type="segmentation", foreground_shares=[0.1, 0.2]).num_classes == 3


# ----------------------------------------------------------------------------------------------------------
# Candidates


@pytest.mark.parametrize(
    "head",
    [
        {"foreground_shares": [0.3, 0.1]},
        {"foreground_shares": [0.3, 0.004], "median_object_shares": [0.1, 0.002]},
        {"foreground_shares": [0.3, 0.1], "absent_shares": [0.1, 0.6], "metric": "iou"},
        {"foreground_shares": [0.3, 0.1], "median_object_shares": [0.1, 0.1], "boundary_shares": [0.9, 0.1]},
    ],
    ids=["large", "tiny", "empty-iou", "thin"],
)
def test_candidates_for_overlapping_classes_are_all_per_channel_sigmoid(head):
    task = {"heads": [{"type": "segmentation", "overlapping_classes": True, **head}]}
    found = candidates(task)
    assert found
    for candidate in found:
        assert _reads_sigmoid_channels(candidate.spec), candidate.rule_id
        assert candidate.spec.loss != "lovasz"
        terms = candidate.spec.params.get("terms", [])
        for params in [candidate.spec.params, *(t["params"] for t in terms)]:
            if "include_background" in params:  # every channel is a foreground class
                assert params["include_background"] is True, candidate.rule_id
    # The exclusive head with the same statistics keeps its softmax candidates, none of these.
    exclusive = candidates({"heads": [{"type": "segmentation", **head}]})
    assert not any(_reads_sigmoid_channels(c.spec) for c in exclusive if c.spec.loss != "compound")
    assert not {c.rule_id for c in exclusive} & {c.rule_id for c in found}


# ----------------------------------------------------------------------------------------------------------
# Trials and metric


def test_the_adapter_gives_k_sigmoid_channels_and_float_targets():
    head = Head(type="segmentation", foreground_shares=[0.2, 0.1, 0.05], overlapping_classes=True)
    for candidate in candidates(TaskDescription(heads=[head])):
        adapter = adapter_for(head, candidate.spec)
        assert adapter.out_dim == 3, candidate.rule_id
        stored = torch.tensor([[[[0, 1]], [[1, 1]], [[0, 0]]]])  # (1, 3, 1, 2) 0/1 channels, int64
        target = adapter.loss_target(stored)
        assert target.is_floating_point() and target.shape == stored.shape
        logits = torch.tensor([[[[0.0, 2.0]], [[-2.0, 0.0]], [[1.0, -1.0]]]])
        assert torch.allclose(adapter.predict(logits)["proba"], torch.sigmoid(logits))  # not a softmax


def test_synthetic_data_for_a_multilabel_description_overlaps():
    head = Head(type="segmentation", foreground_shares=[0.3, 0.2, 0.1], overlapping_classes=True)
    images, masks = generate(head, TaskDescription(heads=[head]), 200, 0)
    assert images.shape == (200, 1, 24, 24) and masks.shape == (200, 3, 24, 24)
    assert set(np.unique(masks)) == {0, 1}
    assert (masks.sum(1) >= 2).mean() > 0.01  # pixels in two or more channels
    assert masks.mean((0, 2, 3)) == pytest.approx([0.3, 0.2, 0.1], rel=0.35)


def test_per_channel_dice_and_iou_by_hand():
    # Two images, two channels; each channel thresholded at 0.5 on its own probability.
    proba = torch.tensor(
        [
            [[[0.9, 0.2], [0.6, 0.1]], [[0.7, 0.8], [0.1, 0.1]]],
            [[[0.1, 0.1], [0.1, 0.1]], [[0.2, 0.2], [0.2, 0.2]]],
        ],
        dtype=torch.float64,
    )
    target = torch.tensor([[[[1, 1], [0, 0]], [[1, 1], [0, 0]]], [[[0, 0], [0, 0]], [[0, 0], [0, 1]]]])
    # Image 0: channel 0 predicts {(0,0), (1,0)} against {(0,0), (0,1)}: Dice 2*1/4, IoU 1/3; channel 1 exact.
    # Image 1: channel 0 empty in both: 1; channel 1 misses its one pixel: 0.
    dice = metrics.overlap_per_class({"proba": proba}, target, jaccard=False)
    iou = metrics.overlap_per_class({"proba": proba}, target, jaccard=True)
    assert dice == pytest.approx([(0.5 + 1) / 2, (1 + 0) / 2])
    assert iou == pytest.approx([(1 / 3 + 1) / 2, (1 + 0) / 2])
    assert metrics.score("dice", {"proba": proba}, target) == pytest.approx(0.625)
    assert metrics.score_per_class("iou", {"proba": proba}, target) == pytest.approx([2 / 3, 0.5])
    assert metrics.score_per_class("accuracy", {"proba": proba}, target) is None


def test_class_index_dice_scores_every_output_class_even_one_absent_from_the_split():
    # Three output channels; class 2 is neither present nor predicted: it scores 1, so the per-class list
    # keeps the head's classes 1 and 2 in every split.
    truth = torch.tensor([[[1, 1], [0, 0]]])
    predicted = torch.tensor([[[1, 0], [0, 0]]])
    proba = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).double()
    assert metrics.score_per_class("dice", {"proba": proba}, truth) == pytest.approx([2 / 3, 1.0])


def test_recommend_on_overlapping_masks_keeps_per_channel_values(multilabel_result):
    (head,) = multilabel_result.heads
    assert multilabel_result.task.heads[0].overlapping_classes is True
    assert head.evidence_source == "data" and head.candidates
    for candidate in head.candidates:
        assert _reads_sigmoid_channels(candidate.spec)
        evidence = candidate.evidence
        assert evidence is not None and evidence.per_class is not None and len(evidence.per_class) == 2
        for values, ranked in zip(evidence.per_class, evidence.per_repeat, strict=True):
            assert values is not None and len(values) == 2 and all(0.0 <= v <= 1.0 for v in values)
            assert np.mean(values) == pytest.approx(ranked, abs=1e-12)  # the metric is their mean
    top = head.candidates[0]
    shown = ", ".join(f"{v:.{head_decimals(head.candidates)}f}" for v in top.evidence.per_class_mean)
    assert "Per class (mean over repeats)" in head.explanation
    assert any(f"per class: {shown}" in text for text, _ in ranking_lines(head))


def test_per_class_values_average_to_the_reported_metric_on_ordinary_segmentation():
    rng = np.random.default_rng(3)
    masks = np.zeros((24, 16, 16), dtype=np.int64)
    for mask, (row, column) in zip(masks, rng.integers(1, 9, (24, 2)), strict=True):
        mask[row : row + 5, column : column + 5] = 1
        mask[row + 5 : row + 7, column : column + 7] = 2
    images = (masks[:, None] * 0.8 + 0.3 * rng.normal(size=(24, 1, 16, 16))).astype(np.float32)
    result = advisor.recommend((images, masks), **QUICK)
    (head,) = result.heads
    assert result.task.heads[0].overlapping_classes is False
    for candidate in head.candidates:
        evidence = candidate.evidence
        assert evidence is not None and evidence.per_class is not None
        for values, ranked in zip(evidence.per_class, evidence.per_repeat, strict=True):
            assert values is not None and len(values) == 2  # the foreground classes 1 and 2
            assert np.mean(values) == pytest.approx(ranked, abs=1e-12)
        means = [np.mean([values[c] for values in evidence.per_class]) for c in range(2)]
        assert evidence.per_class_mean == pytest.approx(means)


def test_metrics_without_a_per_class_form_leave_it_null():
    result = advisor.recommend(
        {"heads": [{"type": "binary", "class_histogram": [80, 40]}], "n_features": 4}, max_rows=120, **QUICK
    )
    assert all(c.evidence.per_class is None for c in result.heads[0].candidates)


# ----------------------------------------------------------------------------------------------------------
# gRPC: the npz payload, the task and the evidence


def test_overlapping_masks_flow_through_an_npz_payload_and_the_proto(multilabel_result):
    images, masks = _overlapping()
    content = npz.pack({"images": images, "masks": masks})
    assert npz.kind_of(npz.headers(content), None) == "segmentation"
    arrays = npz.load(content, "segmentation")
    assert np.array_equal(arrays[1], masks)
    task = advisor.profile(arrays)
    assert task == multilabel_result.task
    message = task_to_proto(task)
    assert message.heads[0].overlapping_classes is True
    assert task_from_proto(message).heads[0] == task.heads[0]
    response = response_to_proto(multilabel_result)
    sent = response.heads[0].candidates[0].evidence
    expected = multilabel_result.heads[0].candidates[0].evidence.per_class
    assert [list(s.values) for s in sent.per_class] == expected
    back = recommendation_from_proto(response)
    assert [c.evidence.per_class for c in back.heads[0].candidates] == [
        c.evidence.per_class for c in multilabel_result.heads[0].candidates
    ]
