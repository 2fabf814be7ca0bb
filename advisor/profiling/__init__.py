"""Profile a dataset into a :class:`~advisor.task.TaskDescription`: head types, class counts, target traits.

One entry point, :func:`profile` (and :func:`profile_data`, which also returns the sampled data for trials),
for tables (a CSV file, a DataFrame, ``(X, y)``) and for segmentation data (images and masks: arrays, .npz or
.npy files, a pair of folders, a manifest CSV; see :mod:`advisor.profiling.images`), and for audio (input and
target clips: arrays, a pair of folders of WAV/FLAC files, a manifest CSV; see :mod:`advisor.profiling.audio`).
Modules: ``reading`` (tabular sources, target columns, stream sampling), ``inference`` (head types, feature
roles), ``statistics`` (target statistics and residual tests), ``tabular``, ``images`` and ``audio`` (one
profiler per kind of data, each the :class:`~advisor.profiling.common.DataReader` its head kinds name in
``advisor.heads``: the data goes to the first reader that claims it), ``common`` (the error, result and reader
types).

The traits are those of ``shared/selection.md`` ("Traits computed from a task or its data"): class histograms
(for the imbalance ratio), the outlier fraction and robust scale of a robust quick fit, count dispersion and
zero share, and a Breusch-Pagan test for heteroscedasticity.

A CSV is read in chunks, never whole: target histograms and moments are counted exactly over every row, and
everything else (column roles, the quick fit) uses a uniform bottom-k sample of at most ``max_rows`` rows.

Head types, unless the user forces one (each reason goes into ``TaskDescription.notes``):

- true/false or text values: binary with 2 distinct values, else multiclass; refused when there are over 200
  distinct values, or over 20 and more than half the rows (free text or an ID, not classes);
- numbers with a fractional part: regression;
- non-negative integers: binary with 2 distinct values, multiclass with up to 20, count above that; whole
  numbers stored as floats without missing values to explain it (``151.0``, sklearn's diabetes) with over
  20 values are taken as measurements: regression;
- integers including negatives: binary with 2 values, multiclass with up to 20, regression above that;
- several targets all 0/1: one multilabel head named ``a+b+c``; otherwise several targets give one head each;
- one text target of label sets (``"cat|dog"``, ``"a;b"``, ``"x, y"``; blank or missing: no label): one
  multilabel head named after the column, whose labels are the distinct parts, sorted. Its separator is
  ``label_separator`` when given, else the one of ``|``, ``;``, ``,`` that the most values hold (a tie goes to
  that order). ``task="multilabel"`` or a ``label_separator`` always splits; otherwise the values are label sets
  only when the separator is in at least 10% of the non-missing values and the distinct labels are fewer than
  the distinct values (label sets recombine few labels; ``"New York, NY"``-style values each add a new part,
  so they stay classes, as does a column where a separator is rare). A note says which was read, and how to
  override it. At most 200 labels (the text class limit).

Every multilabel head states its label cardinality (the mean labels per row, the sum of its positive rates)
and the share of rows without a label.

Segmentation heads state per foreground class the mean pixel share, the share of images without the class,
the median object area (4-connected components) and the share of pixels on a boundary. Audio heads state the
sample rate, the median duration, the inputs' RMS level, the inputs' SNR against their targets and the
targets' spectral centroid and bandwidth.

Example::

    from advisor.profiling import profile
    task = profile("client_examples/data/churn.csv", target="churned")
    task.heads[0].class_histogram  # [2643, 357]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from advisor.heads import head_kind, head_kinds, resolve
from advisor.profiling.common import (
    DataReader,
    ProfiledData,
    ProfileError,
    ProfileRequest,
    _error,
    check_label_separator,
    check_options,
    forceable_tasks,
)
from advisor.profiling.reading import CHUNK_CELLS, TARGET_NAMES
from advisor.profiling.reading import (
    _BottomKSampler as _BottomKSampler,  # re-exported: the tests sample with it
)
from advisor.task import TaskDescription

__all__ = ["TARGET_NAMES", "ProfileError", "ProfiledData", "forceable_tasks", "profile", "profile_data"]
# The entry points pass this module's CHUNK_CELLS down, read at call time: setting
# advisor.profiling.CHUNK_CELLS (the tests shrink it to cross many chunks) takes effect.

Data = str | Path | pd.DataFrame | tuple[Any, Any]


def profile(
    data: Data,
    *,
    target: str | Sequence[str] | None = None,
    task: str | None = None,
    max_rows: int = 200_000,
    random_state: int | None = 0,
    sample_rate: int | None = None,
    label_separator: str | None = None,
) -> TaskDescription:
    """Profile data into a :class:`~advisor.task.TaskDescription` (``source="data"``).

    Parameters
    ----------
    data : str, pathlib.Path, pandas.DataFrame or tuple
        A table: a CSV file (read in chunks, never whole; the separator is sniffed from the header), a frame,
        or arrays ``(X, y)``: X of shape (n_samples, n_features), y of shape (n_samples,) or
        (n_samples, n_targets). Or segmentation data: arrays ``(images, masks)`` (images (N, C, H, W) or
        (N, H, W); masks (N, H, W) class indices or (N, K, H, W) 0/1 channels, overlapping ones making a head
        with ``overlapping_classes``), an .npz file with arrays
        ``images`` and ``masks``, a pair of .npy files, a pair of folders of PNG/TIFF images and masks matched
        by file name, or a manifest CSV with ``image`` and ``mask`` columns. Or audio data (see
        :mod:`advisor.profiling.audio`): arrays ``(inputs, targets)`` of (N, T) or (N, C, T) floats with
        ``sample_rate``, a pair of folders of WAV/FLAC inputs and targets matched by file name, or a manifest
        CSV with ``input`` and ``target`` columns.
    target : str, list of str or None
        Target column(s). None takes the one column named target, label, labels, y, class or outcome
        (case-insensitively). With (X, y) data it names the y columns instead; with segmentation data the
        head (default ``"mask"``; audio ``"audio"``). A named target makes a CSV a table even when it has image
        and mask (or input and target) columns.
    task : {"regression", "binary", "multiclass", "count", "ordinal", "multilabel", "segmentation", "audio"} or None
        Force the head type instead of inferring it ("ordinal" is never inferred; "segmentation" and "audio"
        read a CSV as a manifest).
    max_rows : int
        Rows sampled (uniformly) for column roles and the quick fit; class counts and target moments
        always use every row. Segmentation: image/mask pairs read, at most 2,000 (a seeded sample beyond).
    random_state : int or None
        Seed of the row (or image) sample and of the quick-fit subsample; the same seed gives the same profile.
    sample_rate : int or None
        Audio: the rate of arrays in Hz (required for them, and it marks arrays as audio); for files the rate
        they must have (they say their own). Audio clips read: at most 512 pairs (a seeded sample beyond).
    label_separator : str or None
        Tables: the separator of a single text target of label sets (``"|"`` for ``"cat|dog"``); given, the
        target is split into one multilabel head. None sniffs it among ``|``, ``;`` and ``,`` when the target
        is split (see the module docstring for when).

    Returns
    -------
    TaskDescription
        One head per target (one multilabel head for several 0/1 targets or for a delimited label column, with
        its labels, positive rates and label cardinality), with class histograms or a
        :class:`~advisor.task.TargetSummary`, or one segmentation head with per-class shares; ``notes`` says
        what was inferred, dropped and sampled.

    Raises
    ------
    ProfileError
        No obvious target, an unknown target column, an empty or unreadable file, a single-class or
        free-text target, a ``task`` the target cannot have, a label column of over 200 labels, or a bad
        option; for segmentation data missing
        keys or columns, mismatched counts, sizes or file names, or mask values that are not class indices;
        for audio data unmatched names, mixed sample rates, a pair whose lengths or channels differ, or
        non-finite samples. Each names its field.
    """
    request = _request(data, target, task, max_rows, random_state, sample_rate, label_separator)
    reader = _reader(request)
    return reader.task(request) if reader.task is not None else reader.read(request).task


def profile_data(
    data: Data,
    *,
    target: str | Sequence[str] | None = None,
    task: str | None = None,
    max_rows: int = 200_000,
    random_state: int | None = 0,
    sample_rate: int | None = None,
    label_separator: str | None = None,
) -> ProfiledData:
    """:func:`profile`, plus the sampled rows (or images and masks) encoded for trial fits.

    Parameters and errors as for :func:`profile`.
    """
    request = _request(data, target, task, max_rows, random_state, sample_rate, label_separator)
    return _reader(request).read(request)


def _request(
    data: Data,
    target: Any,
    task: str | None,
    max_rows: int,
    random_state: int | None,
    sample_rate: int | None,
    label_separator: str | None,
) -> ProfileRequest:
    check_options(task, max_rows)
    check_label_separator(label_separator, task)
    return ProfileRequest(
        data, target, task, max_rows, random_state, sample_rate, chunk_cells=CHUNK_CELLS,
        label_separator=label_separator,
    )  # fmt: skip


def _reader(request: ProfileRequest) -> DataReader:
    """The first reader, in their order, of the registered head kinds that claims the data (the table reader
    claims any); a label separator only goes to the reader of multilabel heads."""
    named = dict.fromkeys(kind.reader for kind in head_kinds() if kind.reader is not None)
    readers: list[DataReader] = sorted((resolve(reference) for reference in named), key=lambda r: r.order)
    reader = next(reader for reader in readers if reader.claims(request))
    if request.label_separator is not None and reader is not resolve(head_kind("multilabel").reader):
        raise _error(
            "label_separator", "splits a table's label column; this data is not a table (images and masks, "
            "or audio clips)",
        )  # fmt: skip
    return reader
