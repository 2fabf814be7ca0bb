"""Audio data: input clips with their target clips (enhancement, separation, effects), read with bounded work and
profiled into an audio head.

Sources:

- arrays ``(inputs, targets)`` of floats, (N, T) or (N, C, T), with the rate given as ``sample_rate``;
- a pair of folders ``(inputs/, targets/)`` of WAV or FLAC files matched by file name without the extension
  (``noisy/a.wav`` with ``clean/a.flac``);
- a manifest CSV with ``input`` and ``target`` columns of file paths (relative ones relative to the CSV).

Each target is aligned with its input sample by sample: a pair must have the same length, channels and rate.
Channels are mixed to mono (their mean) for the statistics and the trials, since an audio trial member has one
output channel. Every clip must have the same sample rate: nothing is resampled, and mixed rates are refused.

Work is bounded: at most :data:`MAX_CLIPS` pairs are read (a seeded uniform sample beyond that); durations come
from the file headers, the statistics from the centred :data:`PROFILE_SECONDS` of each clip, and the clips
handed to trials are cropped (centred; shorter clips zero-padded at the end) to the median duration clamped to
:data:`MIN_TRIAL_SECONDS` .. :data:`MAX_TRIAL_SECONDS`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from advisor.heads import AUDIO_TRIAL_SECONDS
from advisor.profiling.common import DataReader, ProfiledData, ProfileRequest, _error, _listing, files_by_stem
from advisor.profiling.images import _is_path, _sample
from advisor.profiling.reading import _sniff_separator
from advisor.task import MAX_DBFS, MAX_SAMPLE_RATE, MAX_SNR_DB, MIN_DBFS, Head, TaskDescription

# Pairs read at most: enough for stable medians of level, SNR and spectrum; trials use far fewer (see
# advisor.trials.audio.clip_rows).
MAX_CLIPS = 512
# Seconds of each clip the statistics read (the centred window): 512 clips of 2 x 2 s at 48 kHz decode in a few
# seconds, and a level or spectrum changes little past a couple of seconds of a recording.
PROFILE_SECONDS = 2.0
# Trial clips are at most this long: a trial trains every candidate and repeat for every epoch, and half a second
# still holds dozens of frames of the largest STFT resolution the rules derive (about 0.12 s at any rate).
MAX_TRIAL_SECONDS = 0.5
# ... and at least this long, the synthetic clips' length (advisor.heads.AUDIO_TRIAL_SECONDS says why).
MIN_TRIAL_SECONDS = AUDIO_TRIAL_SECONDS
# Channels a clip may have (more is a channels-last array, or not audio).
MAX_CHANNELS = 64
AUDIO_SUFFIXES = (".wav", ".flac")
MANIFEST_COLUMNS = ("input", "target")
HEAD_NAME = "audio"
# Fields the errors name: the inputs are the data; the targets are --target-audio on the command line.
INPUT_FIELD, TARGET_FIELD = "data", "target_audio"


class ClipInfo(NamedTuple):
    """What a clip's header says: its sample rate (Hz), length (samples per channel) and channels."""

    rate: int
    frames: int
    channels: int


@dataclass(frozen=True)
class AudioPairs:
    """The sampled input/target pairs of a source, read one at a time.

    ``info(i)`` gives pair i's (input, target) :class:`ClipInfo` without reading samples; ``load(i, start,
    frames)`` that window of both as (C, frames) float32 arrays; ``name(i)`` what errors call it;
    ``stated_rate`` the rate the user gave (the clips must have it).
    """

    origin: str
    total: int
    indices: np.ndarray
    info: Callable[[int], tuple[ClipInfo, ClipInfo]]
    load: Callable[[int, int, int], tuple[np.ndarray, np.ndarray]]
    name: Callable[[int], str]
    files: tuple[Path, ...] = ()
    stated_rate: int | None = None


# ----------------------------------------------------------------------------------------------------------
# Recognising an audio source


def _has_audio_file(folder: Path) -> bool:
    return any(p.suffix.lower() in AUDIO_SUFFIXES for p in folder.iterdir() if not p.name.startswith("."))


def _manifest_columns(path: Path, *, audio_first: bool) -> dict[str, str] | None:
    """The manifest's input and target column names (by lowercase name) when the header has both and, with
    ``audio_first``, the first row's input names a WAV or FLAC file (a table may have columns called input and
    target too: only a forced ``task="audio"`` reads such a CSV as a manifest without that)."""
    try:
        with path.open("r", encoding="utf-8", errors="replace") as handle:
            separator = _sniff_separator(handle.readline())
        frame = pd.read_csv(path, nrows=1, sep=separator, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None  # not readable as CSV text: the tabular reader says why
    found = {str(name).strip().lower(): str(name) for name in frame.columns}
    if not set(MANIFEST_COLUMNS) <= set(found):
        return None
    first = str(frame[found["input"]].iloc[0]).strip().lower() if len(frame) else ""
    if audio_first and not first.endswith(AUDIO_SUFFIXES):
        return None
    return {key: found[key] for key in MANIFEST_COLUMNS}


def is_audio_source(data: Any, target: Any, task: str | None, sample_rate: int | None) -> bool:
    """Whether ``data`` is audio clips rather than a table or images.

    Audio is: ``task="audio"``, or a ``sample_rate`` given (arrays say nothing of their rate); unless another
    task is forced, a folder holding WAV/FLAC files (alone or as the first of a pair), or a CSV with ``input``
    and ``target`` columns whose first input is a WAV/FLAC file, when no target is named.
    """
    if task == "audio" or sample_rate is not None:
        return True
    if task is not None:
        return False
    first = data[0] if isinstance(data, tuple | list) and len(data) == 2 else data
    if not _is_path(first):
        return False
    path = Path(first)
    if path.is_dir():
        return _has_audio_file(path)
    return (
        first is data
        and target is None
        and path.is_file()
        and _manifest_columns(path, audio_first=True) is not None
    )


def open_audio(data: Any, max_clips: int, rng: np.random.Generator, sample_rate: int | None) -> AudioPairs:
    """The input/target pairs of an audio source (see the module docstring), sampled to ``max_clips``.

    Parameters
    ----------
    data : tuple (inputs, targets) of arrays or folders, or a manifest CSV path
    max_clips : int
        Pairs read at most; beyond that a uniform sample drawn from ``rng``.
    rng : numpy.random.Generator
    sample_rate : int or None
        The rate of arrays (required for them); for files, when given, the rate they must have.

    Raises
    ------
    ProfileError
        A missing folder or file, unmatched names, a manifest without its columns, arrays of the wrong shape or
        type, or a missing or bad ``sample_rate``.
    """
    if sample_rate is not None:
        whole = isinstance(sample_rate, numbers.Integral) and not isinstance(sample_rate, bool)
        if not (whole and 0 < sample_rate <= MAX_SAMPLE_RATE):
            raise _error(
                "sample_rate", f"got {sample_rate!r}; an integer number of Hz from 1 to {MAX_SAMPLE_RATE:,}"
            )
        sample_rate = int(sample_rate)  # a NumPy integer too
    if isinstance(data, tuple | list) and len(data) == 2:
        inputs, targets = data
        if _is_path(inputs) and _is_path(targets):
            return _folder_pairs(Path(inputs), Path(targets), max_clips, rng, sample_rate)
        if _is_path(inputs) or _is_path(targets):
            raise _error(INPUT_FIELD, "give inputs and targets alike: two arrays or two folders")
        if sample_rate is None:
            raise _error("sample_rate", "arrays do not say their sample rate: pass sample_rate=, in Hz")
        return _array_pairs(inputs, targets, sample_rate, max_clips, rng)
    if not _is_path(data):
        raise _error(
            INPUT_FIELD, "audio data is (inputs, targets) arrays with sample_rate=, a pair of folders of WAV/FLAC "
            f"files, or a manifest CSV with columns {', '.join(MANIFEST_COLUMNS)}; got {type(data).__name__}",
        )  # fmt: skip
    path = Path(data)
    if path.is_dir():
        raise _error(
            TARGET_FIELD, f"{str(path)!r} is a folder of inputs: give its folder of targets too ((inputs, "
            "targets) in Python, --target-audio on the command line)",
        )  # fmt: skip
    if not path.is_file():
        raise _error(INPUT_FIELD, f"no such file or folder: {str(path)!r}")
    columns = _manifest_columns(path, audio_first=False)
    if columns is None:
        raise _error(
            INPUT_FIELD, f"{str(path)!r} is not an audio manifest: a CSV with columns "
            f"{', '.join(MANIFEST_COLUMNS)} of WAV/FLAC file paths",
        )  # fmt: skip
    return _manifest_pairs(path, columns, max_clips, rng, sample_rate)


def source_files(data: Any) -> list[Path] | None:
    """The files a path-based audio source reads (for the result cache's key); None for anything else. Listing
    them reads no samples."""
    if not is_audio_source(data, None, None, None):
        return None
    return list(open_audio(data, 0, np.random.default_rng(0), None).files)


# ----------------------------------------------------------------------------------------------------------
# Arrays


def _as_clips(value: Any, field_name: str) -> np.ndarray:
    """(N, C, T) floats from (N, T) or (N, C, T)."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind != "f":
        raise _error(
            field_name, f"expected floating-point samples (full scale 1.0), got an array of dtype {array.dtype}"
            + ("; divide 16-bit integers by 32768" if array.dtype == np.int16 else ""),
        )  # fmt: skip
    if array.ndim not in (2, 3):
        raise _error(field_name, f"clips must be (N, T) or (N, C, T) samples, got shape {array.shape}")
    if array.ndim == 3 and array.shape[1] > MAX_CHANNELS:
        hint = (
            "; it looks channels-last: pass clips.transpose(0, 2, 1)"
            if array.shape[2] <= MAX_CHANNELS
            else ""
        )
        raise _error(
            field_name, f"clips of shape {array.shape} have {array.shape[1]:,} channels, at most {MAX_CHANNELS} "
            f"are allowed{hint}",
        )  # fmt: skip
    return array[:, None] if array.ndim == 2 else array


def _array_pairs(
    inputs: Any, targets: Any, sample_rate: int, max_clips: int, rng: np.random.Generator
) -> AudioPairs:
    inputs, targets = _as_clips(inputs, INPUT_FIELD), _as_clips(targets, TARGET_FIELD)
    if len(inputs) != len(targets):
        raise _error(
            TARGET_FIELD, f"{len(inputs):,} input clips but {len(targets):,} targets; give one per input"
        )
    if len(inputs) == 0:
        raise _error(INPUT_FIELD, "no clips: the arrays are empty")
    if inputs.shape != targets.shape:
        raise _error(
            TARGET_FIELD, f"targets of shape {targets.shape} do not fit inputs of shape {inputs.shape}: each "
            "target has its input's channels and length (N, C, T)",
        )  # fmt: skip
    clip = ClipInfo(sample_rate, int(inputs.shape[2]), int(inputs.shape[1]))

    def load(i: int, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        window = slice(start, start + frames)
        return np.asarray(inputs[i, :, window], np.float32), np.asarray(targets[i, :, window], np.float32)

    return AudioPairs(
        "arrays", len(inputs), _sample(len(inputs), max_clips, rng), lambda i: (clip, clip), load,
        lambda i: f"clip {i}", stated_rate=sample_rate,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# Audio files


def _audio_files(folder: Path, field_name: str) -> dict[str, Path]:
    """The WAV/FLAC files of a folder by name without the extension; hidden files are skipped, others refused."""
    if not folder.is_dir():
        raise _error(
            field_name, f"no such folder: {str(folder)!r} (a pair of paths is two folders of WAV/FLAC files)"
        )
    return files_by_stem(folder, AUDIO_SUFFIXES, field_name, kind="audio", partner="inputs and targets")


def _folder_pairs(
    inputs: Path, targets: Path, max_clips: int, rng: np.random.Generator, sample_rate: int | None
) -> AudioPairs:
    found, wanted = _audio_files(inputs, INPUT_FIELD), _audio_files(targets, TARGET_FIELD)
    lonely_inputs = sorted(found[s].name for s in found.keys() - wanted.keys())
    lonely_targets = sorted(wanted[s].name for s in wanted.keys() - found.keys())
    if lonely_inputs or lonely_targets:
        parts = []
        if lonely_inputs:
            parts.append(
                f"{len(lonely_inputs):,} inputs in {str(inputs)!r} have no target ({_listing(lonely_inputs, 5)})"
            )
        if lonely_targets:
            parts.append(
                f"{len(lonely_targets):,} targets in {str(targets)!r} have no input ({_listing(lonely_targets, 5)})"
            )
        raise _error(
            TARGET_FIELD,
            "; ".join(parts) + ". Inputs and targets are matched by file name without the extension",
        )
    pairs = [(found[stem], wanted[stem]) for stem in sorted(found)]
    return _file_pairs(
        pairs, f"folders {str(inputs)!r} and {str(targets)!r}", max_clips, rng, (), sample_rate
    )


def _manifest_pairs(
    path: Path, columns: dict[str, str], max_clips: int, rng: np.random.Generator, sample_rate: int | None
) -> AudioPairs:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        separator = _sniff_separator(handle.readline())
    frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, skipinitialspace=True)
    if frame.empty:
        raise _error(INPUT_FIELD, f"manifest {path.name!r} lists no clips (a header and no rows)")
    pairs, problems = [], []
    for row, values in enumerate(
        zip(frame[columns["input"]], frame[columns["target"]], strict=True), start=2
    ):
        resolved = []
        for value, column in zip(values, MANIFEST_COLUMNS, strict=True):
            file = Path(value.strip())
            file = file if file.is_absolute() else path.parent / file
            if not value.strip() or not file.is_file():
                problems.append(f"line {row} {column} {value.strip()!r} is missing")
            elif file.suffix.lower() not in AUDIO_SUFFIXES:
                problems.append(f"line {row} {column} {file.name!r} is not a {'/'.join(AUDIO_SUFFIXES)} file")
            resolved.append(file)
        pairs.append((resolved[0], resolved[1]))
    if problems:
        raise _error(
            INPUT_FIELD, f"manifest {path.name!r}: {', '.join(problems[:5])}{' ...' if len(problems) > 5 else ''} "
            "(relative paths are relative to the manifest's folder)",
        )  # fmt: skip
    return _file_pairs(pairs, f"manifest {path.name!r}", max_clips, rng, (path,), sample_rate)


def _file_info(path: Path, field_name: str) -> ClipInfo:
    import soundfile  # loaded here: profiling a table needs no audio library

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise _error(field_name, f"cannot read {path.name!r} as audio: {exc}") from None
    return ClipInfo(int(info.samplerate), int(info.frames), int(info.channels))


def _read_window(path: Path, start: int, frames: int, field_name: str) -> np.ndarray:
    import soundfile

    try:
        samples = soundfile.read(str(path), frames=frames, start=start, dtype="float32", always_2d=True)[0]
    except (RuntimeError, OSError) as exc:  # a truncated or damaged file fails when its samples are decoded
        raise _error(field_name, f"cannot read {path.name!r} as audio: {exc}") from None
    return samples.T


def _file_pairs(
    pairs: Sequence[tuple[Path, Path]], origin: str, max_clips: int, rng: np.random.Generator,
    listing: tuple[Path, ...], sample_rate: int | None,
) -> AudioPairs:  # fmt: skip
    def info(i: int) -> tuple[ClipInfo, ClipInfo]:
        return _file_info(pairs[i][0], INPUT_FIELD), _file_info(pairs[i][1], TARGET_FIELD)

    def load(i: int, start: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        source = _read_window(pairs[i][0], start, frames, INPUT_FIELD)
        return source, _read_window(pairs[i][1], start, frames, TARGET_FIELD)

    files = (*listing, *(f for pair in pairs for f in pair))
    indices = _sample(len(pairs), max_clips, rng)
    return AudioPairs(
        origin, len(pairs), indices, info, load, lambda i: repr(pairs[i][0].name), files, sample_rate
    )


# ----------------------------------------------------------------------------------------------------------
# Checking, measuring and cropping the pairs


def checked_infos(pairs: AudioPairs) -> list[ClipInfo]:
    """The input clips' headers, once every pair has one rate, matching lengths and channels."""
    infos, by_rate = [], {}
    for i in pairs.indices:
        source, target = pairs.info(int(i))
        name = pairs.name(int(i))
        if source.frames == 0:
            raise _error(INPUT_FIELD, f"{name} is empty (0 samples)")
        if target.rate != source.rate:
            raise _error(
                TARGET_FIELD, f"{name} is at {source.rate:,} Hz but its target at {target.rate:,} Hz; a target has "
                "its input's sample rate (the advisor does not resample)",
            )  # fmt: skip
        if target.frames != source.frames:
            raise _error(
                TARGET_FIELD, f"{name} has {source.frames:,} samples but its target {target.frames:,}; a target "
                "is aligned with its input sample by sample, so their lengths must match",
            )  # fmt: skip
        if target.channels != source.channels:
            raise _error(
                TARGET_FIELD, f"{name} has {source.channels} channel(s) but its target {target.channels}; a "
                "target has its input's channels",
            )  # fmt: skip
        if source.channels > MAX_CHANNELS:
            raise _error(
                INPUT_FIELD, f"{name} has {source.channels} channels; at most {MAX_CHANNELS} are allowed"
            )
        by_rate.setdefault(source.rate, []).append(name)
        infos.append(source)
    if len(by_rate) > 1:
        shown = "; ".join(f"{rate:,} Hz: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                          for rate, names in sorted(by_rate.items()))  # fmt: skip
        raise _error(
            INPUT_FIELD, f"clips have {len(by_rate)} sample rates ({shown}); every clip needs the same rate: "
            "resample them first (the advisor does not resample)",
        )  # fmt: skip
    (rate,) = by_rate
    if pairs.stated_rate is not None and rate != pairs.stated_rate:
        raise _error(
            "sample_rate", f"got {pairs.stated_rate:,} Hz but the files are at {rate:,} Hz; leave it unset"
        )
    if rate > MAX_SAMPLE_RATE:
        raise _error(INPUT_FIELD, f"clips at {rate:,} Hz; at most {MAX_SAMPLE_RATE:,} Hz is allowed")
    return infos


def _decibels(numerator: float, denominator: float, low: float, high: float) -> float:
    """10 log10(numerator / denominator) clamped to [low, high] (a zero on either side is a bound, not inf)."""
    if denominator <= 0:
        return high if numerator > 0 else low
    if numerator <= 0:
        return low
    return float(np.clip(10 * np.log10(numerator / denominator), low, high))


def _spectral_shape(clip: np.ndarray, rate: int) -> tuple[float, float] | None:
    """(centroid, bandwidth) in Hz of a Hann-windowed clip's magnitude spectrum (librosa's convention: the
    magnitude-weighted mean frequency and standard deviation about it); None for a silent clip."""
    magnitude = np.abs(np.fft.rfft(clip * np.hanning(len(clip))))
    total = magnitude.sum()
    if total <= 0:
        return None
    frequencies = np.fft.rfftfreq(len(clip), 1 / rate)
    centroid = float((frequencies * magnitude).sum() / total)
    return centroid, float(np.sqrt(((frequencies - centroid) ** 2 * magnitude).sum() / total))


def _fitted(clip: np.ndarray, length: int) -> np.ndarray:
    """The centred ``length`` samples of a clip, zero-padded at the end when it is shorter."""
    if len(clip) >= length:
        start = (len(clip) - length) // 2
        return clip[start : start + length]
    return np.pad(clip, (0, length - len(clip)))


@dataclass
class _Measured:
    inputs: np.ndarray  # (n, length) float32 mono trial clips
    targets: np.ndarray
    input_levels: list[float]  # RMS dBFS per clip
    target_levels: list[float]
    snrs: list[float]
    spectra: list[tuple[float, float]]  # (centroid, bandwidth) per non-silent target
    padded: int


def _measure(pairs: AudioPairs, infos: list[ClipInfo], length: int) -> _Measured:
    """Read each sampled pair once (its centred PROFILE_SECONDS), check it, measure it and keep its trial crop."""
    rate = infos[0].rate
    window = max(length, round(PROFILE_SECONDS * rate))
    inputs, targets, levels, target_levels, snrs, spectra, padded = [], [], [], [], [], [], 0
    for i, info in zip(pairs.indices, infos, strict=True):
        frames = min(info.frames, window)
        source, target = pairs.load(int(i), (info.frames - frames) // 2, frames)
        if not np.isfinite(source).all():
            raise _error(INPUT_FIELD, f"{pairs.name(int(i))} holds NaN or infinite samples")
        if not np.isfinite(target).all():
            raise _error(TARGET_FIELD, f"the target of {pairs.name(int(i))} holds NaN or infinite samples")
        source, target = source.astype(np.float64).mean(0), target.astype(np.float64).mean(0)  # mono
        source_power, target_power = float(np.mean(source**2)), float(np.mean(target**2))
        levels.append(_decibels(source_power, 1.0, MIN_DBFS, MAX_DBFS))
        target_levels.append(_decibels(target_power, 1.0, MIN_DBFS, MAX_DBFS))
        snrs.append(_decibels(target_power, float(np.mean((source - target) ** 2)), -MAX_SNR_DB, MAX_SNR_DB))
        shape = _spectral_shape(target, rate)
        if shape is not None:
            spectra.append(shape)
        padded += len(source) < length
        inputs.append(_fitted(source, length))
        targets.append(_fitted(target, length))
    return _Measured(
        np.stack(inputs).astype(np.float32), np.stack(targets).astype(np.float32), levels, target_levels, snrs,
        spectra, padded,
    )  # fmt: skip


def profile_audio(pairs: AudioPairs, *, head_name: str = HEAD_NAME) -> ProfiledData:
    """Profile the pairs into a task with one audio head, and keep the cropped clips for trials.

    Parameters
    ----------
    pairs : AudioPairs
        From :func:`open_audio`.
    head_name : str
        Name of the audio head.

    Returns
    -------
    ProfiledData
        ``task``: one audio head with the sample rate, median duration, input level, input SNR against the
        target and the targets' spectral centroid and bandwidth; ``features``: the sampled input clips
        (n, 1, length) float32, mono, cropped for trials; ``targets[head_name]``: their targets alike. One gain,
        shared by inputs and targets, brings the inputs to RMS 1 (as features are standardised): SI-SDR, SNR
        and ESR are unchanged by a gain both share.

    Raises
    ------
    ProfileError
        Mixed sample rates (naming files of each), a pair whose lengths or channels differ, an empty or
        unreadable file, non-finite samples, silence throughout.
    """
    infos = checked_infos(pairs)
    rate = infos[0].rate
    durations = np.array([info.frames for info in infos]) / rate
    median = float(np.median(durations))
    length = round(float(np.clip(median, MIN_TRIAL_SECONDS, MAX_TRIAL_SECONDS)) * rate)
    measured = _measure(pairs, infos, length)
    if not measured.inputs.any():
        raise _error(INPUT_FIELD, "every input clip is silent (all samples 0) where trials read it")
    if not measured.targets.any():
        raise _error(TARGET_FIELD, "every target clip is silent (all samples 0) where trials read it")
    gain = float(np.sqrt(np.mean(measured.inputs.astype(np.float64) ** 2)))
    notes = [f"Audio data from {pairs.origin}: {pairs.total:,} input/target pairs."]
    if len(pairs.indices) < pairs.total:
        notes.append(f"Profiled a seeded uniform sample of {len(pairs.indices):,} of {pairs.total:,} pairs.")
    channels = sorted({info.channels for info in infos})
    low, high = np.quantile(measured.snrs, [0.1, 0.9])
    notes += [
        f"Clips: {rate:,} Hz, {'/'.join(map(str, channels))} channel(s)"
        + (" mixed to mono (the mean of the channels)" if channels != [1] else "")
        + f"; {durations.min():.3g} to {durations.max():.3g} s long (median {median:.3g} s).",
        f"Input SNR against the target: median {np.median(measured.snrs):.1f} dB (10-90%: {low:.1f} to {high:.1f} "
        f"dB); RMS level: inputs {np.median(measured.input_levels):.1f} dBFS, targets "
        f"{np.median(measured.target_levels):.1f} dBFS (medians; statistics on the centred {PROFILE_SECONDS:g} s "
        "of each clip).",
        f"Trials see the clips cropped to {length / rate:.3g} s (the median duration within {MIN_TRIAL_SECONDS:g} to "
        f"{MAX_TRIAL_SECONDS:g} s, centred"
        + (f"; {measured.padded:,} shorter clips zero-padded at the end" if measured.padded else "")
        + "), inputs and targets scaled by one gain that brings the inputs to RMS 1.",
    ]
    spectra = np.array(measured.spectra) if measured.spectra else None
    # Rounded to what the estimates resolve: 6 digits of the duration, 0.01 dB, 0.1 Hz.
    head = Head(
        name=head_name,
        type="audio",
        sample_rate=rate,
        median_duration_s=float(f"{median:.6g}"),
        rms_dbfs=round(float(np.median(measured.input_levels)), 2),
        input_snr_db=round(float(np.median(measured.snrs)), 2),
        spectral_centroid_hz=None if spectra is None else round(float(np.median(spectra[:, 0])), 1),
        spectral_bandwidth_hz=None if spectra is None else round(float(np.median(spectra[:, 1])), 1),
    )
    task = TaskDescription(heads=[head], n_samples=pairs.total, n_features=1, source="data", notes=notes)
    return ProfiledData(task, measured.inputs[:, None] / gain, {head_name: measured.targets[:, None] / gain})


def _profile(request: ProfileRequest) -> ProfiledData:
    target = request.target
    if target is not None and not (isinstance(target, str) and target):
        raise _error("target", f"audio data has one head: name it with a string, got {target!r}")
    rng = np.random.default_rng(request.random_state)
    pairs = open_audio(request.data, min(request.max_rows, MAX_CLIPS), rng, request.sample_rate)
    return profile_audio(pairs, head_name=target or HEAD_NAME)


# The reader of the audio head kind, asked first: a sample rate or a folder of WAV/FLAC files marks audio, which
# the segmentation reader would otherwise take for images (a 3-D array pair, a folder).
READER = DataReader(
    order=0, claims=lambda r: is_audio_source(r.data, r.target, r.task, r.sample_rate), read=_profile
)
