"""NumPy .npz datasets (``Dataset.npz``): images and masks, or audio inputs and targets, never unpickled.

The servicer checks an archive from its array headers alone (keys, dtypes, shapes, uncompressed size), with the
profiler's own shape and dtype rules, before the call takes a worker; the worker then loads the arrays
(:func:`load`) and profiles them as ``advisor.recommend((images, masks))`` or ``((inputs, targets),
sample_rate=...)`` would.
"""

from __future__ import annotations

import io
import lzma
import math
import zipfile
import zlib
from typing import Any

import numpy as np

from advisor.errors import AdvisorError, FieldViolation

FIELD = "dataset.npz"
RATE_FIELD = "dataset.sample_rate"
# The arrays of each kind of npz dataset, by key, in the order the profiler takes them.
KEYS = {"segmentation": ("images", "masks"), "audio": ("inputs", "targets")}
# The arrays may take at most this many times the dataset limit uncompressed: a few MiB of deflated zeros
# would otherwise expand to gigabytes in the worker.
EXPANSION = 8
_ALLOWED = (
    "exactly images and masks (segmentation) or exactly inputs and targets (audio, with dataset.sample_rate)"
)

# What reading a damaged archive raises: zipfile BadZipFile (no zip), NotImplementedError (an unknown compression
# method), RuntimeError (an encrypted member); a damaged member's data zlib.error, lzma.LZMAError, OSError (bz2,
# a bad CRC) or EOFError; numpy ValueError (a damaged .npy header, data shorter than its header says).
_UNREADABLE = (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError, OSError, EOFError,
               ValueError)  # fmt: skip

Headers = dict[str, tuple[tuple[int, ...], np.dtype]]


def _refused(description: str, field: str = FIELD) -> AdvisorError:
    return AdvisorError(FieldViolation(field, description))


def _wrong_keys(keys: list[str]) -> AdvisorError:
    shown = sorted(keys)
    listed = ", ".join(repr(key) for key in shown[:10]) + (
        f", ... ({len(shown) - 10} more)" if len(shown) > 10 else ""
    )
    return _refused(f"holds {listed or 'no arrays'}; allowed: {_ALLOWED}")


def headers(content: bytes) -> Headers:
    """Shape and dtype of every array in the archive, read from the .npy headers (no array data is read)."""
    found: Headers = {}
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = archive.infolist()
            if len(members) > max(len(keys) for keys in KEYS.values()):  # refused before any header is read
                raise _wrong_keys([info.filename.removesuffix(".npy") for info in members])
            for info in members:
                if not info.filename.endswith(".npy"):
                    raise _refused(f"member {info.filename!r} is not a .npy array; an .npz archive holds arrays "
                                   f"written by numpy.savez or numpy.savez_compressed: {_ALLOWED}")  # fmt: skip
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                    else:  # 3.0 exists only for structured dtypes with non-ASCII field names: never numbers
                        raise _refused(f"array {info.filename[:-4]!r} has .npy format {version}; send numeric "
                                       "arrays (formats 1.0 and 2.0)")  # fmt: skip
                if any(side < 0 for side in shape):  # numpy's header check lets a negative side through
                    raise _refused(f"array {info.filename[:-4]!r} has shape {shape}: a damaged header")
                found[info.filename[:-4]] = (tuple(shape), dtype)
    except AdvisorError:  # a ValueError too: the refusals above go as they are
        raise
    except _UNREADABLE as exc:
        raise _refused(
            f"not a readable .npz archive (numpy.savez or numpy.savez_compressed): {exc}"
        ) from None
    return found


def expanded_bytes(found: Headers) -> int:
    """The bytes the arrays take once loaded."""
    return sum(math.prod(shape) * dtype.itemsize for shape, dtype in found.values())


def kind_of(found: Headers, sample_rate: int | None) -> str:
    """``"segmentation"`` or ``"audio"`` for an archive whose headers pass the profiler's shape and dtype
    checks; :class:`AdvisorError` (or the profiler's ``ProfileError``, naming its own fields) otherwise."""
    kind = next((kind for kind, keys in KEYS.items() if set(found) == set(keys)), None)
    if kind is None:
        raise _wrong_keys(list(found))
    for key, (_, dtype) in found.items():
        if dtype.hasobject:
            raise _refused(f"array {key!r} holds Python objects (dtype {dtype}), which only unpickling could read; "
                           "the service never unpickles client data: send numeric arrays")  # fmt: skip
    if kind == "audio" and sample_rate is None:
        raise _refused("required for audio clips (inputs and targets): their sample rate in Hz", RATE_FIELD)
    if kind == "segmentation" and sample_rate is not None:
        raise _refused("applies to audio clips (inputs and targets), not to images and masks", RATE_FIELD)
    # Arrays of the right shape and dtype that hold nothing (zero strides): the profiler checks them as it
    # checks the real ones, and reads no pixel or sample when asked to sample none.
    views = tuple(np.broadcast_to(np.zeros((), found[key][1]), found[key][0]) for key in KEYS[kind])
    from advisor.profiling.audio import open_audio
    from advisor.profiling.images import open_pairs

    if kind == "segmentation":
        open_pairs(views, 0, np.random.default_rng(0))
    else:
        open_audio(views, 0, np.random.default_rng(0), sample_rate)
    return kind


def load(content: bytes, kind: str) -> tuple[Any, Any]:
    """The archive's arrays in the order ``recommend()`` takes them, loaded without unpickling."""
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as archive:
            return tuple(archive[key] for key in KEYS[kind])
    except _UNREADABLE as exc:  # a damaged member fails only when its data is read
        raise _refused(f"cannot read the arrays: {exc}") from None


def pack(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz archive of ``arrays`` (deflated: masks and silence compress well)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
