"""Reading tabular data: a CSV file or bytes streamed in chunks, a DataFrame, or (X, y) arrays; the target
columns; a uniform sample of the stream."""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from advisor.profiling.common import _error, _listing

# Column names taken as the target when the user names none (compared case-insensitively).
TARGET_NAMES = ("target", "label", "labels", "y", "class", "outcome")
# Cells read per CSV chunk (rows = cells / columns): bounds memory whatever the width.
CHUNK_CELLS = 3_000_000
# Extra values treated as missing in CSVs besides pandas' defaults ("", "NA", "NaN", "null", ...).
EXTRA_NA_VALUES = ("?",)


# ----------------------------------------------------------------------------------------------------------
# Reading the data as a stream of chunks


@dataclass
class _Source:
    """Column names plus a way to stream the rows as DataFrame chunks."""

    columns: list[str]
    chunks: Iterable[pd.DataFrame]
    default_targets: list[str] | None = None  # the y columns of (X, y) data


def _open_source(data: Any, target: str | Sequence[str] | None, *, chunk_cells: int = CHUNK_CELLS) -> _Source:
    """Turn any supported ``data`` into a :class:`_Source`.

    Parameters
    ----------
    data : str, Path, DataFrame or tuple (X, y)
        What :func:`profile` was given.
    target : str, list of str or None
        Only used with ``(X, y)`` data, where it names the y columns.
    chunk_cells : int
        Cells per CSV chunk.
    """
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.is_file():
            raise _error("data", f"no such file: {str(path)!r}")
        return _csv_source(path, repr(str(path)), chunk_cells)
    if isinstance(data, io.BufferedIOBase | io.RawIOBase):
        return _csv_source(data, "the CSV bytes", chunk_cells)
    if isinstance(data, pd.DataFrame):
        frame = data.rename(columns=str)
        _check_unique_columns(list(frame.columns))
        return _Source(list(frame.columns), [frame.reset_index(drop=True)])
    if isinstance(data, tuple | list) and len(data) == 2:
        frame, targets = _frame_from_arrays(data[0], data[1], target)
        return _Source(list(frame.columns), [frame], default_targets=targets)
    raise _error(
        "data",
        f"expected a CSV path, a pandas DataFrame or a tuple (X, y), got {type(data).__name__}",
    )


def _check_unique_columns(columns: list[str]) -> None:
    repeated = sorted(name for name, count in Counter(columns).items() if count > 1)
    if repeated:
        raise _error("data", f"column names must be unique, repeated: {_listing(repeated)}")


# Leading bytes of binary formats people save with a .csv name (or send as CSV bytes), and what to do instead.
_BINARY_FORMATS = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive", "save it as CSV, or read it with "
     "pandas.read_excel and pass the DataFrame"),
    (b"\xd0\xcf\x11\xe0", "a legacy Excel workbook (.xls)", "save it as CSV, or read it with pandas.read_excel "
     "and pass the DataFrame"),
    (b"PAR1", "a Parquet file", "read it with pandas.read_parquet and pass the DataFrame (Arrow IPC over gRPC)"),
    (b"ARROW1", "an Arrow IPC file", "read it with pyarrow and pass the DataFrame (arrow_ipc over gRPC)"),
)  # fmt: skip
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def _csv_source(source: Path | IO[bytes], label: str, chunk_cells: int) -> _Source:
    """Read the header now and stream the rows later, in chunks of about ``chunk_cells`` cells.

    ``source`` is a path or a binary file object (the service's uploaded bytes): both go through this one
    reader, with the same separator sniffing, missing-value markers and tolerance of stray bytes.
    """
    compressed = isinstance(source, Path) and source.suffix.lower() in _COMPRESSED
    head = b"" if compressed else _head_bytes(source)
    for magic, kind, instead in _BINARY_FORMATS:
        if head.startswith(magic):
            raise _error("data", f"{label} is {kind}, not CSV text: {instead}")
    if b"\x00" in head:
        raise _error("data", f"{label} holds NUL bytes: binary data, not CSV text")
    text = head.decode("utf-8", errors="replace")
    options: dict[str, Any] = {
        "sep": "," if compressed else _sniff_separator(text),
        "na_values": list(EXTRA_NA_VALUES),
        "skipinitialspace": True,
        "index_col": False,
        # A stray byte in a different encoding (latin-1 text) should not stop the profile of a large file.
        "encoding_errors": "replace",
    }
    try:
        header = pd.read_csv(_rewound(source), nrows=0, **options)
    except pd.errors.EmptyDataError:
        raise _error("data", f"{label} is empty: no header row and no data") from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _error("data", f"cannot read {label} as CSV: {exc}") from None
    columns = [str(name).strip() for name in header.columns]
    _check_unique_columns(columns)
    rows_per_chunk = max(1_000, chunk_cells // max(len(columns), 1))
    return _Source(columns, _csv_chunks(source, label, columns, rows_per_chunk, options))


def _head_bytes(source: Path | IO[bytes], size: int = 64 * 1024) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as handle:
            return handle.read(size)
    return _rewound(source).read(size)


def _rewound(source: Path | IO[bytes]) -> Path | IO[bytes]:
    """A path as it is; a file object back at its start (it is read once for the header, once for rows)."""
    if not isinstance(source, Path):
        source.seek(0)
    return source


def _csv_chunks(
    source: Path | IO[bytes], label: str, columns: list[str], rows: int, options: dict[str, Any]
) -> Iterator[pd.DataFrame]:
    try:
        with pd.read_csv(_rewound(source), chunksize=rows, **options) as reader:
            for chunk in reader:
                chunk.columns = columns
                yield chunk
    except pd.errors.ParserError as exc:
        raise _error("data", f"malformed CSV {label}: {exc}") from None


def _sniff_separator(text: str) -> str:
    """The most frequent of , ; tab | in the header line (',' for a single column)."""
    header = text.split("\n", 1)[0]
    counts = {separator: header.count(separator) for separator in (",", ";", "\t", "|")}
    best = max(counts, key=lambda separator: counts[separator])
    return best if counts[best] > 0 else ","


def _frame_from_arrays(
    features: Any, targets: Any, target: str | Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    """One frame from ``(X, y)``; feature columns keep DataFrame names or become x0, x1, ...

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    targets : array-like of shape (n_samples,) or (n_samples, n_targets)
    target : str, list of str or None
        Names for the y columns; by default the Series/DataFrame names, else ``target`` or ``target0, ...``.
    """
    if isinstance(features, pd.DataFrame):
        feature_frame = features.rename(columns=str).reset_index(drop=True)
    else:
        array = np.asarray(features)
        if array.ndim != 2:
            raise _error("data", f"X must be 2-D (rows, features), got shape {array.shape}")
        feature_frame = pd.DataFrame(array, columns=[f"x{index}" for index in range(array.shape[1])])
    if isinstance(targets, pd.Series):
        target_frame = targets.to_frame(name=str(targets.name) if targets.name is not None else "target")
    elif isinstance(targets, pd.DataFrame):
        target_frame = targets.rename(columns=str)
    else:
        array = np.asarray(targets)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1:
            target_frame = pd.DataFrame({"target": array})
        elif array.ndim == 2:
            target_frame = pd.DataFrame(array, columns=[f"target{index}" for index in range(array.shape[1])])
        else:
            raise _error("data", f"y must be 1-D or 2-D, got shape {array.shape}")
    target_frame = target_frame.reset_index(drop=True)
    if target is not None:
        names = [target] if isinstance(target, str) else list(target)
        if len(names) != target_frame.shape[1]:
            raise _error("target", f"got {len(names)} names for {target_frame.shape[1]} y columns")
        target_frame.columns = [str(name) for name in names]
    if len(feature_frame) != len(target_frame):
        raise _error("data", f"X has {len(feature_frame)} rows but y has {len(target_frame)}")
    clashes = sorted(set(feature_frame.columns) & set(target_frame.columns))
    if clashes:
        raise _error("target", f"y column names clash with X columns: {_listing(clashes)}")
    frame = pd.concat([feature_frame, target_frame], axis=1)
    _check_unique_columns(list(frame.columns))
    return frame, list(target_frame.columns)


def _resolve_targets(target: str | Sequence[str] | None, source: _Source, notes: list[str]) -> list[str]:
    """The target columns: as given, the y of (X, y), or the one column named like a target."""
    if source.default_targets is not None:
        return source.default_targets
    hint = "pass target= (Python) or --target (CLI) to name the target column"
    if target is None:
        candidates = [name for name in source.columns if name.strip().lower() in TARGET_NAMES]
        if len(candidates) != 1:
            found = (
                f"several columns are named like a target ({_listing(candidates)})"
                if candidates
                else "no column is named like a target (" + ", ".join(TARGET_NAMES) + ")"
            )
            raise _error("target", f"{found}; {hint}; columns are {_listing(source.columns)}")
        notes.append(f"Target column {candidates[0]!r} inferred from its name.")
        return candidates
    names = [target] if isinstance(target, str) else list(target)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise _error("target", f"expected a column name or a non-empty list of names, got {target!r}")
    if len(set(names)) != len(names):
        raise _error("target", f"target columns repeat: {names}")
    missing = [name for name in names if name not in source.columns]
    if missing:
        raise _error(
            "target", f"no column {_listing(missing)} in the data; columns are {_listing(source.columns)}"
        )
    return names


# ----------------------------------------------------------------------------------------------------------
# Uniform sampling of a stream


class _BottomKSampler:
    """A uniform sample of at most ``capacity`` rows: each row draws a random key, the smallest keys stay.

    Parameters
    ----------
    capacity : int
        Rows kept.
    rng : numpy.random.Generator
        Source of the keys; the same seed gives the same sample.
    """

    def __init__(self, capacity: int, rng: np.random.Generator) -> None:
        self.capacity = capacity
        self.rng = rng
        self.threshold = math.inf  # once full, only rows with a key below the kept maximum can enter
        self._frames: list[pd.DataFrame] = []
        self._keys: list[np.ndarray] = []
        self._buffered = 0

    def offer(self, chunk: pd.DataFrame) -> None:
        keys = self.rng.random(len(chunk))
        candidates = keys < self.threshold
        if not candidates.all():
            chunk, keys = chunk[candidates], keys[candidates]
        if len(chunk):
            self._frames.append(chunk)
            self._keys.append(keys)
            self._buffered += len(chunk)
        # Compact now and then rather than per chunk: concatenation is the expensive step.
        if self._buffered > self.capacity * 3 // 2:
            self._compact()

    def _compact(self) -> None:
        if len(self._frames) <= 1 and self._buffered <= self.capacity:
            return
        frame = pd.concat(self._frames) if len(self._frames) > 1 else self._frames[0]
        keys = np.concatenate(self._keys)
        if len(keys) > self.capacity:
            # Sorting the chosen positions keeps the rows in file order.
            chosen = np.sort(np.argpartition(keys, self.capacity - 1)[: self.capacity])
            frame, keys = frame.iloc[chosen], keys[chosen]
            self.threshold = float(keys.max())
        self._frames, self._keys, self._buffered = [frame], [keys], len(keys)

    def sample(self) -> pd.DataFrame:
        self._compact()
        return self._frames[0].reset_index(drop=True)

    def merged(self, other: _BottomKSampler) -> pd.DataFrame:
        """A uniform sample of at most ``capacity`` rows of both streams: the smallest keys of the two kept
        sets are the smallest of all rows, as the keys of both are uniform. Rows keep their stream order by
        their index (the row's position in the source, which the chunks of one source number throughout)."""
        self._compact()
        other._compact()
        frame = pd.concat([self._frames[0], other._frames[0]])
        keys = np.concatenate([self._keys[0], other._keys[0]])
        if len(keys) > self.capacity:
            chosen = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            frame = frame.iloc[chosen]
        return frame.sort_index(kind="stable").reset_index(drop=True)
