"""The trial side of the audio head kind: input waveforms (C, T) with target waveforms, a stacked residual 1-D
conv net, and the waveform output adapter (:class:`advisor.trials.kinds.KindTrials`)."""

from __future__ import annotations

import math

import numpy as np

from advisor.heads import AUDIO_TRIAL_SECONDS
from advisor.spec import LossSpec
from advisor.task import Head, TaskDescription
from advisor.trials.adapters import Adapter
from advisor.trials.data import TrialData
from advisor.trials.kinds import KindTrials
from advisor.trials.synthetic import synthetic_rows
from advisor.trials.trainer import ModelFactory, TrainConfig, conv_factory

DEFAULT_SAMPLE_RATE = 16_000  # Hz, of an audio head that states none
# A dense member costs far more per row than a tabular one: this cap keeps a trial within seconds on two cores.
MAX_CLIPS = 128
# A trial costs about the same per sample whatever the clips: the user's clips get the seconds of the synthetic
# set (MAX_CLIPS clips of AUDIO_TRIAL_SECONDS), so longer clips come fewer, but never fewer than MIN_CLIPS (a
# score part of 10 clips).
MIN_CLIPS = 64


def clip_rows(samples: int, sample_rate: int | None) -> int:
    """Clips of ``samples`` samples each at ``sample_rate`` Hz that an audio trial trains on at most."""
    synthetic_samples = int((sample_rate or DEFAULT_SAMPLE_RATE) * AUDIO_TRIAL_SECONDS)
    return min(MAX_CLIPS, max(MIN_CLIPS, MAX_CLIPS * synthetic_samples // max(samples, 1)))


def rows(x: np.ndarray, head: Head, max_rows: int) -> int:
    """Clips (N, C, T) a trial keeps: :func:`clip_rows` of their length, at most ``max_rows``."""
    return min(max_rows, clip_rows(x.shape[-1], head.sample_rate))


def adapter(head: Head, spec: LossSpec) -> Adapter:
    """One output channel: the estimated waveform."""
    return Adapter("wave", 1)


def model(data: TrialData, config: TrainConfig) -> ModelFactory:
    """A residual 1-D conv net: the input is added to its output (a denoiser predicts a correction to it)."""
    return conv_factory(1, data.x.shape[1], config, residual=True)


def generate(head: Head, task: TaskDescription, limit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Denoising clips at the stated sample rate: harmonic tones with envelopes, plus noise at about 5 dB."""
    rng = np.random.default_rng(seed)
    rate = head.sample_rate or DEFAULT_SAMPLE_RATE
    count, length = min(synthetic_rows(task, limit), MAX_CLIPS), int(rate * AUDIO_TRIAL_SECONDS)
    t = np.arange(length) / rate
    base = rng.uniform(110, min(2000, rate / 8), (count, 1))
    clean = sum(
        np.sin(2 * math.pi * base * k * t + rng.uniform(0, 2 * math.pi, (count, 1))) / k for k in (1, 2, 3)
    )
    clean *= np.exp(-t * rng.uniform(1, 8, (count, 1)))
    noisy = clean + rng.normal(size=clean.shape) * clean.std() * 10 ** (-5 / 20)
    return noisy[:, None].astype(np.float32), clean[:, None].astype(np.float32)


AUDIO = KindTrials(adapter=adapter, generate=generate, model=model, rows=rows)
