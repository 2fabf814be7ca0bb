"""How good are the advisor's audio picks? Speech enhancement at several noise types and input SNRs.

For every dataset of :data:`DATASETS` (speech-like clean clips plus one noise type at one input SNR; the metric
is SI-SDR, the advisor's default for audio heads):

1. the advisor runs through its public API alone, ``advisor.recommend((noisy, clean), sample_rate=16000,
   cache=False)`` with default settings, on split 0's development clips (train + validation); its ranking, CPU
   and wall seconds and trained member-epochs are kept;
2. the ground truth, by code of its own here (nothing from ``advisor.trials``, ``advisor.ranking`` or the
   advisor's splits and metrics; the losses themselves are the catalog's, built by ``advisor.build_loss``),
   trains every pool entry: each candidate the rules propose for the profiled dataset (the default loss,
   multi-resolution STFT, is one of them) and the advisor's top pick when it is none of those. One
   :class:`Denoiser` per (loss, split), a TasNet-style residual net (a linear gate in place of the mask), far
   stronger than the trial net (45,440 parameters and a receptive field of about 0.5 s, against the trial net's
   865 parameters and 5 samples); AdamW with a cosine decay, :data:`PROTOCOL`'s epochs of random crops, the best
   epoch by validation SI-SDR restored, on :data:`SPLITS` fresh random 60/20/20 splits of the clips. Within a
   split every loss starts from the same initial weights and sees the same crops in the same order, so the
   comparison is paired. Test SI-SDR and SNR are computed per clip in numpy (:func:`si_sdr`, :func:`snr`). Results are cached per (dataset digest,
   entry, split, protocol) under ``bench/truth_cache/audio/``;
3. scores: the tie set (entries whose paired, two-level bootstrap 95% interval of the difference to the best
   includes 0: splits resampled, then test clips within each split), hit@1 (the advisor's top pick is in the
   tie set), normalised regret (best - pick) / (best - worst) of the mean test SI-SDR, the same for always
   taking the default loss, and the advisor's CPU seconds beside the exhaustive search's.

Speech: espeak-ng (when the ``espeak-ng`` program is on the PATH; ``apt-get install espeak-ng``), short
utterances of common English words in several voices, speeds and pitches, resampled from 22,050 to 16,000 Hz;
without espeak-ng (or with ``--source synthetic``), speech-like signals made in numpy (:func:`synthetic_utterance`:
glottal pulse trains at 90-250 Hz through formant resonators, syllable envelopes, fricatives, pauses). The report
states which. Nothing is downloaded.

Run from the repository root (``pip install -e ".[bench]"`` first)::

    python -m bench.audio_quality [--jobs N] [--only a,b] [--truth-only] [--source auto|espeak|synthetic]
                                  [--budget-s S] [--out FILE.md]

``--truth-only`` fills the cache without the advisor. A run with an empty cache trains 72 ground-truth models and
calls the advisor 6 times; see the "Audio enhancement quality" section of ``bench/RESULTS.md`` for its cost. It
reports misses and always exits 0.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from scipy import signal
from torch import nn

import advisor
from advisor import LossSpec, TaskDescription
from advisor.profiling import profile
from advisor.rules import candidates_from, load_rules
from bench.scoring import Entry, read_truth, regret, render, write_truth

RATE = 16_000  # Hz: the usual rate of speech enhancement corpora (VoiceBank-DEMAND, DNS)
CLIP_SECONDS = 0.75  # every clip; the advisor's trials crop them to 0.5 s
CLIPS = 160  # clean clips per dataset (each a different utterance), shared by the datasets
BABBLE_UTTERANCES = 48  # further utterances, never a clean clip, that babble noise is mixed from
BABBLE_TALKERS = 6
SPLITS = 3
TRAIN_SHARE, VALIDATION_SHARE = 0.6, 0.2  # of the clips; the rest test
ESPEAK_RATE = 22_050  # what espeak-ng writes
ESPEAK = "espeak-ng"

# (name, noise kind, input SNR in dB): the rules read the input SNR (below 10 dB lifts SI-SDR over the STFT
# default); the noise kinds differ in spectrum (flat, 1/f, 1/f^2), in being speech themselves, and in being tonal.
DATASETS: tuple[tuple[str, str, float], ...] = (
    ("white_-5dB", "white", -5.0),
    ("pink_0dB", "pink", 0.0),
    ("hum_0dB", "hum", 0.0),
    ("babble_5dB", "babble", 5.0),
    ("brown_10dB", "brown", 10.0),
    ("white_20dB", "white", 20.0),
)

# Everything that decides a ground-truth result; part of every cache key.
PROTOCOL: dict[str, Any] = {
    "version": 2,  # 2: a linear gate in place of the sigmoid mask (see Denoiser)
    "net": {"filters": 64, "kernel": 64, "stride": 32, "bottleneck": 32, "hidden": 64, "blocks": 7},
    "optimizer": "adamw",
    "lr": 5e-3,
    "lr_schedule": "cosine to 1% over all steps",
    "weight_decay": 1e-4,
    "clip_grad_norm": 5.0,
    "batch": 8,
    "crop_s": 0.4,
    "epochs": 20,
    "splits": [TRAIN_SHARE, VALIDATION_SHARE],
}
CACHE_DIR = Path(__file__).parent / "truth_cache" / "audio"
BOOTSTRAP_DRAWS = 2_000
EPS = 1e-8  # inside the ratios and logs of SI-SDR and SNR, as in the catalog losses
DEFAULT_RULE = "audio-baseline-mr-stft"  # the default audio loss (rules/audio.yaml)

_TEXT = (
    "the quick brown fox jumps over a lazy dog seven green apples sit on my table please call stella ask her "
    "to bring these things with her from the store six spoons of fresh snow peas five thick slabs of blue cheese "
    "and maybe a snack for her brother bob we also need a small plastic snake and a big toy frog for the kids "
    "she can scoop these things into three red bags and we will go meet her wednesday at the train station"
)
WORDS = tuple(_TEXT.split())
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")


# ----------------------------------------------------------------------------------------------------------
# Clean speech: espeak-ng, or speech-like signals in numpy


def _seed(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def espeak_available() -> bool:
    """Whether the espeak-ng program is on the PATH (it is never downloaded here)."""
    return shutil.which(ESPEAK) is not None


def _espeak_one(
    text: str, voice: str, speed: int, pitch: int, gap: int, folder: str, index: int
) -> np.ndarray:
    """One utterance from espeak-ng at 16 kHz, float64."""
    path = os.path.join(folder, f"{index}.wav")
    command = [ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "-g", str(gap), "-w", path, text]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    samples, rate = soundfile.read(path, dtype="float64")
    if rate != ESPEAK_RATE:
        raise RuntimeError(f"espeak-ng wrote {rate} Hz, expected {ESPEAK_RATE}")
    return signal.resample_poly(samples, 320, 441)  # 22,050 Hz * 320 / 441 = 16,000 Hz


def espeak_utterances(count: int, seed: int) -> tuple[list[np.ndarray], str]:
    """``count`` utterances of 1-4 random words, each in a random voice, variant, speed, pitch and word gap."""
    rng = np.random.default_rng(seed)
    settings = [
        (
            " ".join(rng.choice(WORDS, int(rng.integers(1, 5)))),
            f"{rng.choice(VOICES)}+{rng.choice(VARIANTS)}",
            int(rng.integers(130, 231)),
            int(rng.integers(20, 81)),
            int(rng.integers(0, 8)),
        )
        for _ in range(count)
    ]
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(2) as threads:
        utterances = list(threads.map(lambda a: _espeak_one(*a[1], folder, a[0]), enumerate(settings)))
    version = subprocess.run([ESPEAK, "--version"], capture_output=True, text=True).stdout.split("Data")[0]
    return utterances, f"espeak-ng ({version.strip()}), {len(VOICES)} voices x {len(VARIANTS)} variants"


# Formants (F1, F2, F3) in Hz of a few vowels (Peterson & Barney 1952, adult averages).
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (530, 1840, 2480), (570, 840, 2410), (300, 870, 2240),
          (660, 1720, 2410), (490, 1350, 1690), (640, 1190, 2390))  # fmt: skip


def _resonator(x: np.ndarray, frequency: float, bandwidth: float) -> np.ndarray:
    """A two-pole resonance (Klatt's formant filter) at ``frequency`` with ``bandwidth``, unit gain at DC."""
    r = math.exp(-math.pi * bandwidth / RATE)
    a = [1.0, -2 * r * math.cos(2 * math.pi * frequency / RATE), r * r]
    return signal.lfilter([sum(a)], a, x)


def synthetic_utterance(rng: np.random.Generator) -> np.ndarray:
    """A speech-like utterance in numpy: 2-6 syllables, each a glottal pulse train whose pitch glides within
    90-250 Hz, shaped by three vowel formants and a raised-cosine envelope, sometimes led by a fricative (noise
    at 3-7 kHz), with pauses between some syllables."""
    base = rng.uniform(90, 250)
    pieces = [np.zeros(int(rng.uniform(0.02, 0.08) * RATE))]
    for _ in range(int(rng.integers(2, 7))):
        if rng.random() < 0.4:  # a fricative onset
            burst = rng.normal(size=int(rng.uniform(0.03, 0.08) * RATE))
            sos = signal.butter(4, [3000, 7000], "bandpass", fs=RATE, output="sos")
            pieces.append(signal.sosfilt(sos, burst) * 0.3 * np.hanning(len(burst)))
        n = int(rng.uniform(0.1, 0.28) * RATE)
        f0 = base * np.linspace(rng.uniform(0.85, 1.15), rng.uniform(0.8, 1.2), n)
        phase = np.cumsum(f0 / RATE)
        pulses = np.diff(np.floor(phase), prepend=0.0)  # one impulse per glottal cycle
        source = signal.lfilter(
            [1.0], [1.0, -0.95], signal.lfilter([1.0], [1.0, -0.95], pulses)
        )  # -12 dB/oct tilt
        vowel = VOWELS[int(rng.integers(len(VOWELS)))]
        voiced = sum(
            _resonator(source, f * rng.uniform(0.9, 1.1), bw) * gain
            for f, bw, gain in zip(vowel, (80, 100, 140), (1.0, 0.6, 0.3), strict=True)
        )
        pieces.append(voiced * np.sin(np.linspace(0, np.pi, n)) ** 0.7)
        if rng.random() < 0.3:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.2) * RATE)))
    # The -12 dB/octave glottal tilt leaves a strong DC and sub-20 Hz part that no microphone records: remove it.
    return signal.sosfilt(signal.butter(2, 60, "highpass", fs=RATE, output="sos"), np.concatenate(pieces))


def synthetic_utterances(count: int, seed: int) -> tuple[list[np.ndarray], str]:
    rng = np.random.default_rng(seed)
    return [synthetic_utterance(rng) for _ in range(count)], "numpy speech-like signals (espeak-ng not used)"


def _trimmed(x: np.ndarray) -> np.ndarray:
    """Without the leading and trailing silence (below 1% of the peak)."""
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1]


def _clip(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random window of a long utterance, or a short one at a random offset in silence (a pause around it)."""
    if len(x) >= length:
        start = int(rng.integers(0, len(x) - length + 1))
        return x[start : start + length]
    out = np.zeros(length)
    start = int(rng.integers(0, length - len(x) + 1))
    out[start : start + len(x)] = x
    return out


@dataclass(frozen=True)
class Speech:
    """The clean clips (CLIPS, T), the babble talkers' utterances, and what made them."""

    clean: np.ndarray
    babble: list[np.ndarray]
    source: str


def make_speech(source: str) -> Speech:
    """Clean clips at RMS levels of -32 to -22 dBFS, and the babble utterances (normalised to RMS 1)."""
    use_espeak = source == "espeak" or (source == "auto" and espeak_available())
    if source == "espeak" and not espeak_available():
        raise SystemExit(
            "--source espeak: the espeak-ng program is not on the PATH (apt-get install espeak-ng)"
        )
    make = espeak_utterances if use_espeak else synthetic_utterances
    utterances, description = make(CLIPS + BABBLE_UTTERANCES, seed=13)
    utterances = [_trimmed(u) for u in utterances]
    rng, length = np.random.default_rng(_seed("clips")), round(CLIP_SECONDS * RATE)
    clean = np.stack([_clip(u, length, rng) for u in utterances[:CLIPS]])
    level = 10 ** (rng.uniform(-32, -22, (CLIPS, 1)) / 20)
    clean *= level / np.sqrt(np.mean(clean**2, axis=1, keepdims=True))
    babble = [u / np.sqrt(np.mean(u**2)) for u in utterances[CLIPS:]]
    durations = [len(u) / RATE for u in utterances[:CLIPS]]
    description += (
        f"; {CLIPS} utterances of {min(durations):.2f}-{max(durations):.2f} s (median {np.median(durations):.2f})"
        f" as {CLIP_SECONDS:g} s clips, {BABBLE_UTTERANCES} more for babble"
    )
    return Speech(clean, babble, description)


# ----------------------------------------------------------------------------------------------------------
# Noise and the datasets


def _coloured(rng: np.random.Generator, shape: tuple[int, int], exponent: float) -> np.ndarray:
    """Gaussian noise with power spectrum 1/f^exponent above 20 Hz (nothing below: brown noise would drift)."""
    spectrum = np.fft.rfft(rng.normal(size=shape), axis=1)
    frequencies = np.fft.rfftfreq(shape[1], 1 / RATE)
    spectrum *= np.where(frequencies >= 20, np.maximum(frequencies, 20.0) ** (-exponent / 2), 0.0)
    return np.fft.irfft(spectrum, n=shape[1], axis=1)


def make_noise(kind: str, count: int, length: int, babble: list[np.ndarray], seed: int) -> np.ndarray:
    """(count, length) noise of one kind; its level is set by :func:`mix`."""
    rng = np.random.default_rng(seed)
    if kind == "white":
        return rng.normal(size=(count, length))
    if kind in ("pink", "brown"):
        return _coloured(rng, (count, length), 1.0 if kind == "pink" else 2.0)
    t = np.arange(length) / RATE
    if kind == "hum":  # mains hum and its harmonics up to about 1 kHz, with a slowly wavering level
        f0 = rng.uniform(49.0, 61.0, (count, 1))
        hum = sum(
            np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi, (count, 1))) / k**0.7
            for k in range(1, 21)
        )
        return hum * (1 + 0.2 * np.sin(2 * np.pi * rng.uniform(0.5, 3, (count, 1)) * t))
    if kind == "babble":  # several other talkers at equal level, each from a random point of its utterance
        out = np.zeros((count, length))
        for row in range(count):
            for talker in rng.choice(len(babble), BABBLE_TALKERS, replace=False):
                voice = np.tile(babble[talker], length // len(babble[talker]) + 2)
                start = int(rng.integers(0, len(babble[talker])))
                out[row] += voice[start : start + length]
        return out
    raise ValueError(f"unknown noise kind {kind!r}")


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """clean + noise scaled so that each clip's SNR (powers over the whole clip) is exactly ``snr_db``."""
    power = np.mean(clean**2, axis=1, keepdims=True) / np.mean(noise**2, axis=1, keepdims=True)
    return clean + noise * np.sqrt(power * 10 ** (-snr_db / 10))


@dataclass(frozen=True)
class AudioSet:
    """One dataset: noisy inputs and clean targets (CLIPS, T) float32."""

    name: str
    noise: str
    snr_db: float
    noisy: np.ndarray
    clean: np.ndarray

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.noisy.tobytes() + self.clean.tobytes()).hexdigest()[:12]


def make_datasets(speech: Speech, names: list[str]) -> list[AudioSet]:
    sets = []
    for name, kind, snr_db in DATASETS:
        if name in names:
            noise = make_noise(kind, CLIPS, speech.clean.shape[1], speech.babble, _seed("noise", name))
            noisy = mix(speech.clean, noise, snr_db)
            sets.append(
                AudioSet(name, kind, snr_db, noisy.astype(np.float32), speech.clean.astype(np.float32))
            )
    return sets


def split_clips(count: int, split: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fresh random 60/20/20 train / validation / test split of the clip indices, seeded by the split."""
    order = np.random.default_rng(_seed("split", split)).permutation(count)
    train, val = round(TRAIN_SHARE * count), round(VALIDATION_SHARE * count)
    return np.sort(order[:train]), np.sort(order[train : train + val]), np.sort(order[train + val :])


def development(ds: AudioSet) -> tuple[np.ndarray, np.ndarray]:
    """Split 0's train + validation clips as the user's (noisy, clean) arrays: what the advisor sees."""
    train, val, _ = split_clips(CLIPS, 0)
    rows = np.concatenate([train, val])
    return ds.noisy[rows], ds.clean[rows]


# ----------------------------------------------------------------------------------------------------------
# Metrics (numpy, per clip)


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR in dB per row (Le Roux et al. 2019), both signals made zero-mean first:
    SI-SDR = 10 log10(||a s||^2 / ||a s - s_hat||^2), a = <s_hat, s> / ||s||^2, s the reference."""
    s_hat = estimate.astype(np.float64) - estimate.mean(-1, keepdims=True)
    s = reference.astype(np.float64) - reference.mean(-1, keepdims=True)
    a = (s_hat * s).sum(-1, keepdims=True) / ((s**2).sum(-1, keepdims=True) + EPS)
    target, error = a * s, a * s - s_hat
    return 10 * np.log10(((target**2).sum(-1) + EPS) / ((error**2).sum(-1) + EPS))


def snr(estimate: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """SNR in dB per row: 10 log10(||s||^2 / ||s - s_hat||^2); unlike SI-SDR it penalises a wrong gain."""
    s, s_hat = reference.astype(np.float64), estimate.astype(np.float64)
    return 10 * np.log10(((s**2).sum(-1) + EPS) / (((s - s_hat) ** 2).sum(-1) + EPS))


# ----------------------------------------------------------------------------------------------------------
# The ground-truth denoiser and its training loop


class _Block(nn.Module):
    """A Conv-TasNet block: 1x1 conv up, ReLU and norm, dilated depthwise conv, ReLU and norm, 1x1 conv back,
    added to its input."""

    def __init__(self, channels: int, hidden: int, dilation: int) -> None:
        super().__init__()
        self.up = nn.Conv1d(channels, hidden, 1)
        self.norm1 = nn.GroupNorm(1, hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, 3, padding=dilation, dilation=dilation, groups=hidden)
        self.norm2 = nn.GroupNorm(1, hidden)
        self.down = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(F.relu(self.up(x)))
        return x + self.down(self.norm2(F.relu(self.depthwise(h))))


class Denoiser(nn.Module):
    """A small Conv-TasNet (Luo & Mesgarani 2019) that predicts a correction to its input: a learned encoder
    (conv 1 -> 64 filters of 4 ms, hop 2 ms at 16 kHz), a temporal conv net of 7 blocks with dilations 1..64 on
    the frames (a receptive field of about 0.5 s, so it can learn the noise floor around each frame), a linear
    gate on the encoded frames and a transposed-conv decoder whose output is added to the input. Input and
    output (batch, 1, T).

    The residual form, with the decoder zeroed at the start, makes every loss start from the identity (the
    input's SI-SDR), as the advisor's residual trial net does. Without it, a net trained on the magnitude-only
    STFT losses must also learn a phase from a random decoder, and its test SI-SDR stayed below -14 dB after 20
    epochs at -5 dB input (measured while sizing this bench): the bench would then only show that, not which
    loss trains the better denoiser.

    The gate is linear, not Conv-TasNet's sigmoid mask: under the STFT losses the sigmoid saturated to 0 within
    12 steps (the first random corrections raised the loss), its gradients vanished (norm 1e-9) and the net stayed
    the identity for good. Version 1 of the protocol had that flaw; a linear gate keeps its gradients."""

    def __init__(self) -> None:
        super().__init__()
        p = PROTOCOL["net"]
        self.kernel, self.stride = p["kernel"], p["stride"]
        self.encoder = nn.Conv1d(1, p["filters"], self.kernel, stride=self.stride, bias=False)
        self.norm = nn.GroupNorm(1, p["filters"])
        self.bottleneck = nn.Conv1d(p["filters"], p["bottleneck"], 1)
        self.blocks = nn.Sequential(*(_Block(p["bottleneck"], p["hidden"], 2**i) for i in range(p["blocks"])))
        self.mask = nn.Conv1d(p["bottleneck"], p["filters"], 1)
        self.decoder = nn.ConvTranspose1d(p["filters"], 1, self.kernel, stride=self.stride, bias=False)
        nn.init.zeros_(self.decoder.weight)  # the correction starts at 0: every loss starts from the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        pad = (-(length - self.kernel)) % self.stride  # whole frames to the end
        frames = F.relu(self.encoder(F.pad(x, (0, pad))))
        gate = self.mask(self.blocks(self.bottleneck(self.norm(frames))))
        return x + self.decoder(frames * gate)[..., :length]


def _outputs(net: nn.Module, x: torch.Tensor, batch: int = 16) -> np.ndarray:
    with torch.no_grad():
        return torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)])[:, 0].numpy()


def fit_one(data_path: str, name: str, split: int, spec_json: str) -> dict[str, Any]:
    """Train one denoiser with one loss on one split; per-clip test SI-SDR and SNR at the best validation epoch.

    Inputs and targets share one gain that brings the training inputs to RMS 1 (as a user would normalise);
    the metrics are unchanged by a gain both share. Each epoch draws one random crop of ``crop_s`` from every
    training clip; validation and test read whole clips.
    """
    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), time.process_time()
    arrays = np.load(data_path)
    noisy, clean = arrays["noisy"], arrays["clean"]
    train, val, test = split_clips(len(noisy), split)
    gain = float(np.sqrt(np.mean(noisy[train].astype(np.float64) ** 2)))
    x, y = torch.as_tensor(noisy / gain)[:, None], torch.as_tensor(clean / gain)[:, None]
    torch.manual_seed(_seed(name, split, "init"))  # the same initial weights for every loss of a split
    net = Denoiser()
    loss = advisor.build_loss(LossSpec.model_validate_json(spec_json))
    optimizer = torch.optim.AdamW(net.parameters(), lr=PROTOCOL["lr"], weight_decay=PROTOCOL["weight_decay"])
    order = np.random.default_rng(_seed(name, split, "batches"))  # the same crops in the same order too
    crop, size = round(PROTOCOL["crop_s"] * RATE), PROTOCOL["batch"]
    # A fixed epoch budget: a cosine decay lets even the noisier losses settle by the end (a constant 5e-3
    # left ESR's validation SI-SDR swinging by 1 dB from epoch to epoch).
    steps = PROTOCOL["epochs"] * math.ceil(len(train) / size)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0)))
    )
    best, best_epoch, best_state, diverged_at, curve = -math.inf, -1, None, None, []
    for epoch in range(PROTOCOL["epochs"]):
        net.train()
        rows = order.permutation(train)
        starts = order.integers(0, x.shape[-1] - crop + 1, len(rows))
        for begin in range(0, len(rows), size):
            chosen = torch.as_tensor(rows[begin : begin + size])
            offsets = torch.as_tensor(starts[begin : begin + size])[:, None] + torch.arange(crop)
            inputs = torch.gather(x[chosen, 0], 1, offsets)[:, None]
            targets = torch.gather(y[chosen, 0], 1, offsets)[:, None]
            value = loss(net(inputs), targets)
            if not torch.isfinite(value):
                diverged_at = epoch
                break
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            nn.utils.clip_grad_norm_(net.parameters(), PROTOCOL["clip_grad_norm"])
            optimizer.step()
            schedule.step()
        if diverged_at is not None:
            break
        net.eval()
        score = float(np.mean(si_sdr(_outputs(net, x[val]), clean[val])))
        curve.append(round(score, 3))
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(net.state_dict())
    record: dict[str, Any] = {"val": curve, "best_epoch": best_epoch, "diverged_at": diverged_at}
    if best_state is None:
        record.update(test_si_sdr=None, test_snr=None)
    else:
        net.load_state_dict(best_state)
        out = _outputs(net, x[test])
        record.update(
            test_si_sdr=[round(v, 4) for v in si_sdr(out, clean[test]).tolist()],
            test_snr=[round(v, 4) for v in snr(out * gain, clean[test]).tolist()],
        )
    record.update(cpu_s=round(time.process_time() - cpu, 2), wall_s=round(time.perf_counter() - started, 2))
    return record


# ----------------------------------------------------------------------------------------------------------
# The pool, the cache and the advisor


@dataclass
class Case:
    """One dataset with its pool and, once run, the advisor's answer."""

    ds: AudioSet
    task: TaskDescription
    pool: list[Entry]
    ranking: list[int] = field(default_factory=list)  # pool indices of the advisor's ranking, rank 1 first
    advisor: dict[str, Any] = field(default_factory=dict)

    @property
    def default(self) -> int:
        return next(i for i, e in enumerate(self.pool) if DEFAULT_RULE in e.labels)


def prepare(ds: AudioSet) -> Case:
    """Profile split 0's development clips as the advisor will, and pool every rule candidate (once per spec)."""
    task = profile(development(ds), sample_rate=RATE)
    entries: dict[str, Entry] = {}
    for candidate in candidates_from(load_rules(), task):
        entry = entries.setdefault(candidate.spec.to_json(), Entry([], candidate.spec))
        entry.labels.append(candidate.rule_id)
    return Case(ds, task, list(entries.values()))


def cache_key(ds: AudioSet, spec_json: str, split: int) -> str:
    payload = json.dumps([ds.name, ds.digest, spec_json, split, CLIPS, PROTOCOL])
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def call_advisor(data_path: str, budget_s: float | None = None) -> dict[str, Any]:
    """``advisor.recommend`` with default settings (``budget_s`` replaces the default wall-clock cap of the
    trials when given) on split 0's development clips: its ranking (spec JSON and rule id), CPU and wall
    seconds, trained member-epochs, what stopped the trials, the input SNR it profiled and its verdict."""
    arrays = np.load(data_path)
    train, val, _ = split_clips(len(arrays["noisy"]), 0)
    rows = np.concatenate([train, val])
    started, cpu = time.perf_counter(), time.process_time()
    budget = {} if budget_s is None else {"budget_s": budget_s}
    pairs = (arrays["noisy"][rows], arrays["clean"][rows])
    result = advisor.recommend(
        pairs, sample_rate=RATE, cache=False, **budget
    )  # measured, never a cached answer
    head = result.heads[0]
    return {
        "cpu_s": time.process_time() - cpu,  # the advisor trains in this process: every thread's CPU time
        "wall_s": time.perf_counter() - started,
        "ranking": [[c.spec.to_json(), c.rule_id] for c in head.candidates],
        "member_epochs": head.member_epochs,
        "repeats": head.repeats,
        # On a loaded machine the default 300 s cap can stop the trials before their epochs: say when it did.
        "stopped_by": head.stopped_by,
        "epochs_completed": head.epochs_completed,
        "input_snr_db": result.task.heads[0].input_snr_db,
        "verdict": head.verdict,
    }


def _advisor_safely(data_path: str, budget_s: float | None) -> dict[str, Any]:
    try:
        return call_advisor(data_path, budget_s)
    except Exception as error:  # the bench reports any failure of the advisor as a miss
        return {"error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"}


def apply_advisor(case: Case, answer: dict[str, Any]) -> list[str]:
    """Store the advisor's answer; its top pick joins the pool when it is none of the entries. Returns the
    specs that now lack ground truth."""
    case.advisor = answer
    if "error" in answer:
        return []
    index = {entry.key: i for i, entry in enumerate(case.pool)}
    missing = []
    for rank, (spec_json, rule_id) in enumerate(answer["ranking"]):
        if spec_json not in index and rank == 0:
            case.pool.append(Entry([f"advisor:{rule_id}"], LossSpec.model_validate_json(spec_json)))
            index[spec_json] = len(case.pool) - 1
            missing.append(spec_json)
    case.ranking = [index.get(spec_json, -1) for spec_json, _ in answer["ranking"]]
    return missing


# ----------------------------------------------------------------------------------------------------------
# Scores


@dataclass(frozen=True)
class Truth:
    """Per-clip test SI-SDR (entries, splits, test clips), NaN for an entry that never trained."""

    values: np.ndarray
    snr: np.ndarray
    cpu_s: float
    wall_s: float
    best_epochs: list[list[int]]

    @property
    def means(self) -> np.ndarray:
        return np.nanmean(self.values.reshape(len(self.values), -1), axis=1)


def load_truth(case: Case) -> Truth:
    records, test = read_truth(CACHE_DIR, case.ds.name), len(split_clips(CLIPS, 0)[2])
    values, snrs = (
        np.full((len(case.pool), SPLITS, test), np.nan),
        np.full((len(case.pool), SPLITS, test), np.nan),
    )
    cpu = wall = 0.0
    epochs: list[list[int]] = []
    for e, entry in enumerate(case.pool):
        epochs.append([])
        for split in range(SPLITS):
            record = records[cache_key(case.ds, entry.key, split)]
            if record["test_si_sdr"] is not None:
                values[e, split], snrs[e, split] = record["test_si_sdr"], record["test_snr"]
            cpu, wall = cpu + record["cpu_s"], wall + record["wall_s"]
            epochs[-1].append(record["best_epoch"] + 1)
    return Truth(values, snrs, cpu, wall, epochs)


def tie_set(values: np.ndarray, rng: np.random.Generator) -> set[int]:
    """Entries whose paired two-level bootstrap 95% interval of the mean difference to the best includes 0.

    Each draw resamples the splits (the training run: split and initialisation), then the test clips within
    each drawn split; the same draw serves every entry, so the differences stay paired per clip.
    """
    means = values.reshape(len(values), -1).mean(1)
    finite = np.flatnonzero(np.isfinite(means))
    best = int(finite[np.argmax(means[finite])])
    splits, clips = values.shape[1:]
    split_draws = rng.integers(0, splits, (BOOTSTRAP_DRAWS, splits))
    clip_draws = rng.integers(0, clips, (BOOTSTRAP_DRAWS, splits, clips))
    tied = {best}
    for e in finite:
        difference = values[best] - values[e]  # (splits, clips)
        resampled = difference[split_draws[:, :, None], clip_draws].mean(axis=(1, 2))
        low, high = np.quantile(resampled, [0.025, 0.975])
        if low <= 0 <= high:
            tied.add(int(e))
    return tied


def _describe(entry: Entry) -> str:
    """The first label and the loss (the STFT settings are the rules' derived ones)."""
    return f"{entry.labels[0]} ({entry.spec.loss})"


POLICIES = ("mr_stft", "si_sdr", "esr", "stft")  # "always this loss", by catalog name


def _index_of(case: Case, loss: str) -> int | None:
    return next((i for i, e in enumerate(case.pool) if e.spec.loss == loss), None)


def score_rows(cases: list[Case]) -> tuple[list[dict[str, str]], list[dict[str, str]], float, float]:
    """Per dataset: the input, pool, advisor pick, ground truth (best first, ties marked), hit@1, regret of the
    advisor and of the default, CPU seconds. Then the summary: the advisor and each "always this loss" policy
    (hit@1, mean regret over the datasets where it is in the pool). Then the CPU totals (advisor, truth)."""
    rows, scored = [], []
    advisor_cpu = truth_cpu = 0.0
    for case in cases:
        truth = load_truth(case)
        means = truth.means
        ties = tie_set(truth.values, np.random.default_rng(_seed(case.ds.name, "bootstrap")))
        pick = case.ranking[0] if case.ranking else -1
        scored.append((case, means, ties, pick))
        cpu = float(case.advisor.get("cpu_s", math.nan))
        advisor_cpu, truth_cpu = advisor_cpu + (cpu if np.isfinite(cpu) else 0.0), truth_cpu + truth.cpu_s
        order = np.argsort(-np.nan_to_num(means, nan=-np.inf))
        rows.append({
            "dataset": case.ds.name,
            "input SNR dB (profiled)": f"{case.ds.snr_db:g} ({case.task.heads[0].input_snr_db:.2f})",
            "input SI-SDR": f"{np.mean(si_sdr(case.ds.noisy, case.ds.clean)):.2f}",
            "advisor pick": case.advisor.get("error", "")[:40] or (_describe(case.pool[pick]) if pick >= 0 else "-"),
            "truth: test SI-SDR dB, best first (* tie set)": ", ".join(
                f"{case.pool[i].spec.loss} {means[i]:.2f}" + ("*" if i in ties else "") for i in order
            ),
            "hit@1": "hit" if pick in ties else "MISS",
            "regret": f"{regret(means, pick):.3f}",
            "default (mr_stft) regret": f"{regret(means, case.default):.3f}",
            # SNR penalises the gain that SI-SDR ignores: a loss blind to gain can score well here and badly there.
            "pick's test SNR dB": f"{np.nanmean(truth.snr[pick]):.2f}" if pick >= 0 else "-",
            "advisor CPU s": f"{cpu:.0f}",
            "truth CPU s": f"{truth.cpu_s:.0f}",
            "best epochs": " ".join("/".join(str(b) for b in truth.best_epochs[i]) for i in order),
        })  # fmt: skip
    summary = [{
        "policy": "ADVISOR", "datasets": str(len(scored)),
        "hit@1": f"{np.mean([p in t for _, _, t, p in scored]):.2f}",
        "mean regret": f"{np.mean([regret(m, p) for _, m, _, p in scored]):.3f}",
    }]  # fmt: skip
    for loss in POLICIES:
        picks = [(m, t, i) for c, m, t, _ in scored if (i := _index_of(c, loss)) is not None]
        if picks:
            summary.append({
                "policy": f"always {loss}" + (" (the default loss)" if loss == "mr_stft" else ""),
                "datasets": str(len(picks)), "hit@1": f"{np.mean([i in t for _, t, i in picks]):.2f}",
                "mean regret": f"{np.mean([regret(m, i) for m, _, i in picks]):.3f}",
            })  # fmt: skip
    return rows, summary, advisor_cpu, truth_cpu


def report(cases: list[Case], speech: Speech, seconds: float) -> str:
    rows, summary, advisor_cpu, truth_cpu = score_rows(cases)
    share = advisor_cpu / truth_cpu if truth_cpu else math.nan
    lines = [
        f"Speech: {speech.source}. {len(cases)} datasets of {CLIPS} clips of {CLIP_SECONDS:g} s at {RATE:,} Hz; "
        f"{SPLITS} splits {TRAIN_SHARE:.0%}/{VALIDATION_SHARE:.0%}/{1 - TRAIN_SHARE - VALIDATION_SHARE:.0%}.",
        "",
        render(rows),
        "",
        render(summary),
        "",
        f"- CPU: advisor {advisor_cpu:.0f} s = {share:.1%} of the exhaustive search's {truth_cpu:.0f} s (ground "
        f"truth: one process per fit, 1 thread). This run: {seconds:.0f} s wall.",
        "- truth: mean test SI-SDR over splits and clips; * marks the tie set (paired two-level bootstrap 95%). "
        "best epochs: the restored epoch (1-based) per split, in the truth column's order. regret: (best - pick) / "
        "(best - worst).",
        f"- protocol: {json.dumps(PROTOCOL)}",
    ]
    for case in cases:
        if case.advisor.get("verdict"):
            lines.append(
                f"- {case.ds.name}: advisor ranking "
                + " > ".join(case.pool[i].spec.loss if i >= 0 else "?" for i in case.ranking)
                + f" ({case.advisor['repeats']} repeats, {case.advisor['member_epochs']} member-epochs, "
                f"{case.advisor['wall_s']:.0f} s wall, stopped by {case.advisor['stopped_by']} after "
                f"{case.advisor['epochs_completed']} epochs). {case.advisor['verdict']}"
            )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------
# The run


def run(
    cases: list[Case],
    paths: dict[str, str],
    jobs: int,
    with_advisor: bool,
    budget_s: float | None,
    log: Callable[[str], None],
) -> None:
    """Fill the ground-truth cache and call the advisor, all in one pool of ``jobs`` processes (the advisor's
    calls first: they are the longest); the parent writes the cache as results come."""
    by_name = {case.ds.name: case for case in cases}
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures: dict[Future[Any], tuple[str, ...]] = {}

        def submit_fits(case: Case, specs: list[str]) -> None:
            cached = read_truth(CACHE_DIR, case.ds.name)
            for split in range(SPLITS):
                for spec_json in specs:
                    if cache_key(case.ds, spec_json, split) not in cached:
                        job = pool.submit(fit_one, paths[case.ds.name], case.ds.name, split, spec_json)
                        futures[job] = ("fit", case.ds.name, str(split), spec_json)

        if with_advisor:
            for case in cases:
                job = pool.submit(_advisor_safely, paths[case.ds.name], budget_s)
                futures[job] = ("advisor", case.ds.name)
        for case in cases:
            submit_fits(case, [entry.key for entry in case.pool])
        log(f"{len(futures)} jobs ({sum(k[0] == 'fit' for k in futures.values())} fits), {jobs} process(es)")
        while futures:
            future = next(as_completed(futures))
            kind, name, *rest = futures.pop(future)
            case = by_name[name]
            if kind == "advisor":
                answer = future.result()
                missing = apply_advisor(case, answer)
                log(f"  advisor {name}: " + (answer.get("error") or f"{answer['cpu_s']:.0f} CPU s, top "
                    f"{case.pool[case.ranking[0]].spec.loss}"))  # fmt: skip
                submit_fits(case, missing)
                continue
            split, spec_json = int(rest[0]), rest[1]
            record = future.result()
            records = read_truth(CACHE_DIR, name)
            label = next(e.labels[0] for e in case.pool if e.key == spec_json)
            records[cache_key(case.ds, spec_json, split)] = {"label": label, "split": split, **record}
            write_truth(CACHE_DIR, name, records)
            mean = np.mean(record["test_si_sdr"]) if record["test_si_sdr"] else math.nan
            log(f"  {name} split {split} {label}: test SI-SDR {mean:.2f} dB, best epoch {record['best_epoch'] + 1}, "
                f"{record['cpu_s']:.0f} CPU s")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--only", default="", help="comma-separated dataset names")
    parser.add_argument("--truth-only", action="store_true", help="fill the cache, skip the advisor")
    parser.add_argument("--source", choices=("auto", "espeak", "synthetic"), default="auto")
    parser.add_argument(
        "--budget-s",
        type=float,
        help="the advisor's trial wall-clock cap (default: the advisor's own, 300 s)",
    )
    parser.add_argument("--out", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    names = [n for n, _, _ in DATASETS if not args.only or n in args.only.split(",")]
    speech = make_speech(args.source)
    log(f"speech: {speech.source}")
    sets = make_datasets(speech, names)
    cases = [prepare(ds) for ds in sets]
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for ds in sets:
            paths[ds.name] = os.path.join(folder, f"{ds.name}.npz")
            np.savez(paths[ds.name], noisy=ds.noisy, clean=ds.clean)
        run(cases, paths, args.jobs, not args.truth_only, args.budget_s, log)
    if args.truth_only:
        return 0
    text = (
        f"python -m bench.audio_quality {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
        + f", {datetime.date.today()}\n\n"
        + report(cases, speech, time.perf_counter() - started)
    )
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
