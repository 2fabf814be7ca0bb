"""Segmentation data: images with their masks, read with bounded work and profiled into a segmentation head.

Sources, besides the tables the tabular profiler reads:

- arrays ``(images, masks)``: images (N, C, H, W) or (N, H, W); masks (N, H, W) of class indices, or
  (N, K, H, W) of 0/1 channels: one-hot when every pixel is in exactly one channel (K classes, channel 0
  the background), one channel per foreground class when no pixel is in two (K + 1 classes, background where
  none is set), else multi-label (a pixel in several channels): a head with ``overlapping_classes``, whose K
  channels stay channels, each a foreground class counted on its own;
- a ``.npz`` file holding arrays ``images`` and ``masks``, or a pair of ``.npy`` files ``(images, masks)``;
- a pair of folders ``(images/, masks/)`` of PNG or TIFF files (JPEG too for images, never for masks: its
  compression changes class indices), matched by file name without the extension; a mask's name may add
  ``_mask`` (``a.png`` and ``a_mask.png``);
- a manifest CSV with ``image`` and ``mask`` columns of file paths (relative ones relative to the CSV).

Mask values are class indices 0..K-1, 0 the background; masks holding only 0 and 255 (the usual binary PNG)
are read as 0 and 1. A mask file is one image of class indices, so folders and manifests always give exclusive
classes: overlapping classes come only as (N, K, H, W) channel arrays (in memory, .npz or .npy).

Work is bounded: at most :data:`MAX_IMAGES` pairs are read (a seeded uniform sample beyond that); pixel shares
and absences are counted at full resolution, objects and boundaries on masks of at most :data:`STATS_SIDE`
pixels a side, and the images and masks handed to trials are resized to at most :data:`MAX_SIDE` pixels on
the long side (images bilinear, masks nearest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.profiling.common import DataReader, ProfiledData, ProfileRequest, _error, _listing, files_by_stem
from advisor.profiling.reading import _sniff_separator
from advisor.task import Head, TaskDescription

# Pairs read at most: enough for stable per-class shares and object statistics; reading and labelling 2,000
# images of 512 x 512 takes seconds, and the trials use far fewer.
MAX_IMAGES = 2_000
# Long side of the images and masks handed to trials. The trial net is a small two-level U-Net, trained for
# every candidate and repeat: at 64 px an image costs 4,096 pixels a step (7x the synthetic 24 x 24 images),
# while objects of a few percent of the image stay several pixels wide.
MAX_SIDE = 64
# Long side of the masks that objects and boundaries are measured on: connected components of 2,000 masks at
# this size take about a second, and only objects under 1 / 65,536 of the image are lost to the resizing.
STATS_SIDE = 256
# Classes a mask may index: every class is one output channel of every trial member.
MAX_MASK_CLASSES = 64
# Channels an image may have (more is a channels-last array or not an image).
MAX_CHANNELS = 16
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
MASK_SUFFIXES = (".png", ".tif", ".tiff")
# What a mask file's name may add to its image's name.
MASK_NAME_ENDINGS = ("_mask", "-mask", "_masks", "_label", "_labels", "_seg", "_gt")
MANIFEST_COLUMNS = ("image", "mask")
ARRAY_KEYS = ("images", "masks")
HEAD_NAME = "mask"
BINARY_255 = 255  # the foreground value of a 0/255 binary mask


@dataclass(frozen=True)
class ImagePairs:
    """The sampled image/mask pairs of a source, read one at a time.

    ``load(i)`` gives pair i (a source index) as an image (C, H, W) float32 and a mask (H, W) of integers, or
    (K, H, W) 0/1 channels when ``overlapping``; ``size(i)`` its (H, W) without reading pixels; ``name(i)`` what
    errors call it.
    """

    origin: str
    total: int
    indices: np.ndarray
    load: Callable[[int], tuple[np.ndarray, np.ndarray]]
    size: Callable[[int], tuple[int, int]]
    name: Callable[[int], str]
    files: tuple[Path, ...] = ()
    notes: list[str] = field(default_factory=list)
    overlapping: bool = False  # multi-label channel masks (a pixel may be in several classes)

    def checked_mask(self, mask: np.ndarray, image: np.ndarray, name: str) -> np.ndarray:
        """A loaded mask, checked against its image: (K, H, W) bool channels when ``overlapping`` (checked as
        arrays when the source was opened), else (H, W) int64 class indices as stored (a 0/255 mask keeps
        BINARY_255)."""
        return np.asarray(mask, bool) if self.overlapping else _checked_mask(mask, image, name)


# ----------------------------------------------------------------------------------------------------------
# Recognising a segmentation source


def _is_path(value: Any) -> bool:
    return isinstance(value, str | Path)


def _manifest_columns(path: Path) -> dict[str, str] | None:
    """The manifest's image and mask column names (by lowercase name) when the CSV header has both."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            header = handle.readline()
        columns = pd.read_csv(path, nrows=0, sep=_sniff_separator(header)).columns
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None  # not readable as CSV text: the tabular reader says why
    found = {str(name).strip().lower(): str(name) for name in columns}
    return {key: found[key] for key in MANIFEST_COLUMNS} if set(MANIFEST_COLUMNS) <= set(found) else None


def is_segmentation_source(data: Any, target: Any, task: str | None) -> bool:
    """Whether ``data`` is images and masks rather than a table.

    Images and masks are: ``task="segmentation"``; a pair whose first item is a path (two folders or two .npy
    files) or either item has 3 or more dimensions (a table's X and y have at most 2); an ``.npz`` file, a
    folder or a ``.npy`` file; a CSV with ``image`` and ``mask`` columns when no target is named.

    Parameters
    ----------
    data : any
        What :func:`advisor.profiling.profile` was given.
    target : str, list of str or None
        A named target makes a CSV a table.
    task : str or None
        ``"segmentation"`` makes any data images and masks (and errors say what does not fit).
    """
    if task == "segmentation":
        return True
    if isinstance(data, tuple | list) and len(data) == 2:
        try:
            return _is_path(data[0]) or np.ndim(data[0]) >= 3 or np.ndim(data[1]) >= 3
        except ValueError:  # a ragged nested list: the tabular reader says what is wrong
            return False
    if _is_path(data):
        path = Path(data)
        if path.is_dir() or path.suffix.lower() in (".npz", ".npy"):
            return True
        return target is None and path.is_file() and _manifest_columns(path) is not None
    return False


def open_pairs(data: Any, max_images: int, rng: np.random.Generator) -> ImagePairs:
    """The image/mask pairs of a segmentation source (see the module docstring), sampled to ``max_images``.

    Parameters
    ----------
    data : tuple (images, masks) of arrays, .npy paths or folders; an .npz or manifest CSV path
    max_images : int
        Pairs read at most; beyond that a uniform sample drawn from ``rng``.
    rng : numpy.random.Generator

    Raises
    ------
    ProfileError
        A missing or unreadable file, missing keys or columns, mismatched counts, sizes or names.
    """
    if isinstance(data, tuple | list) and len(data) == 2:
        images, masks = data
        if _is_path(images) and _is_path(masks):
            return _path_pairs(Path(images), Path(masks), max_images, rng)
        if _is_path(images) or _is_path(masks):
            raise _error("data", "give images and masks alike: two arrays, two .npy files or two folders")
        return _array_pairs(images, masks, "arrays", max_images, rng)
    if not _is_path(data):
        raise _error(
            "data",
            "segmentation data is (images, masks) arrays, an .npz file, a pair of .npy files or folders, or a "
            f"manifest CSV; got {type(data).__name__}",
        )
    path = Path(data)
    if path.is_dir():
        raise _error(
            "masks", f"{str(path)!r} is a folder of images: give its masks folder too ((images, masks) in "
            "Python, --masks on the command line)",
        )  # fmt: skip
    if not path.is_file():
        raise _error("data", f"no such file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz_pairs(path, max_images, rng)
    if suffix == ".npy":
        raise _error(
            "masks", f"{str(path)!r} holds one array: give the masks .npy file too, as (images, masks)"
        )
    columns = _manifest_columns(path)
    if columns is None:
        raise _error(
            "data", f"{str(path)!r} is not a manifest: a segmentation CSV has columns "
            f"{', '.join(MANIFEST_COLUMNS)} (file paths)",
        )  # fmt: skip
    return _manifest_pairs(path, columns, max_images, rng)


def _sample(total: int, max_images: int, rng: np.random.Generator) -> np.ndarray:
    """Source indices of a uniform sample of at most ``max_images`` pairs, in source order."""
    if total <= max_images:
        return np.arange(total)
    if max_images == 0:  # only the files are wanted (source_files)
        return np.arange(0)
    return np.sort(rng.choice(total, size=max_images, replace=False))


def source_files(data: Any) -> list[Path] | None:
    """The files a path-based segmentation source reads (for the result cache's key); None for anything else
    (a table, or arrays, which the cache hashes itself). Listing them reads no pixels."""
    if not is_segmentation_source(data, None, None):
        return None
    if isinstance(data, tuple | list):
        if not (_is_path(data[0]) and _is_path(data[1])):
            return None
        if any(Path(p).suffix.lower() == ".npy" for p in data):
            return [Path(p) for p in data]
    elif Path(data).suffix.lower() == ".npz":
        return [Path(data)]
    return list(open_pairs(data, max_images=0, rng=np.random.default_rng(0)).files)


# ----------------------------------------------------------------------------------------------------------
# Arrays


def _as_array(value: Any, field_name: str) -> np.ndarray:
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise _error(field_name, f"expected numbers, got an array of dtype {array.dtype}")
    return array


def _array_pairs(
    images: Any, masks: Any, origin: str, max_images: int, rng: np.random.Generator
) -> ImagePairs:
    """Pairs from arrays (in memory or memory-mapped .npy files): checked for shape, then sampled."""
    images, masks = _as_array(images, "data"), _as_array(masks, "masks")
    if images.ndim not in (3, 4):
        raise _error("data", f"images must be (N, C, H, W) or (N, H, W), got shape {images.shape}")
    if images.ndim == 4 and images.shape[1] > MAX_CHANNELS:
        hint = "; it looks channels-last: pass images.transpose(0, 3, 1, 2)" if images.shape[3] <= 4 else ""
        raise _error(
            "data", f"images of shape {images.shape} have {images.shape[1]} channels, at most {MAX_CHANNELS} "
            f"are allowed{hint}",
        )  # fmt: skip
    if masks.ndim not in (3, 4):
        raise _error(
            "masks",
            f"masks must be (N, H, W) class indices or (N, K, H, W) 0/1 channels, got shape {masks.shape}",
        )
    if len(images) != len(masks):
        raise _error("masks", f"{len(images):,} images but {len(masks):,} masks; give one mask per image")
    if len(images) == 0:
        raise _error("data", "no images: the arrays are empty")
    if images.shape[-2:] != masks.shape[-2:]:
        raise _error(
            "masks", f"masks of shape {masks.shape} do not fit images of shape {images.shape}: each mask has "
            "its image's height and width",
        )  # fmt: skip
    indices = _sample(len(images), max_images, rng)
    notes: list[str] = []
    to_indices = _channel_decoder(masks, indices, notes) if masks.ndim == 4 else None
    overlapping = masks.ndim == 4 and to_indices is None

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = np.asarray(images[i]), np.asarray(masks[i])
        if to_indices is not None:
            mask = to_indices(mask)
        return _scaled(image[None] if image.ndim == 2 else image), mask

    size = (int(images.shape[-2]), int(images.shape[-1]))
    return ImagePairs(
        origin, len(images), indices, load, lambda i: size, lambda i: f"image {i}", notes=notes,
        overlapping=overlapping,
    )  # fmt: skip


def _channel_decoder(
    masks: np.ndarray, indices: np.ndarray, notes: list[str]
) -> Callable[[np.ndarray], np.ndarray] | None:
    """How (K, H, W) 0/1 channel masks become class indices, decided over the sampled masks (whose values it
    checks): one-hot when every pixel is in exactly one channel, one channel per foreground class when none is
    in two; None when a pixel is in several channels (multi-label): the channels stay channels."""
    channels = masks.shape[1]
    one_hot, overlapping = channels > 1, False
    for i in indices:
        mask = np.asarray(masks[i])
        values = np.unique(mask)
        if not np.isin(values, (0, 1)).all():
            shown = ", ".join(f"{v:g}" for v in values[~np.isin(values, (0, 1))][:5])
            raise _error(
                "masks", f"mask {i} of shape (N, K, H, W) holds values {shown}; channel masks hold only 0 and 1 "
                "(or pass (N, H, W) class indices)",
            )  # fmt: skip
        counts = mask.sum(0)
        overlapping |= bool(counts.max() > 1)
        one_hot &= bool(counts.min() == 1)
    if overlapping:
        if channels > MAX_MASK_CLASSES:
            raise _error(
                "masks", f"masks of shape {masks.shape} have {channels} overlapping channels; allowed: at most "
                f"{MAX_MASK_CLASSES} (each is an output channel of every trial member)",
            )  # fmt: skip
        notes.append(
            f"Masks hold {channels} overlapping 0/1 channels (multi-label: a pixel may be in several): each channel "
            "is a foreground class with its own sigmoid, and there is no background class."
        )
        return None
    if one_hot:
        notes.append(f"Masks are one-hot over {channels} channels: channel 0 is the background.")
        return lambda mask: mask.argmax(0)
    notes.append(
        f"Masks hold {channels} 0/1 channel(s), one per foreground class: class 0 is the background (no channel)."
    )
    return lambda mask: np.where(mask.any(0), mask.argmax(0) + 1, 0)


def _npz_pairs(path: Path, max_images: int, rng: np.random.Generator) -> ImagePairs:
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARRAY_KEYS if key not in archive.files]
            if missing:
                found = _listing(archive.files) or "none"
                raise _error(
                    "data", f"{path.name!r} lacks {_listing(missing)}: an .npz file holds arrays named "
                    f"{' and '.join(ARRAY_KEYS)}; found {found}",
                )  # fmt: skip
            images, masks = archive["images"], archive["masks"]
    except (OSError, ValueError) as exc:  # not a zip archive, or an object array that needs pickle
        raise _error("data", f"cannot read {path.name!r} as an .npz file: {exc}") from None
    pairs = _array_pairs(images, masks, repr(path.name), max_images, rng)
    return replace(pairs, files=(path,))


def _load_npy(path: Path, field_name: str) -> np.ndarray:
    if not path.is_file():
        raise _error(field_name, f"no such file: {str(path)!r}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)  # memory-mapped: only sampled images are read
    except (OSError, ValueError) as exc:
        raise _error(field_name, f"cannot read {path.name!r} as a .npy array: {exc}") from None


# ----------------------------------------------------------------------------------------------------------
# Image files


def _path_pairs(images: Path, masks: Path, max_images: int, rng: np.random.Generator) -> ImagePairs:
    if images.suffix.lower() == ".npy" or masks.suffix.lower() == ".npy":
        origin = f"{images.name!r} and {masks.name!r}"
        pairs = _array_pairs(_load_npy(images, "data"), _load_npy(masks, "masks"), origin, max_images, rng)
        return replace(pairs, files=(images, masks))
    for field_name, folder in (("data", images), ("masks", masks)):
        if not folder.is_dir():
            raise _error(
                field_name,
                f"no such folder: {str(folder)!r} (a pair of paths is two folders or two .npy files)",
            )
    image_files = _folder_files(images, IMAGE_SUFFIXES, "data")
    mask_files = _folder_files(masks, MASK_SUFFIXES, "masks")
    matched = _match_names(image_files, mask_files, images, masks)
    return _file_pairs(matched, f"folders {str(images)!r} and {str(masks)!r}", max_images, rng)


def _folder_files(folder: Path, suffixes: tuple[str, ...], field_name: str) -> dict[str, Path]:
    """Image files of a folder by name without the extension (:func:`files_by_stem`)."""
    why = " (JPEG compression changes class indices)" if field_name == "masks" else ""
    return files_by_stem(folder, suffixes, field_name, kind="images", partner="images and masks", why=why)


def _image_stem(mask_stem: str, images: dict[str, Path]) -> str:
    """The image name a mask name matches: itself, or itself less an ending such as _mask."""
    if mask_stem in images:
        return mask_stem
    for ending in MASK_NAME_ENDINGS:
        if mask_stem.endswith(ending) and mask_stem[: -len(ending)] in images:
            return mask_stem[: -len(ending)]
    return mask_stem


def _match_names(
    images: dict[str, Path], masks: dict[str, Path], image_folder: Path, mask_folder: Path
) -> list[tuple[Path, Path]]:
    """(image, mask) pairs matched by name without the extension (the mask's may end in _mask, _label...)."""
    by_image: dict[str, Path] = {}
    for stem, path in masks.items():
        base = _image_stem(stem, images)
        if base in by_image:
            raise _error(
                "masks", f"{by_image[base].name!r} and {path.name!r} in {str(mask_folder)!r} both match the "
                f"image {images[base].name!r}: give each image one mask",
            )  # fmt: skip
        by_image[base] = path
    lonely_images = sorted(path.name for stem, path in images.items() if stem not in by_image)
    lonely_masks = sorted(path.name for stem, path in by_image.items() if stem not in images)
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(
                f"{len(lonely_images):,} images in {str(image_folder)!r} have no mask ({_listing(lonely_images, 5)})"
            )
        if lonely_masks:
            parts.append(
                f"{len(lonely_masks):,} masks in {str(mask_folder)!r} have no image ({_listing(lonely_masks, 5)})"
            )
        raise _error(
            "masks", "; ".join(parts) + ". Images and masks are matched by file name without the extension (a "
            f"mask's name may end in {', '.join(MASK_NAME_ENDINGS)})",
        )  # fmt: skip
    return [(images[stem], by_image[stem]) for stem in sorted(images)]


def _manifest_pairs(
    path: Path, columns: dict[str, str], max_images: int, rng: np.random.Generator
) -> ImagePairs:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        separator = _sniff_separator(handle.readline())
    frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, skipinitialspace=True)
    if frame.empty:
        raise _error("data", f"manifest {path.name!r} lists no images (a header and no rows)")
    pairs, missing = [], []
    for row, (image, mask) in enumerate(
        zip(frame[columns["image"]], frame[columns["mask"]], strict=True), start=2
    ):
        resolved = []
        for value, column in ((image, "image"), (mask, "mask")):
            file = Path(value.strip())
            file = file if file.is_absolute() else path.parent / file
            if not value.strip() or not file.is_file():
                missing.append(f"line {row} {column} {value.strip()!r}")
            resolved.append(file)
        pairs.append((resolved[0], resolved[1]))
    if missing:
        raise _error(
            "data", f"manifest {path.name!r} names {len(missing):,} missing files: {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''} (relative paths are relative to the manifest's folder)",
        )  # fmt: skip
    for file, column in [(file, "image") for file, _ in pairs] + [(file, "mask") for _, file in pairs]:
        allowed = IMAGE_SUFFIXES if column == "image" else MASK_SUFFIXES
        if file.suffix.lower() not in allowed:
            raise _error(
                "data", f"manifest {path.name!r}: {column} {file.name!r} is not a {'/'.join(allowed)} file"
            )
    found = _file_pairs(pairs, f"manifest {path.name!r}", max_images, rng)
    return replace(found, files=(path, *found.files))


def _file_pairs(
    pairs: Sequence[tuple[Path, Path]], origin: str, max_images: int, rng: np.random.Generator
) -> ImagePairs:
    indices = _sample(len(pairs), max_images, rng)

    def load(i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, mask_path = pairs[i]
        return _scaled(_image_file(image_path)), _mask_file(mask_path)

    def size(i: int) -> tuple[int, int]:
        return _file_size(pairs[i][0], "data")

    files = tuple(f for pair in pairs for f in pair)
    return ImagePairs(origin, len(pairs), indices, load, size, lambda i: pairs[i][0].name, files)


def _open_image(path: Path, field_name: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (OSError, UnidentifiedImageError) as exc:
        raise _error(field_name, f"cannot read {path.name!r} as an image: {exc}") from None


def _file_size(path: Path, field_name: str) -> tuple[int, int]:
    with _open_image(path, field_name) as image:
        width, height = image.size
    return height, width


def _image_file(path: Path) -> np.ndarray:
    """An image file as (C, H, W): palette and other colour modes become RGB, 1-bit becomes grey, and an alpha
    channel is dropped (it says how to composite the image, not what it shows)."""
    with _open_image(path, "data") as image:
        if image.mode in ("P", "PA", "RGBA", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGB")
        elif image.mode in ("1", "LA"):
            image = image.convert("L")
        try:
            array = np.asarray(image)
        except (OSError, ValueError) as exc:  # a truncated file fails when its pixels are decoded
            raise _error("data", f"cannot read {path.name!r} as an image: {exc}") from None
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def _mask_file(path: Path) -> np.ndarray:
    """A mask file as (H, W) values: palette images give their indices; an RGB mask must be grey (R = G = B)."""
    with _open_image(path, "masks") as image:
        try:
            array = np.asarray(image)
        except (OSError, ValueError) as exc:
            raise _error("masks", f"cannot read {path.name!r} as an image: {exc}") from None
        mode = image.mode
    if array.ndim == 3 and mode in ("LA", "PA"):  # grey or palette indices with an alpha channel
        array = array[..., 0]
    if array.ndim == 3:
        colour = array[..., :3]
        if not (colour == colour[..., :1]).all():
            raise _error(
                "masks", f"{path.name!r} is a colour ({mode}) image: a mask is one channel of class indices "
                "(grey or palette PNG/TIFF), 0 the background",
            )  # fmt: skip
        array = colour[..., 0]
    return array


# ----------------------------------------------------------------------------------------------------------
# Reading and measuring the pairs


def _scaled(image: np.ndarray) -> np.ndarray:
    """8- and 16-bit intensities to [0, 1]; other numbers as they are (standardised later anyway)."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535
    return image.astype(np.float32)


def _resized(array: np.ndarray, shape: tuple[int, int], *, nearest: bool) -> np.ndarray:
    """(C, H, W) resized to ``shape``: bilinear with antialiasing for images, nearest for masks."""
    if array.shape[-2:] == shape:
        return array
    import torch  # loaded here: profiling a table needs no torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    if nearest:
        out = F.interpolate(tensor, size=shape, mode="nearest-exact")
    else:
        out = F.interpolate(tensor, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return out[0].numpy()


def _bounded(shape: tuple[int, int], side: int) -> tuple[int, int]:
    """``shape`` scaled down (never up) so that its long side is at most ``side``."""
    scale = min(1.0, side / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another class (the image border is not a boundary)."""
    edge = np.zeros(mask.shape, dtype=bool)
    vertical = mask[1:] != mask[:-1]
    edge[1:] |= vertical
    edge[:-1] |= vertical
    horizontal = mask[:, 1:] != mask[:, :-1]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


@dataclass
class _ClassTally:
    """What the sampled masks show of one raw mask value."""

    shares: list[float] = field(default_factory=list)  # pixel share in each image (0 where absent)
    objects: list[int] = field(default_factory=list)  # connected components in each image
    areas: list[float] = field(default_factory=list)  # every object's area, as a share of its image
    boundary: int = 0  # pixels on a boundary, at the statistics resolution
    pixels: int = 0  # pixels, at the statistics resolution


@dataclass
class _Read:
    images: np.ndarray  # (n, C, h, w) float32 at the trial shape
    masks: np.ndarray  # (n, h, w) raw values, or (n, K, h, w) 0/1 overlapping channels, at the trial shape
    tallies: dict[int, _ClassTally]
    sizes: list[tuple[int, int]]


def _checked_mask(mask: np.ndarray, image: np.ndarray, name: str) -> np.ndarray:
    if mask.ndim != 2:
        raise _error("masks", f"the mask of {name} has shape {mask.shape}; a mask is (H, W) class indices")
    if mask.shape != image.shape[-2:]:
        raise _error(
            "masks", f"the mask of {name} is {mask.shape[0]}x{mask.shape[1]} but the image is "
            f"{image.shape[-2]}x{image.shape[-1]} (height x width): they must match",
        )  # fmt: skip
    if mask.dtype.kind == "f" and (not np.isfinite(mask).all() or not (mask == np.round(mask)).all()):
        raise _error(
            "masks", f"the mask of {name} holds non-integer values; masks hold class indices 0, 1, ... (for "
            "audio clips (inputs, targets) of shape (N, T) or (N, C, T), pass sample_rate=)",
        )  # fmt: skip
    if mask.dtype.kind == "b":
        mask = mask.astype(np.uint8)
    low, high = mask.min(), mask.max()
    if low < 0 or high > BINARY_255:
        raise _error(
            "masks", f"the mask of {name} holds values from {low:g} to {high:g}; allowed: class indices 0 to "
            f"{MAX_MASK_CLASSES - 1} (0 the background), or 0 and 255 for a binary mask",
        )  # fmt: skip
    return mask.astype(np.int64)


def _class_planes(mask: np.ndarray, overlapping: bool) -> list[tuple[int, float, np.ndarray, np.ndarray]]:
    """The foreground classes of one checked mask ((H, W) values, or (K, H, W) channels when ``overlapping``),
    each as (raw value or channel, pixel share at full resolution, its pixels and the boundary pixels at most
    STATS_SIDE a side).

    A class's boundary is where a 4-neighbour is not of the class: for exclusive classes one edge map of the
    whole mask serves every class; an overlapping channel gets its own, as a neighbour may be in it and another.
    """
    stats_shape = _bounded(mask.shape[-2:], STATS_SIDE)
    if overlapping:
        stats = _resized(mask.astype(np.float32), stats_shape, nearest=True) > 0.5
        pixels = mask.reshape(len(mask), -1).sum(1)
        return [
            (int(k), pixels[k] / mask[k].size, stats[k], _boundary(stats[k])) for k in np.flatnonzero(pixels)
        ]
    counts = np.bincount(mask.ravel(), minlength=BINARY_255 + 1)
    stats_mask = _resized(mask[None], stats_shape, nearest=True)[0].astype(np.int64)
    edge = _boundary(stats_mask)
    present = np.flatnonzero(counts)
    return [(int(v), counts[v] / mask.size, stats_mask == v, edge) for v in present[present > 0]]


def _read(pairs: ImagePairs) -> _Read:
    """Load every sampled pair once: check it, count its classes at full resolution, measure objects and
    boundaries at most STATS_SIDE a side, and keep it resized to the common trial shape."""
    from scipy import ndimage

    sizes = [pairs.size(int(i)) for i in pairs.indices]
    median = (int(np.median([s[0] for s in sizes])), int(np.median([s[1] for s in sizes])))
    shape = _bounded(median, MAX_SIDE)
    images, masks, channels = [], [], None
    tallies: dict[int, _ClassTally] = {}
    for count, i in enumerate(pairs.indices):
        raw_image, raw_mask = pairs.load(int(i))
        name = pairs.name(int(i))
        if raw_image.ndim != 3:
            raise _error("data", f"{name} has shape {raw_image.shape}; an image is (C, H, W) or (H, W)")
        if not np.isfinite(raw_image).all():
            raise _error("data", f"{name} holds NaN or infinite values")
        if channels is None:
            channels = raw_image.shape[0]
        elif raw_image.shape[0] != channels:
            raise _error(
                "data", f"{name} has {raw_image.shape[0]} channels, {pairs.name(int(pairs.indices[0]))} has "
                f"{channels}: every image needs the same channels",
            )  # fmt: skip
        mask = pairs.checked_mask(raw_mask, raw_image, name)
        for value, share, inside, edge in _class_planes(mask, pairs.overlapping):
            tally = tallies.setdefault(value, _ClassTally())
            tally.shares.extend([0.0] * (count - len(tally.shares)))  # the images before it had none
            tally.shares.append(float(share))
            labels, found = ndimage.label(inside)
            tally.objects.extend([0] * (count - len(tally.objects)))
            tally.objects.append(found)
            tally.areas.extend((np.bincount(labels.ravel())[1:] / inside.size).tolist())
            tally.boundary += int((edge & inside).sum())
            tally.pixels += int(inside.sum())
        images.append(_resized(raw_image, shape, nearest=False))
        layers = mask if pairs.overlapping else mask[None]
        trial_mask = _resized(layers.astype(np.float32), shape, nearest=True).astype(np.int64)
        masks.append(trial_mask if pairs.overlapping else trial_mask[0])
        del raw_image, raw_mask, mask, layers  # full-resolution arrays: keep one at a time
    read_count = len(pairs.indices)
    for tally in tallies.values():
        tally.shares.extend([0.0] * (read_count - len(tally.shares)))
        tally.objects.extend([0] * (read_count - len(tally.objects)))
    return _Read(np.stack(images), np.stack(masks), tallies, sizes)


def _class_values(tallies: dict[int, _ClassTally], notes: list[str]) -> tuple[dict[int, int], int]:
    """(raw value -> class index, number of classes): 0/255 masks become 0/1, other values are the classes."""
    values = sorted(tallies)
    if not values:
        raise _error("masks", "every mask is background (0) only: there is no foreground class to segment")
    if values == [BINARY_255]:
        notes.append("Masks hold only 0 and 255: read as a binary mask (255 is class 1).")
        return {BINARY_255: 1}, 2
    if values[-1] >= MAX_MASK_CLASSES:
        raise _error(
            "masks", f"masks hold the values {_listing([str(v) for v in values], 10)}; allowed: class indices 0 "
            f"to {MAX_MASK_CLASSES - 1} (0 the background), or only 0 and 255 for a binary mask; an ignore "
            "label such as 255 is not supported: give those pixels a class",
        )  # fmt: skip
    classes = values[-1] + 1
    never = [c for c in range(1, classes) if c not in tallies]
    if never:
        notes.append(f"Classes {never} never occur in the sampled masks; they keep their indices.")
    return {v: v for v in values}, max(classes, 2)


def _rounded(values: list[float]) -> list[float]:
    """Six significant digits: a profile reads as a description a person could have written."""
    return [float(f"{v:.6g}") for v in values]


def _percent(share: float) -> str:
    return f"{share:.2%}" if share < 0.1 else f"{share:.0%}"


def profile_images(pairs: ImagePairs, *, head_name: str = HEAD_NAME) -> ProfiledData:
    """Profile the pairs into a task with one segmentation head, and keep the images for trials.

    Parameters
    ----------
    pairs : ImagePairs
        From :func:`open_pairs`.
    head_name : str
        Name of the segmentation head.

    Returns
    -------
    ProfiledData
        ``task``: one segmentation head with per-class foreground, absent, median object and boundary shares
        (per channel, and ``overlapping_classes``, for multi-label channel masks);
        ``features``: the sampled images (n, C, h, w) float32 at the trial shape, standardised per channel;
        ``targets[head_name]``: their masks (n, h, w) int64 class indices, or (n, K, h, w) int64 0/1 channels
        for multi-label masks.
    """
    notes = [f"Segmentation data from {pairs.origin}: {pairs.total:,} image/mask pairs."]
    if len(pairs.indices) < pairs.total:
        notes.append(f"Profiled a seeded uniform sample of {len(pairs.indices):,} of {pairs.total:,} pairs.")
    notes.extend(pairs.notes)
    read = _read(pairs)
    if pairs.overlapping:  # every channel is a foreground class: no background, no values to map
        classes, first = read.masks.shape[1], 0
        by_class = read.tallies
    else:
        mapping, classes = _class_values(read.tallies, notes)
        first = 1
        by_class = {mapping[value]: tally for value, tally in read.tallies.items()}
    heights, widths = [s[0] for s in read.sizes], [s[1] for s in read.sizes]
    channels, height, width = read.images.shape[1:]
    sizes = (
        f"{heights[0]}x{widths[0]}"
        if len(set(read.sizes)) == 1
        else f"from {min(heights)}x{min(widths)} to {max(heights)}x{max(widths)} (height x width)"
    )
    notes.append(
        f"Images: {channels} channel(s), {sizes} pixels; trials see them resized to {height}x{width} (long side at "
        f"most {MAX_SIDE}; images bilinear, masks nearest)."
    )
    empty = _ClassTally(shares=[0.0] * len(read.sizes), objects=[0] * len(read.sizes))
    statistics: dict[str, list[float]] = {"foreground": [], "absent": [], "object": [], "boundary": []}
    for c in range(first, classes):
        tally = by_class.get(c, empty)
        shares = np.asarray(tally.shares)
        statistics["foreground"].append(float(shares.mean()))
        statistics["absent"].append(float((shares == 0).mean()))
        statistics["object"].append(float(np.median(tally.areas)) if tally.areas else 0.0)
        statistics["boundary"].append(tally.boundary / tally.pixels if tally.pixels else 0.0)
        if tally.areas:
            low, high = np.quantile(tally.areas, [0.1, 0.9])
            notes.append(
                f"{'Channel' if pairs.overlapping else 'Class'} {c}: {_percent(statistics['foreground'][-1])} of "
                f"pixels; absent from "
                f"{statistics['absent'][-1]:.0%} of images; {np.mean(tally.objects):.1f} objects per image, median "
                f"area {_percent(statistics['object'][-1])} of the image (10-90%: {_percent(low)} to "
                f"{_percent(high)}); {statistics['boundary'][-1]:.0%} of its pixels on a boundary."
            )
    notes.append(
        f"Objects are 4-connected components and boundaries 4-neighbours of another class, measured on masks of "
        f"at most {STATS_SIDE} px a side; pixel shares and absences at full resolution."
    )
    head = Head(
        name=head_name,
        type="segmentation",
        num_classes=classes,
        foreground_shares=_rounded(statistics["foreground"]),
        absent_shares=_rounded(statistics["absent"]),
        median_object_shares=_rounded(statistics["object"]),
        boundary_shares=_rounded(statistics["boundary"]),
        overlapping_classes=pairs.overlapping,
    )
    task = TaskDescription(
        heads=[head], n_samples=pairs.total, n_features=channels, source="data", notes=notes
    )
    if pairs.overlapping:
        return ProfiledData(task, _standardised(read.images), {head_name: read.masks})
    lookup = np.zeros(BINARY_255 + 1, dtype=np.int64)
    for value, c in mapping.items():
        lookup[value] = c
    return ProfiledData(task, _standardised(read.images), {head_name: lookup[read.masks]})


def _standardised(images: np.ndarray) -> np.ndarray:
    """Each channel to mean 0 and standard deviation 1 over the sampled images (as the tabular features are)."""
    mean = images.mean(axis=(0, 2, 3), keepdims=True)
    spread = images.std(axis=(0, 2, 3), keepdims=True)
    return ((images - mean) / np.where(spread > 0, spread, 1.0)).astype(np.float32)


def _profile(request: ProfileRequest) -> ProfiledData:
    if request.task not in (None, "segmentation"):
        raise _error(
            "task", f"task={request.task!r} does not fit images and masks; use 'segmentation' or None"
        )
    target = request.target
    if target is not None and not (isinstance(target, str) and target):
        raise _error("target", f"segmentation data has one head: name it with a string, got {target!r}")
    rng = np.random.default_rng(request.random_state)
    return profile_images(
        open_pairs(request.data, min(request.max_rows, MAX_IMAGES), rng), head_name=target or HEAD_NAME
    )


# The reader of the segmentation head kind: asked before the table reader, after audio's, whose (N, C, T) arrays
# would also pass for images.
READER = DataReader(order=1, claims=lambda r: is_segmentation_source(r.data, r.target, r.task), read=_profile)
