"""Named parameter derivations: the only computation a rule may ask for.

Each derivation is a small reviewed function of the rule context (task, head, facts) and optional keyword
arguments written in the rule (``{derive: pos_weight, cap: 100}``). None produces NaN or infinity for zero
counts. A derivation raises :class:`DerivationError` when the head lacks what it needs; the rule then does not
apply.
"""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from advisor.heads import DEFAULT_TWEEDIE_POWER, deviance_power
from advisor.rules.facts import Facts
from advisor.task import Head, TaskDescription

# Parallel WaveGAN's multi-resolution STFT settings, designed for 24 kHz audio.
_REFERENCE_RATE = 24_000
_REFERENCE_FFT = (1024, 2048, 512)
_REFERENCE_HOP = (120, 240, 50)
_REFERENCE_WIN = (600, 1200, 240)


class DerivationError(Exception):
    """The head lacks a statistic a derivation needs (not a user error: the rule just does not apply)."""


@dataclass(frozen=True)
class RuleContext:
    task: TaskDescription
    head: Head
    facts: Facts


Derivation = Callable[..., Any]
DERIVATIONS: dict[str, Derivation] = {}


def derivation(function: Derivation) -> Derivation:
    """Register ``function`` under its name; its keyword-only parameters are the arguments a rule may pass."""
    DERIVATIONS[function.__name__] = function
    return function


def derivation_arguments(name: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments derivation ``name`` accepts."""
    parameters = inspect.signature(DERIVATIONS[name]).parameters
    return {key: p for key, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _histogram(ctx: RuleContext) -> list[int]:
    if not ctx.head.class_histogram:
        raise DerivationError(f"head {ctx.head.name!r} has no class histogram")
    return ctx.head.class_histogram


def _rounded(values: list[float]) -> list[float]:
    """Six significant digits: specs stay readable and examples can state values by hand."""
    return [float(f"{v:.6g}") for v in values]


@derivation
def class_counts(ctx: RuleContext) -> list[int]:
    """The class histogram itself (dataset-level counts for class-balanced, LDAM and logit-adjusted losses)."""
    return list(_histogram(ctx))


@derivation
def inverse_frequency_weights(ctx: RuleContext, *, power: float = 1.0) -> list[float]:
    """w_c = (N / (K n_c))^power; a zero count is treated as 1 so no weight is infinite."""
    counts = _histogram(ctx)
    total, k = sum(counts), len(counts)
    return _rounded([(total / (k * max(n, 1))) ** power for n in counts])


@derivation
def normalized_inverse_frequency(ctx: RuleContext) -> list[float]:
    """Inverse-frequency weights scaled to sum to 1 (a focal ``alpha`` vector)."""
    weights = [1.0 / max(n, 1) for n in _histogram(ctx)]
    total = sum(weights)  # once: a sum per class made this quadratic in the number of classes
    return _rounded([w / total for w in weights])


@derivation
def effective_number_weights(ctx: RuleContext, *, beta: float = 0.999) -> list[float]:
    """Cui et al. (2019): (1 - beta) / (1 - beta^n_c), normalised to sum to K; zero counts as 1."""
    counts = [max(n, 1) for n in _histogram(ctx)]
    weights = [(1 - beta) / (1 - beta**n) if beta > 0 else 1.0 for n in counts]
    scale = len(counts) / sum(weights)
    return _rounded([w * scale for w in weights])


@derivation
def class_balanced_beta(ctx: RuleContext) -> float:
    """beta = 1 - 1 / n_max, clipped to [0.9, 0.9999] (selection.md: smaller beta makes weights uniform)."""
    return round(min(max(1 - 1 / max(max(_histogram(ctx)), 1), 0.9), 0.9999), 6)


@derivation
def pos_weight(ctx: RuleContext, *, cap: float = 100.0) -> list[float]:
    """n_neg / n_pos for a binary head, or (1 - p_c) / p_c per label for a multilabel head, capped."""
    if ctx.head.positive_rates:
        rates = ctx.head.positive_rates
        return _rounded([min((1 - p) / p, cap) if p > 0 else cap for p in rates])
    negatives, positives = _histogram(ctx)
    return [round(min(negatives / positives, cap) if positives > 0 else cap, 6)]


@derivation
def positive_share_alpha(ctx: RuleContext) -> float:
    """Binary focal alpha = n_neg / N: positives weighted by how rare they are (0.25 when balanced-ish)."""
    negatives, positives = _histogram(ctx)
    return round(negatives / (negatives + positives), 6)


@derivation
def median_frequency_weights(ctx: RuleContext, *, cap: float = 10.0) -> list[float]:
    """Per-class weights of a segmentation head, background first: w_c = median(f) / f_c over the pixel
    shares f (the background's is 1 minus the foreground shares), capped at ``cap`` (a class without pixels
    gets the cap). Eigen & Fergus (2015), SegNet's class balancing."""
    shares = ctx.head.foreground_shares
    if not shares:
        raise DerivationError(f"head {ctx.head.name!r} has no foreground shares")
    if ctx.head.overlapping_classes:  # multi-label channels: no background class to put first
        raise DerivationError(f"head {ctx.head.name!r} has overlapping classes and no background")
    frequencies = [max(1.0 - sum(shares), 0.0), *shares]
    median = statistics.median(frequencies)
    return _rounded([min(median / f, cap) if f > 0 else cap for f in frequencies])


@derivation
def noise_label_smoothing(ctx: RuleContext, *, low: float = 0.05, high: float = 0.2) -> float:
    """Label smoothing about equal to the known noise rate, within [low, high]."""
    rate = ctx.facts.label_noise_rate
    if rate is None:
        raise DerivationError("no label-noise rate is known")
    return round(min(max(rate, low), high), 6)


@derivation
def huber_delta(ctx: RuleContext, *, factor: float = 1.345) -> float:
    """delta = 1.345 s, s the robust residual scale (Huber's 95%-efficiency constant), in target units."""
    summary = ctx.head.target
    scale = summary.robust_scale if summary else None
    if scale is None and summary and summary.variance:
        scale = math.sqrt(summary.variance)
    if not scale:
        raise DerivationError("no robust scale or variance of the target is known")
    return round(factor * scale, 6)


# The Tweedie loss takes 1 < p < 2; estimated or stated powers are clipped to this range (selection.md), and
# the ends have their own losses (poisson_nll for p = 1) or are approximated (p = 2, gamma, by 1.9).
_TWEEDIE_LOSS_POWERS = (1.1, 1.9)


@derivation
def tweedie_power(ctx: RuleContext, *, from_dispersion: bool = True) -> float:
    """Tweedie power of a loss, clipped to [1.1, 1.9].

    The head's stated ``tweedie_power`` as it is; else 2 (clipped to 1.9) under the gamma deviance; else, with
    ``from_dispersion``, from the count dispersion D: 1 + log10(D) / 2 + 0.1 to 2 decimals, nearer 1.1 for
    Poisson-like and 1.9 for very overdispersed counts; else 1.5.
    """
    low, high = _TWEEDIE_LOSS_POWERS
    stated, dispersion = ctx.head.tweedie_power, ctx.facts.dispersion
    if stated is not None:
        power = stated
    elif ctx.head.metric == "gamma_deviance":
        power = deviance_power("gamma_deviance")
    elif from_dispersion and dispersion is not None:
        power = round(1.0 + math.log10(max(dispersion, 1.0)) / 2 + 0.1, 2)
    else:
        power = DEFAULT_TWEEDIE_POWER
    return float(min(max(power, low), high))


def _scaled_resolutions(ctx: RuleContext, reference: tuple[int, ...]) -> list[int]:
    rate = ctx.head.sample_rate or _REFERENCE_RATE
    return [max(16, round(v * rate / _REFERENCE_RATE)) for v in reference]


@derivation
def stft_fft_sizes(ctx: RuleContext) -> list[int]:
    """FFT sizes of the multi-resolution STFT scaled to the sample rate, rounded to powers of two."""
    return [2 ** max(4, round(math.log2(v))) for v in _scaled_resolutions(ctx, _REFERENCE_FFT)]


@derivation
def stft_hop_sizes(ctx: RuleContext) -> list[int]:
    """Hop sizes of the multi-resolution STFT scaled to the sample rate."""
    return _scaled_resolutions(ctx, _REFERENCE_HOP)


@derivation
def stft_win_lengths(ctx: RuleContext) -> list[int]:
    """Window lengths of the multi-resolution STFT scaled to the sample rate (never above the FFT size)."""
    return [
        min(w, f) for w, f in zip(_scaled_resolutions(ctx, _REFERENCE_WIN), stft_fft_sizes(ctx), strict=True)
    ]
