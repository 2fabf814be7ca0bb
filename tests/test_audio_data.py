"""Audio data: each reader (arrays, WAV/FLAC folders, manifest CSV), each input error, profiled facts against
hand-computed values, the rule they fire, and trials on the user's own clips (Python and the CLI).

Every file is made here, small, in tmp_path: 16 kHz tones plus white noise at a known SNR.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from typer.testing import CliRunner

from advisor.cache import cache_key
from advisor.cli import app
from advisor.core import recommend
from advisor.profiling import ProfileError, profile, profile_data
from advisor.profiling.audio import MAX_CLIPS, MAX_TRIAL_SECONDS, MIN_TRIAL_SECONDS
from advisor.rules import candidates, facts_for
from advisor.task import Head
from advisor.trials.audio import MIN_CLIPS, clip_rows
from advisor.trials.data import prepare

RATE = 16_000
SECONDS = 0.25


def _mixtures(
    count: int, snr_db: float, *, frequency: float | None = None, seconds: float = SECONDS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) float32 (count, T): tones of amplitude 0.5 (one frequency, or 200-2000 Hz) plus white
    noise scaled per clip to exactly ``snr_db`` against the tone."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    frequencies = np.full((count, 1), frequency) if frequency else rng.uniform(200, 2000, (count, 1))
    clean = 0.5 * np.sin(2 * np.pi * frequencies * t + rng.uniform(0, 2 * np.pi, (count, 1)))
    noise = rng.normal(size=clean.shape)
    noise *= np.sqrt(
        (clean**2).sum(1, keepdims=True) / (noise**2).sum(1, keepdims=True) / 10 ** (snr_db / 10)
    )
    return (clean + noise).astype(np.float32), clean.astype(np.float32)


def _write(
    folder: Path, clips: np.ndarray, suffix: str = ".wav", rate: int = RATE, stem: str = "clip"
) -> Path:
    """One file per clip, float WAV or 24-bit FLAC (near-lossless, so statistics match the arrays)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, clip in enumerate(clips):
        subtype = "FLOAT" if suffix == ".wav" else "PCM_24"
        soundfile.write(
            folder / f"{stem}{index}{suffix}", clip.T if clip.ndim == 2 else clip, rate, subtype=subtype
        )
    return folder


def _pairs(tmp_path: Path, count: int = 12, snr_db: float = 5.0) -> tuple[Path, Path]:
    noisy, clean = _mixtures(count, snr_db)
    return _write(tmp_path / "noisy", noisy), _write(tmp_path / "clean", clean, ".flac")


def _error(data, **kwargs) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        profile(data, **kwargs)
    return caught.value


def _field(error: ProfileError) -> str:
    (violation,) = error.violations
    return violation.field


# ----------------------------------------------------------------------------------------------------------
# Profiled facts against hand-computed values


def test_array_profile_measures_rate_duration_level_snr_and_spectrum_by_hand():
    noisy, clean = _mixtures(16, snr_db=5.0, frequency=1000.0)
    profiled = profile_data((noisy, clean), sample_rate=RATE)
    task, (head,) = profiled.task, profiled.task.heads
    assert (head.name, head.type, head.metric, head.sample_rate) == ("audio", "audio", "si_sdr", RATE)
    assert (task.n_samples, task.n_features, task.source) == (16, 1, "data")
    assert head.median_duration_s == SECONDS
    assert head.input_snr_db == pytest.approx(5.0, abs=0.5)
    # The input's power: the tone's 0.5^2 / 2 plus the noise's 10^-0.5 of it (the cross term averages out).
    assert head.rms_dbfs == pytest.approx(10 * np.log10(0.125 * (1 + 10**-0.5)), abs=0.3)
    # The targets are pure 1 kHz tones: the centroid sits on the tone, the bandwidth is a few bins of leakage.
    assert head.spectral_centroid_hz == pytest.approx(1000.0, abs=5.0) and head.spectral_bandwidth_hz < 50
    x, y = profiled.features, profiled.targets["audio"]
    assert x.shape == y.shape == (16, 1, round(SECONDS * RATE)) and x.dtype == y.dtype == np.float32
    # One gain shared by inputs and targets: the inputs have RMS 1 and the SNR of the pairs is unchanged.
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-4)
    residual = ((x - y) ** 2).sum(-1)
    assert np.median(10 * np.log10((y**2).sum(-1) / residual)) == pytest.approx(head.input_snr_db, abs=0.05)


def test_channels_are_mixed_to_mono_and_a_target_names_the_head():
    noisy, clean = _mixtures(6, snr_db=10.0)
    stereo = (
        np.stack([noisy, noisy], axis=1),
        np.stack([clean, 0 * clean], axis=1),
    )  # target: tone left only
    profiled = profile_data(stereo, sample_rate=RATE, target="speech")
    (head,) = profiled.task.heads
    assert head.name == "speech" and profiled.features.shape == (6, 1, 4000)
    # The mono target is half the tone: the input's SNR against it is far below 10 dB.
    assert head.input_snr_db < 3 and any("mixed to mono" in note for note in profiled.task.notes)


def test_folders_and_manifest_read_like_the_arrays(tmp_path):
    noisy, clean = _mixtures(12, snr_db=5.0)
    from_arrays = profile((noisy, clean), sample_rate=RATE).heads[0]
    inputs, targets = _write(tmp_path / "noisy", noisy), _write(tmp_path / "clean", clean, ".flac")
    from_folders = profile((inputs, targets))
    head = from_folders.heads[0]
    assert head.sample_rate == RATE and from_folders.n_samples == 12
    assert head.input_snr_db == pytest.approx(from_arrays.input_snr_db, abs=0.01)
    assert head.spectral_centroid_hz == pytest.approx(from_arrays.spectral_centroid_hz, abs=0.5)
    manifest = tmp_path / "lists" / "pairs.csv"
    manifest.parent.mkdir()
    rows = [f"../noisy/clip{i}.wav,{targets / f'clip{i}.flac'}" for i in range(12)]  # relative and absolute
    manifest.write_text("Input,Target\n" + "\n".join(rows) + "\n")
    assert profile(manifest).heads[0] == head


def test_a_table_with_input_and_target_columns_stays_a_table(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("input,target\n" + "\n".join(f"{i * 0.5},{i % 2}" for i in range(40)) + "\n")
    assert profile(table).heads[0].type == "binary"


def test_sampling_caps_the_clips_read_reproducibly():
    noisy, clean = _mixtures(MAX_CLIPS + 40, snr_db=5.0, seconds=0.01)
    first = profile_data((noisy, clean), sample_rate=RATE)
    assert len(first.features) == MAX_CLIPS and first.task.n_samples == MAX_CLIPS + 40
    assert any(f"sample of {MAX_CLIPS} of {MAX_CLIPS + 40}" in note for note in first.task.notes)
    again = profile_data((noisy, clean), sample_rate=RATE)
    other = profile_data((noisy, clean), sample_rate=RATE, random_state=1)
    assert np.array_equal(first.features, again.features) and not np.array_equal(
        first.features, other.features
    )
    assert len(profile_data((noisy, clean), sample_rate=RATE, max_rows=50).features) == 50


def test_trial_clips_are_cropped_and_padded_to_a_bounded_length(tmp_path):
    long = profile_data(_mixtures(4, snr_db=5.0, seconds=2.0), sample_rate=RATE)
    assert (
        long.features.shape[-1] == round(MAX_TRIAL_SECONDS * RATE)
        and long.task.heads[0].median_duration_s == 2.0
    )
    noisy, clean = _mixtures(5, snr_db=5.0, seconds=0.2)
    short_noisy, short_clean = _mixtures(2, snr_db=5.0, seconds=0.1, seed=1)
    _write(tmp_path / "in", noisy)
    _write(tmp_path / "in", short_noisy, stem="short")
    _write(tmp_path / "out", clean)
    _write(tmp_path / "out", short_clean, stem="short")
    mixed = profile_data((tmp_path / "in", tmp_path / "out"))
    # Median 0.2 s: every clip is cropped or padded to 3,200 samples; the two 0.1 s clips end in zeros.
    assert mixed.features.shape == (7, 1, 3200) and mixed.task.heads[0].median_duration_s == 0.2
    assert not mixed.features[-2:, 0, 1600:].any() and mixed.features[:5, 0, 1600:].any()
    assert any("2 shorter clips zero-padded" in note for note in mixed.task.notes)
    tiny = profile_data(_mixtures(3, snr_db=5.0, seconds=0.05), sample_rate=RATE)
    assert tiny.features.shape[-1] == round(MIN_TRIAL_SECONDS * RATE)  # the STFT losses need this much


# ----------------------------------------------------------------------------------------------------------
# Errors: each names its field, the value and what is allowed


def test_array_errors_name_the_field_the_value_and_what_is_allowed():
    noisy, clean = _mixtures(4, snr_db=5.0)
    rate = {"sample_rate": RATE}
    cases = [
        ((noisy, clean), {"task": "audio"}, "sample_rate", "pass sample_rate="),
        ((noisy, clean), {"sample_rate": 0}, "sample_rate", "got 0; an integer number of Hz from 1 to"),
        ((noisy, clean), {"sample_rate": 16000.0}, "sample_rate", "got 16000.0"),
        (((noisy * 32768).astype(np.int16), clean), rate, "data", "dtype int16; divide 16-bit integers"),
        ((noisy[:, None, None], clean), rate, "data", "(N, T) or (N, C, T) samples, got shape (4, 1, 1, 4000)"),
        ((noisy[:, :, None].repeat(2, 2), clean), rate, "data", "looks channels-last"),
        ((noisy, clean[:3]), rate, "target_audio", "4 input clips but 3 targets"),
        ((noisy, clean[:, :-1]), rate, "target_audio", "(4, 1, 3999) do not fit inputs of shape (4, 1, 4000)"),
        ((noisy, np.zeros_like(clean)), rate, "target_audio", "every target clip is silent"),
        ((noisy[:0], clean[:0]), rate, "data", "no clips"),
        ((noisy, clean), {**rate, "target": ["a", "b"]}, "target", "one head: name it with a string"),
        ((noisy, "clean/"), rate, "data", "two arrays or two folders"),
    ]  # fmt: skip
    for data, kwargs, field, message in cases:
        error = _error(data, **kwargs)
        assert _field(error) == field and message in str(error), (field, message, str(error))
    broken = clean.copy()
    broken[2, 100] = np.nan
    error = _error((noisy, broken), sample_rate=RATE)
    assert _field(error) == "target_audio" and "the target of clip 2 holds NaN" in str(error)


def test_file_errors_name_the_files(tmp_path):
    inputs, targets = _pairs(tmp_path)
    (targets / "clip3.flac").unlink()
    (targets / "extra.flac").write_bytes((targets / "clip4.flac").read_bytes())
    error = _error((inputs, targets))
    assert _field(error) == "target_audio" and "'clip3.wav'" in str(error) and "'extra.flac'" in str(error)
    (targets / "extra.flac").unlink()
    (inputs / "clip3.wav").unlink()

    (tmp_path / "empty").mkdir()
    assert "holds no files" in str(_error((tmp_path / "empty", targets)))
    (inputs / "notes.txt").write_text("hello")
    error = _error((inputs, targets))
    assert _field(error) == "data" and "'notes.txt'" in str(error) and ".wav/.flac" in str(error)
    (inputs / "notes.txt").unlink()
    (inputs / "clip0.wav").write_bytes(b"RIFF not really a wave file")
    error = _error((inputs, targets))
    assert _field(error) == "data" and "cannot read 'clip0.wav' as audio" in str(error)

    noisy, _ = _mixtures(3, snr_db=5.0)
    soundfile.write(inputs / "clip0.wav", noisy[0], 22_050, subtype="FLOAT")  # another rate than its target
    error = _error((inputs, targets))
    assert _field(error) == "target_audio" and "'clip0.wav' is at 22,050 Hz but its target at 16,000" in str(
        error
    )
    soundfile.write(targets / "clip0.flac", noisy[0], 22_050, subtype="PCM_24")  # a pair at another rate
    error = _error((inputs, targets))
    assert (
        _field(error) == "data"
        and "22,050 Hz: 'clip0.wav'" in str(error)
        and "16,000 Hz: 'clip1.wav'" in str(error)
    )
    assert "does not resample" in str(error)
    soundfile.write(targets / "clip0.flac", noisy[0], RATE, subtype="PCM_24")
    soundfile.write(inputs / "clip0.wav", noisy[0, :-10], RATE, subtype="FLOAT")  # shorter than its target
    error = _error((inputs, targets))
    assert _field(error) == "target_audio" and "'clip0.wav' has 3,990 samples but its target 4,000" in str(
        error
    )
    soundfile.write(inputs / "clip0.wav", np.stack([noisy[0]] * 2, axis=1), RATE, subtype="FLOAT")
    error = _error((inputs, targets))
    assert _field(error) == "target_audio" and "2 channel(s) but its target 1" in str(error)
    soundfile.write(inputs / "clip0.wav", noisy[0], RATE, subtype="FLOAT")
    error = _error((inputs, targets), sample_rate=44_100)
    assert _field(error) == "sample_rate" and "files are at 16,000 Hz" in str(error)

    error = _error(inputs)
    assert _field(error) == "target_audio" and "--target-audio" in str(error)
    manifest = tmp_path / "pairs.csv"
    manifest.write_text("input,target\nnoisy/clip0.wav,clean/clip0.flac\nnoisy/clip1.wav,clean/gone.flac\n")
    error = _error(manifest)
    assert _field(error) == "data" and "line 3 target 'clean/gone.flac' is missing" in str(error)
    (targets / "clip0.mp3").write_bytes(b"ID3")
    manifest.write_text("input,target\nnoisy/clip0.wav,clean/clip0.mp3\n")
    assert "line 2 target 'clip0.mp3' is not a .wav/.flac file" in str(_error(manifest, task="audio"))
    manifest.write_text("input,target\n")
    assert "lists no clips" in str(_error(manifest, task="audio"))


# ----------------------------------------------------------------------------------------------------------
# Head fields, rules and trials


def test_audio_statistics_must_fit_the_head():
    with pytest.raises(ValueError, match="spectral_centroid_hz 9000 exceeds the Nyquist frequency 8000"):
        Head(type="audio", sample_rate=RATE, spectral_centroid_hz=9000.0)
    with pytest.raises(ValueError, match="applies to audio heads"):
        Head(type="regression", input_snr_db=5.0)
    with pytest.raises(ValueError, match="less than or equal to 200"):
        Head(type="audio", input_snr_db=1e9)


def test_a_noisy_input_lifts_si_sdr_above_the_stft_default():
    noisy_task = profile(_mixtures(8, snr_db=3.0), sample_rate=RATE)
    head = noisy_task.heads[0]
    assert facts_for(noisy_task, head).input_snr_db == head.input_snr_db
    found = candidates(noisy_task)
    assert (found[0].spec.loss, found[0].rule_id, found[0].prior) == (
        "si_sdr",
        "audio-noisy-input-si-sdr",
        0.65,
    )
    assert "audio-si-sdr-metric" in found[0].also_proposed_by
    stft = next(c for c in found if c.spec.loss == "mr_stft")
    assert stft.spec.params["fft_sizes"] == [512, 1024, 256]  # derived from the profiled 16 kHz
    clean_task = profile(_mixtures(8, snr_db=30.0), sample_rate=RATE)
    assert candidates(clean_task)[0].spec.loss == "mr_stft"
    assert "audio-noisy-input-si-sdr" not in {c.rule_id for c in candidates(clean_task)}


def test_trials_cap_long_clips_by_duration():
    head = Head(type="audio", sample_rate=RATE)
    assert clip_rows(2048, RATE) == 128 and clip_rows(2048, None) == 128  # the synthetic set: unchanged
    assert clip_rows(8000, RATE) == MIN_CLIPS
    x = np.zeros((300, 1, 8000), np.float32)
    assert (
        prepare(x, x, head, max_rows=20_000).rows == MIN_CLIPS and prepare(x, x, head, max_rows=30).rows == 30
    )


def test_recommend_trains_on_the_users_clips_and_says_so():
    noisy, clean = _mixtures(40, snr_db=5.0)
    result = recommend((noisy, clean), sample_rate=RATE, epochs=2, repeats=2, cache=False)
    (head,) = result.heads
    assert head.evidence_source == "data" and result.task.source == "data"
    assert head.repeats == 2 and head.train_rows == 28 and head.score_rows == 6  # 40 clips: 70% / 15% / 15%
    assert all(c.evidence is not None and len(c.evidence.per_repeat) == 2 for c in head.candidates)
    assert all(np.isfinite(c.evidence.mean) for c in head.candidates)
    assert "synthetic" not in head.explanation and not any("Synthetic" in c for c in head.caveats)
    with pytest.raises(Exception, match="sample_rate: goes with audio data"):
        recommend({"heads": [{"type": "audio"}]}, sample_rate=RATE, trials=False)


def test_cache_key_follows_the_audio_files(tmp_path):
    inputs, targets = _pairs(tmp_path, count=4)
    arguments = {"epochs": 2}
    before = cache_key((inputs, targets), arguments, description=False)
    assert before is not None and before == cache_key(
        (str(inputs), str(targets)), arguments, description=False
    )
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(
        "input,target\n" + "".join(f"noisy/clip{i}.wav,clean/clip{i}.flac\n" for i in range(4))
    )
    listed = cache_key(manifest, arguments, description=False)
    soundfile.write(targets / "clip0.flac", np.zeros(4000), RATE, subtype="PCM_24")
    assert cache_key((inputs, targets), arguments, description=False) not in (None, before)
    assert cache_key(manifest, arguments, description=False) not in (
        None,
        listed,
    )  # the clips, not only the CSV


def test_cli_recommends_from_folders_and_refuses_bad_input_in_one_line(tmp_path):
    inputs, targets = _pairs(tmp_path, count=16)
    command = [sys.executable, "-m", "advisor", "recommend", str(inputs), "--target-audio", str(targets)]
    done = subprocess.run(
        [*command, "--epochs", "1", "--repeats", "2", "--no-cache", "--json"], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["task"]["heads"][0]["type"] == "audio" and result["heads"][0]["evidence_source"] == "data"
    # A manifest through the same command, in this process (a child costs seconds of imports).
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(
        "input,target\n" + "".join(f"noisy/clip{i}.wav,clean/clip{i}.flac\n" for i in range(16))
    )
    listed = CliRunner().invoke(app, ["recommend", str(manifest), "--no-trials", "--json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout)["task"]["heads"][0] == result["task"]["heads"][0]
    (targets / "clip0.flac").unlink()
    failed = subprocess.run([*command, "--no-trials"], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and failed.stderr.strip().count("\n") == 0
    assert failed.stderr.startswith("error: target_audio:") and "'clip0.wav'" in failed.stderr


def test_audio_arrays_without_a_sample_rate_are_refused_with_the_fix_named():
    # Without sample_rate nothing marks arrays as audio: (N, C, T) pairs read as images and masks, (N, T) pairs
    # as a table with T targets. Both errors say to pass sample_rate.
    noisy, clean = _mixtures(4, 5.0)
    clips = _error((noisy[:, None, :], clean[:, None, :]))
    assert _field(clips) == "masks" and "pass sample_rate=" in str(clips)
    rows = _error((noisy, clean))
    assert (
        _field(rows) == "target"
        and "at most 64 are allowed" in str(rows)
        and "pass sample_rate=" in str(rows)
    )
