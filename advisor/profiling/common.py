"""What every profiler shares: the error type and its helpers, the forceable task names, the result type, and
the reader type each kind of data has."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advisor.errors import AdvisorError, FieldViolation
from advisor.heads import head_kinds
from advisor.task import TaskDescription

# A label separator is a character or a short string (such as " | " or "//").
MAX_SEPARATOR_LENGTH = 8


class ProfileError(AdvisorError):
    """Data that cannot be profiled: no target to use, an unreadable file, a single class, a bad option."""


def _error(field_name: str, description: str) -> ProfileError:
    return ProfileError(FieldViolation(field_name, description))


def _listing(names: Sequence[str], limit: int = 30) -> str:
    """Names for an error message, shortened when there are very many."""
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def forceable_tasks() -> tuple[str, ...]:
    """The head types a ``task=`` may force: those whose kind has a data reader."""
    return tuple(kind.name for kind in head_kinds() if kind.reader is not None)


def check_options(task: str | None, max_rows: Any) -> None:
    """The options every profiler takes: a known ``task`` (or None) and a positive ``max_rows``."""
    if task is not None and task not in forceable_tasks():
        raise _error("task", f"unknown task {task!r}; expected one of {', '.join(forceable_tasks())} or None")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise _error("max_rows", f"expected a positive integer, got {max_rows!r}")


def check_label_separator(label_separator: Any, task: str | None) -> None:
    """A ``label_separator`` is None (sniffed when a label column is split) or a non-empty string of at most
    :data:`MAX_SEPARATOR_LENGTH` characters, and it goes with ``task`` None or "multilabel"."""
    if label_separator is None:
        return
    if not isinstance(label_separator, str) or not 1 <= len(label_separator) <= MAX_SEPARATOR_LENGTH:
        raise _error(
            "label_separator",
            f"got {label_separator!r}; expected a string of 1 to {MAX_SEPARATOR_LENGTH} characters (such as "
            "'|', ';' or ','), or None to sniff it",
        )
    if task not in (None, "multilabel"):
        raise _error(
            "label_separator",
            f"splits a label column into label sets (a multilabel head), so it excludes task={task!r}; drop "
            "one of them",
        )


@dataclass(frozen=True)
class ProfiledData:
    """A profile together with the sampled rows it was computed from, encoded for training.

    Tables: ``features`` are the sampled rows as standardized numeric columns and one-hot levels (float32);
    ``targets`` maps each head name to its targets for those rows: class indices into the head's
    ``class_labels``, an (n, L) 0/1 matrix of its ``class_labels`` (multilabel) or numbers. Images: ``features``
    are the sampled images (N, C, H, W) float32, standardized per channel, and the segmentation head's targets
    their masks (N, H, W) of int64 class indices. Audio: ``features`` are the input clips (N, 1, T) float32, mono, and the audio head's
    targets their target clips alike (see :mod:`advisor.profiling.audio`).
    """

    task: TaskDescription
    features: np.ndarray
    targets: dict[str, np.ndarray]


@dataclass(frozen=True)
class ProfileRequest:
    """What :func:`advisor.profiling.profile` was given, as every reader sees it (the options checked)."""

    data: Any
    target: Any
    task: str | None
    max_rows: int
    random_state: int | None
    sample_rate: int | None
    chunk_cells: int  # tables: the cells of each CSV chunk read
    label_separator: str | None = None  # tables: the separator of a delimited label column


@dataclass(frozen=True)
class DataReader:
    """How the profiler reads one kind of data; each head kind names its reader (``HeadKind.reader``).

    :func:`advisor.profiling.profile` asks the readers in ``order`` (lowest first) whether the data is theirs
    (``claims``) and profiles it with the first that says so: a reader whose test would also take another's
    data is asked after it, and the table reader, which takes anything, last. ``read`` profiles the data with
    its sample encoded for trials; ``task``, when given, profiles it alone, skipping that work.
    """

    order: int
    claims: Callable[[ProfileRequest], bool]
    read: Callable[[ProfileRequest], ProfiledData]
    task: Callable[[ProfileRequest], TaskDescription] | None = None


def files_by_stem(folder: Path, suffixes: tuple[str, ...], field_name: str, *, kind: str, partner: str,
                  why: str = "") -> dict[str, Path]:  # fmt: skip
    """A folder's files by name without the extension (how pairs are matched across two folders); hidden
    files are skipped, an empty folder, files of another kind (``kind``: "images", "audio") and two files of one
    stem are refused, naming ``field_name``. ``partner`` names what the stems match ("images and masks");
    ``why`` explains a refused suffix."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise _error(field_name, f"folder {str(folder)!r} holds no files")
    other = [p.name for p in files if p.suffix.lower() not in suffixes]
    if other:
        raise _error(
            field_name, f"folder {str(folder)!r} holds files that are not {'/'.join(suffixes)} {kind}{why}: "
            f"{_listing(other, 5)}",
        )  # fmt: skip
    by_stem: dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise _error(
                field_name, f"folder {str(folder)!r} holds {by_stem[path.stem].name!r} and {path.name!r}: names "
                f"must differ without the extension, which is how {partner} are matched",
            )  # fmt: skip
        by_stem[path.stem] = path
    return by_stem
