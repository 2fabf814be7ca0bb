"""Segmentation data: each reader (arrays, .npz, .npy pair, PNG/TIFF folders, manifest CSV), each input error,
profiled facts against hand-computed values, the rules they fire, and trials on the user's own images.

Every file is made here, small, in tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from advisor.cache import cache_key
from advisor.core import recommend
from advisor.profiling import ProfileError, profile, profile_data
from advisor.rules import candidates, facts_for
from advisor.task import Head
from advisor.trials import metrics
from advisor.trials.data import prepare
from advisor.trials.segmentation import MIN_IMAGES, image_rows


def _known_masks() -> np.ndarray:
    """Four 10 x 10 masks with hand-countable objects.

    Images 0 and 1: class 1 as a 2 x 2 square (4 px, all on the boundary) and a 3 x 3 square (9 px, 8 on the
    boundary); image 0 also class 2 as a 1 x 8 line (8 px, all boundary). Images 2 and 3 are background only.
    """
    masks = np.zeros((4, 10, 10), dtype=np.int64)
    masks[:2, 1:3, 1:3] = 1
    masks[:2, 5:8, 5:8] = 1
    masks[0, 9, 1:9] = 2
    return masks


def _images_for(masks: np.ndarray, channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (len(masks), channels, *masks.shape[1:])
    return (masks[:, None] * 1.0 + 0.3 * rng.normal(size=shape)).astype(np.float32)


def _error(data, **kwargs) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        profile(data, **kwargs)
    return caught.value


def _write_png_pairs(folder: Path, masks: np.ndarray, *, mask_ending: str = "_mask") -> tuple[Path, Path]:
    """RGB PNG images and 0/255 grey PNG masks (the usual binary layout), one pair per mask."""
    images, mask_folder = folder / "images", folder / "masks"
    images.mkdir()
    mask_folder.mkdir()
    for index, mask in enumerate(masks):
        grey = (40 + 150 * (mask > 0)).astype(np.uint8)
        Image.fromarray(np.stack([grey] * 3, axis=-1)).save(images / f"case{index}.png")
        Image.fromarray((mask > 0).astype(np.uint8) * 255).save(mask_folder / f"case{index}{mask_ending}.png")
    return images, mask_folder


# ----------------------------------------------------------------------------------------------------------
# Profiled facts against hand-computed values


def test_array_profile_counts_shares_objects_and_boundaries_by_hand():
    masks = _known_masks()
    profiled = profile_data((_images_for(masks), masks))
    (head,) = profiled.task.heads
    assert (head.name, head.type, head.num_classes, head.metric) == ("mask", "segmentation", 3, "dice")
    # Class 1: 13 of 100 pixels in 2 of 4 images; class 2: 8 pixels in 1 image.
    assert head.foreground_shares == pytest.approx([2 * 0.13 / 4, 0.08 / 4])
    assert head.absent_shares == pytest.approx([0.5, 0.75])
    # Object areas: class 1 [4, 9, 4, 9] px -> median 6.5 px; class 2 one line of 8 px.
    assert head.median_object_shares == pytest.approx([0.065, 0.08])
    # Boundary pixels: class 1 (4 + 8) of 13 per image; the line is all boundary.
    assert head.boundary_shares == pytest.approx([12 / 13, 1.0], abs=1e-6)
    assert profiled.task.source == "data" and profiled.task.n_samples == 4 and profiled.task.n_features == 3
    assert any("1.0 objects per image" in note for note in profiled.task.notes)  # (2 + 2 + 0 + 0) / 4
    assert profiled.features.shape == (4, 3, 10, 10) and profiled.features.dtype == np.float32
    assert np.allclose(profiled.features.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # standardised per channel
    assert np.array_equal(profiled.targets["mask"], masks)
    facts = facts_for(profiled.task, head)
    assert (facts.max_absent_share, facts.min_object_share) == (0.75, 0.065)
    assert facts.max_boundary_share == 1.0 and facts.thin_structures is True  # the 8 px line, 8% of the image


def test_image_arrays_without_channels_and_a_target_naming_the_head():
    masks = _known_masks()
    task = profile((_images_for(masks, channels=1)[:, 0], masks), target="lesion")
    assert task.heads[0].name == "lesion" and task.n_features == 1
    assert _error((_images_for(masks), masks), target=["a", "b"]).violations[0].field == "target"
    assert _error((_images_for(masks), masks), task="binary").violations[0].field == "task"


def test_one_hot_and_foreground_channel_masks_read_as_class_indices():
    masks = _known_masks()
    images = _images_for(masks)
    by_index = profile((images, masks)).heads[0]
    one_hot = np.eye(3, dtype=np.uint8)[masks].transpose(0, 3, 1, 2)  # (N, 3, H, W), channel 0 background
    assert profile((images, one_hot)).heads[0] == by_index
    foreground = one_hot[:, 1:]  # (N, 2, H, W): background where no channel is set
    task = profile((images, foreground))
    assert task.heads[0] == by_index
    assert any("one per foreground class" in note for note in task.notes)


def test_resizing_bounds_the_long_side_but_shares_use_full_resolution():
    masks = np.zeros((3, 40, 130), dtype=np.int64)
    masks[:, 10:30, 20:60] = 1  # 800 of 5,200 pixels
    profiled = profile_data((_images_for(masks), masks))
    assert profiled.features.shape == (3, 3, 20, 64)  # 130 -> 64 on the long side, 40 -> 20
    assert set(np.unique(profiled.targets["mask"])) == {0, 1}  # nearest: no blended class values
    assert profiled.task.heads[0].foreground_shares == pytest.approx([800 / 5200])
    assert any("resized to 20x64" in note for note in profiled.task.notes)


def test_sampling_caps_the_images_read_reproducibly():
    rng = np.random.default_rng(4)
    masks = (rng.random((12, 8, 8)) < 0.2).astype(np.int64)
    images = _images_for(masks)
    first = profile_data((images, masks), max_rows=5, random_state=1)
    assert first.features.shape[0] == 5 and first.task.n_samples == 12
    assert "Profiled a seeded uniform sample of 5 of 12 pairs." in first.task.notes
    again = profile_data((images, masks), max_rows=5, random_state=1)
    assert again.task == first.task and np.array_equal(again.targets["mask"], first.targets["mask"])
    other = profile_data((images, masks), max_rows=5, random_state=2)
    assert not np.array_equal(other.targets["mask"], first.targets["mask"])


# ----------------------------------------------------------------------------------------------------------
# Readers: .npz, .npy pair, folders, manifest


def test_npz_and_npy_pair_read_like_the_arrays(tmp_path):
    masks = _known_masks()
    images = _images_for(masks)
    expected = profile((images, masks)).heads
    np.savez(tmp_path / "data.npz", images=images, masks=masks)
    assert profile(tmp_path / "data.npz").heads == expected
    np.save(tmp_path / "images.npy", images)
    np.save(tmp_path / "masks.npy", masks)
    assert profile((str(tmp_path / "images.npy"), str(tmp_path / "masks.npy"))).heads == expected


def test_png_and_tiff_folders_match_by_name_and_read_0_255_masks_as_binary(tmp_path):
    masks = _known_masks()
    images, mask_folder = _write_png_pairs(tmp_path, masks)
    # One mask as a TIFF: the extension does not take part in matching.
    tiff = Image.open(mask_folder / "case1_mask.png")
    tiff.save(mask_folder / "case1_mask.tif")
    (mask_folder / "case1_mask.png").unlink()
    task = profile((images, mask_folder))
    (head,) = task.heads
    binary = (masks > 0).astype(np.int64)
    assert head == profile((_images_for(binary), binary)).heads[0]
    assert head.num_classes == 2 and head.foreground_shares == pytest.approx([(0.13 * 2 + 0.08) / 4])
    assert task.n_features == 3
    assert "Masks hold only 0 and 255: read as a binary mask (255 is class 1)." in task.notes


def test_manifest_csv_resolves_paths_relative_to_itself(tmp_path):
    masks = _known_masks()
    images, mask_folder = _write_png_pairs(tmp_path, masks)
    rows = [f"images/case{i}.png,{mask_folder.resolve() / f'case{i}_mask.png'}" for i in range(len(masks))]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("Image,Mask\n" + "\n".join(rows) + "\n")  # column names in any case; an absolute path
    assert profile(manifest).heads == profile((images, mask_folder)).heads
    assert profile(manifest, task="segmentation").heads == profile(manifest).heads


# ----------------------------------------------------------------------------------------------------------
# Errors: each names its field and what is allowed


def test_array_errors_name_the_field_the_value_and_what_is_allowed():
    masks = _known_masks()
    images = _images_for(masks)
    cases = [
        ((images[:3], masks), "masks", "3 images but 4 masks"),
        ((images[:, :, :8], masks), "masks", "each mask has its image's height and width"),
        ((images, np.where(masks == 2, 70, masks)), "masks", "class indices 0 to 63"),
        ((images, masks - 1), "masks", "values from -1"),
        ((images, masks + 0.5), "masks", "non-integer"),
        ((images.transpose(0, 2, 3, 1).repeat(3, axis=1), masks), "data", "channels-last"),
        ((images, np.zeros_like(masks)), "masks", "every mask is background"),
        ((images, np.stack([masks, masks + 1], axis=1)), "masks", "channel masks hold only 0 and 1"),
        ((images[:, 0, 0], masks), "data", "(N, C, H, W) or (N, H, W)"),
    ]
    for data, field, text in cases:
        error = _error(data)
        assert [v.field for v in error.violations] == [field], (text, str(error))
        assert text in str(error), str(error)
    assert profile((images, masks.astype(np.float32))).heads == profile((images, masks)).heads  # whole floats


def test_file_errors_name_the_files(tmp_path):
    masks = _known_masks()
    images, mask_folder = _write_png_pairs(tmp_path, masks)
    np.savez(tmp_path / "keys.npz", x=np.zeros((2, 4, 4)), y=np.zeros((2, 4, 4)))
    error = _error(tmp_path / "keys.npz")
    assert error.violations[0].field == "data" and "lacks 'images', 'masks'" in str(error)
    assert "found 'x', 'y'" in str(error)
    assert _error(images).violations[0].field == "masks"  # a folder of images alone: where are the masks?
    np.save(tmp_path / "images.npy", np.zeros((2, 4, 4)))
    error = _error(tmp_path / "images.npy")
    assert error.violations[0].field == "masks" and "give the masks .npy file too" in str(error)

    (mask_folder / "case3_mask.png").rename(mask_folder / "other.png")
    error = _error((images, mask_folder))
    assert error.violations[0].field == "masks"
    assert (
        "'case3.png'" in str(error) and "'other.png'" in str(error) and "matched by file name" in str(error)
    )
    (mask_folder / "other.png").rename(mask_folder / "case3_mask.png")

    (images / "notes.txt").write_text("not an image")
    error = _error((images, mask_folder))
    assert error.violations[0].field == "data" and "'notes.txt'" in str(error)
    (images / "notes.txt").unlink()

    (images / "case0.png").write_bytes(b"not a png")
    error = _error((images, mask_folder))
    assert "cannot read 'case0.png' as an image" in str(error)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert "holds no files" in str(_error((empty, mask_folder)))
    colour_images, colour_masks = tmp_path / "colour_images", tmp_path / "colour_masks"
    colour_images.mkdir()
    colour_masks.mkdir()
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(colour_images / "a.png")
    Image.fromarray(np.dstack([np.full((10, 10), v, np.uint8) for v in (0, 1, 2)])).save(
        colour_masks / "a.png"
    )
    assert "is a colour (RGB) image" in str(_error((colour_images, colour_masks)))

    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "image,mask\nimages/case0.png,masks/case0_mask.png\nimages/gone.png,masks/case1_mask.png\n"
    )
    error = _error(manifest)
    assert error.violations[0].field == "data" and "line 3 image 'images/gone.png'" in str(error)
    manifest.write_text("image,mask\n")
    assert "lists no images" in str(_error(manifest))
    table = tmp_path / "table.csv"
    table.write_text("a,label\n1,0\n2,1\n")
    assert "is not a manifest" in str(_error(table, task="segmentation"))


# ----------------------------------------------------------------------------------------------------------
# Rules on profiled facts


def _blobs(count: int, per_image: int, side: int = 64, empty_every: int = 0, seed: int = 0) -> np.ndarray:
    """Masks of ``per_image`` 3 x 3 squares (9 px: 0.2% of a 64 x 64 image) on a grid; every ``empty_every``-th
    mask empty."""
    masks = np.zeros((count, side, side), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for index in range(count):
        if empty_every and index % empty_every == 0:
            continue
        for cell in rng.choice(49, size=per_image, replace=False):
            row, column = divmod(int(cell), 7)
            masks[index, 2 + 9 * row : 5 + 9 * row, 2 + 9 * column : 5 + 9 * column] = 1
    return masks


def test_small_objects_and_empty_masks_fire_their_rules():
    masks = _blobs(8, per_image=12, empty_every=2)  # 108 px (2.6%) per non-empty image: not rare, but small
    task = profile((_images_for(masks), masks))
    head = task.heads[0]
    assert head.foreground_shares[0] > 0.01 and head.median_object_shares == pytest.approx(
        [9 / 4096], rel=1e-5
    )
    assert head.absent_shares == [0.5]
    found = candidates(task)
    rules = {c.rule_id for c in found} | {r for c in found for r in c.also_proposed_by}
    assert {
        "small-objects-tversky",
        "small-objects-focal-tversky",
        "rare-foreground-weighted-dice-ce",
    } <= rules
    assert {"many-empty-masks-dice-ce-skip", "many-empty-masks-dice-focal"} <= rules
    assert not rules & {"tiny-foreground-tversky", "tiny-foreground-dice"}  # foreground is not under 1%
    weighted = next(c for c in found if c.spec.loss == "dice_ce" and c.spec.params["ce_weight"])
    share = head.foreground_shares[0]
    assert weighted.spec.params["ce_weight"] == pytest.approx(
        [0.5 / (1 - share), min(0.5 / share, 10.0)], rel=1e-5
    )
    large = _blobs(8, per_image=0)
    large[:, 10:40, 10:40] = 1  # one 30 x 30 square in every image
    rules = {c.rule_id for c in candidates(profile((_images_for(large), large)))}
    assert not rules & {
        "small-objects-tversky",
        "many-empty-masks-dice-ce-skip",
        "thin-structures-dice-focal",
    }


def test_segmentation_statistics_must_fit_the_head():
    with pytest.raises(ValueError, match="absent_shares implies 2 classes but num_classes is 3"):
        Head(type="segmentation", foreground_shares=[0.1, 0.2], absent_shares=[0.5])
    with pytest.raises(ValueError, match="applies to segmentation heads"):
        Head(type="multiclass", num_classes=3, boundary_shares=[0.5, 0.5])


# ----------------------------------------------------------------------------------------------------------
# Metrics and trials


def test_overlap_per_class_by_hand():
    truth = torch.tensor([[[1, 1], [0, 2]], [[0, 0], [0, 0]]])
    predicted = torch.tensor([[[1, 0], [0, 2]], [[0, 0], [0, 0]]])
    proba = torch.nn.functional.one_hot(predicted, 3).permute(0, 3, 1, 2).double()
    # Image 0: class 1 Dice 2*1 / (1 + 2), IoU 1 / 2; class 2 exact. Image 1: both classes absent from both: 1.
    dice = metrics.overlap_per_class({"proba": proba}, truth, jaccard=False)
    iou = metrics.overlap_per_class({"proba": proba}, truth, jaccard=True)
    assert dice == pytest.approx([(2 / 3 + 1) / 2, 1.0]) and iou == pytest.approx([(1 / 2 + 1) / 2, 1.0])
    assert metrics.score("dice", {"proba": proba}, truth) == pytest.approx(np.mean(dice))
    assert metrics.score("iou", {"proba": proba}, truth) == pytest.approx(np.mean(iou))


def test_trials_cap_large_images_by_pixels():
    head = Head(type="segmentation", num_classes=2)
    x, y = np.zeros((300, 1, 64, 64), np.float32), np.zeros((300, 64, 64), np.int64)
    assert image_rows(64 * 64) == MIN_IMAGES and prepare(x, y, head, max_rows=20_000).rows == MIN_IMAGES
    assert (
        image_rows(24 * 24) == 600
        and prepare(x[:, :, :24, :24], y[:, :24, :24], head, max_rows=50).rows == 50
    )


def test_recommend_trains_on_the_users_images_and_says_so():
    rng = np.random.default_rng(7)
    masks = np.zeros((40, 16, 16), dtype=np.int64)
    for mask, (row, column) in zip(masks, rng.integers(2, 10, (40, 2)), strict=True):
        mask[row : row + 5, column : column + 5] = 1
    result = recommend((_images_for(masks, channels=1), masks), epochs=2, repeats=2, cache=False)
    (head,) = result.heads
    assert head.evidence_source == "data" and result.task.source == "data"
    assert head.repeats == 2 and head.train_rows == 28 and head.score_rows == 6  # 40 images: 70% / 15% / 15%
    assert all(c.evidence is not None and len(c.evidence.per_repeat) == 2 for c in head.candidates)
    assert "data" in head.explanation and "synthetic" not in head.explanation


def test_cache_key_follows_the_image_files(tmp_path):
    images, mask_folder = _write_png_pairs(tmp_path, _known_masks())
    arguments = {"epochs": 2}
    before = cache_key((images, mask_folder), arguments, description=False)
    assert before is not None and before == cache_key(
        (str(images), str(mask_folder)), arguments, description=False
    )
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mask_folder / "case0_mask.png")
    assert cache_key((images, mask_folder), arguments, description=False) not in (None, before)


def test_cli_recommends_from_folders_and_refuses_bad_input_in_one_line(tmp_path):
    images, mask_folder = _write_png_pairs(tmp_path, _known_masks())
    command = [sys.executable, "-m", "advisor", "recommend", str(images), "--masks", str(mask_folder)]
    done = subprocess.run([*command, "--no-trials", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["task"]["heads"][0]["type"] == "segmentation" and result["task"]["source"] == "data"
    (images / "case0.png").unlink()
    failed = subprocess.run([*command, "--no-trials"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and failed.stderr.strip().count("\n") == 0
    assert failed.stderr.startswith("error: masks:") and "'case0_mask.png'" in failed.stderr
