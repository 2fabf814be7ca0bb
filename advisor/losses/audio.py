"""Audio waveform losses, wrapping ``auraloss`` (Steinmetz & Reiss 2020).

Input and target are waveforms (N, channels, T) in the same units. Mel/chroma scaling and perceptual
weighting of auraloss are not exposed: they need librosa and scipy, which are not dependencies.
"""

from __future__ import annotations

from typing import Literal

import auraloss
from pydantic import Field, model_validator
from torch import Tensor, nn

from advisor.errors import FieldViolation, LossInputError
from advisor.losses._base import (
    CatalogLoss,
    LossParams,
    Reduction,
    ReductionField,
    TensorFormat,
    check_same_shape,
)
from advisor.losses.registry import register_loss

Window = Literal["hann_window", "hamming_window", "blackman_window", "bartlett_window"]
_WAVEFORM = "waveforms (N, channels, T)"
_REFERENCE_AURALOSS = "Steinmetz & Reiss (2020), auraloss: Audio-focused loss functions in PyTorch"


def _check_waveforms(input: Tensor, target: Tensor, loss: str) -> None:
    check_same_shape(input, target, loss)
    if input.dim() != 3:
        raise LossInputError(
            FieldViolation("input", f"{loss}: waveforms must be (N, channels, T), got {tuple(input.shape)}")
        )


class _AuralossLoss(CatalogLoss):
    """Builds its auraloss module once from the validated parameters and checks waveform shapes."""

    tensor_format = TensorFormat.of("waveform", "like_input")

    def __init__(self, params: LossParams | None = None, **kwargs) -> None:
        super().__init__(params, **kwargs)
        self.inner = self.make_inner(self.params)

    def make_inner(self, p) -> nn.Module:
        raise NotImplementedError

    def compute(self, input: Tensor, target: Tensor) -> Tensor:
        _check_waveforms(input, target, self.loss_name)
        return self.inner(input, target)


class _SpectralParams(LossParams):
    window: Window = Field("hann_window", description="Analysis window (a torch window function).")
    w_sc: float = Field(1.0, ge=0, description="Weight of spectral convergence.")
    w_log_mag: float = Field(1.0, ge=0, description="Weight of the log-magnitude distance.")
    w_lin_mag: float = Field(0.0, ge=0, description="Weight of the linear-magnitude distance.")
    w_phs: float = Field(0.0, ge=0, description="Weight of the phase MSE.")
    mag_distance: Literal["L1", "L2"] = Field("L1", description="Distance of the magnitude terms.")
    eps: float = Field(1e-8, gt=0, description="Floor of the squared magnitude before its square root.")


class STFTParams(_SpectralParams):
    fft_size: int = Field(1024, ge=16, description="FFT size in samples.")
    hop_size: int = Field(256, ge=1, description="Hop between frames in samples.")
    win_length: int = Field(1024, ge=2, description="Window length in samples (at most fft_size).")

    @model_validator(mode="after")
    def _window_fits(self) -> STFTParams:
        if self.win_length > self.fft_size:
            raise ValueError(f"win_length {self.win_length} must not exceed fft_size {self.fft_size}")
        return self


def _stft_kwargs(p: _SpectralParams) -> dict:
    return {
        "window": p.window,
        "w_sc": p.w_sc,
        "w_log_mag": p.w_log_mag,
        "w_lin_mag": p.w_lin_mag,
        "w_phs": p.w_phs,
    }


@register_loss(
    "stft",
    heads=("audio",),
    input=_WAVEFORM,
    target=_WAVEFORM,
    reference="Yamamoto et al. (2019), Probability density distillation with generative adversarial networks "
    "(STFT loss); " + _REFERENCE_AURALOSS,
    _builtin=True,
)
class STFTLoss(_AuralossLoss):
    """STFT loss: w_sc ||  |Y| - |X| ||_F / || |Y| ||_F + w_log_mag || log|Y| - log|X| ||_1 / n (+ optional terms).

    One time-frequency resolution; returns the batch mean (auraloss's spectral convergence is pooled over the
    batch, so there is no per-sample form). Wraps ``auraloss.freq.STFTLoss``.
    """

    Params = STFTParams

    def make_inner(self, p) -> nn.Module:
        return auraloss.freq.STFTLoss(
            p.fft_size, p.hop_size, p.win_length, eps=p.eps, mag_distance=p.mag_distance, **_stft_kwargs(p)
        )


class MRSTFTParams(_SpectralParams):
    fft_sizes: list[int] = Field(
        default_factory=lambda: [1024, 2048, 512], min_length=1, description="FFT size of each resolution."
    )
    hop_sizes: list[int] = Field(
        default_factory=lambda: [120, 240, 50], min_length=1, description="Hop size of each resolution."
    )
    win_lengths: list[int] = Field(
        default_factory=lambda: [600, 1200, 240],
        min_length=1,
        description="Window length of each resolution (at most its fft size).",
    )

    @model_validator(mode="after")
    def _resolutions_fit(self) -> MRSTFTParams:
        if not len(self.fft_sizes) == len(self.hop_sizes) == len(self.win_lengths):
            raise ValueError("fft_sizes, hop_sizes and win_lengths must have the same length")
        for fft, hop, win in zip(self.fft_sizes, self.hop_sizes, self.win_lengths, strict=True):
            if not (fft >= 16 and hop >= 1 and 2 <= win <= fft):
                raise ValueError(
                    f"resolution (fft {fft}, hop {hop}, win {win}) needs fft >= 16, hop >= 1, 2 <= win <= fft"
                )
        return self


@register_loss(
    "mr_stft",
    heads=("audio",),
    input=_WAVEFORM,
    target=_WAVEFORM,
    reference="Yamamoto et al. (2020), Parallel WaveGAN, ICASSP; " + _REFERENCE_AURALOSS,
    _builtin=True,
)
class MultiResolutionSTFTLoss(_AuralossLoss):
    """Multi-resolution STFT loss: the mean of STFT losses at several (fft, hop, window) resolutions.

    The standard waveform-synthesis loss; defaults are Parallel WaveGAN's three resolutions. Returns the
    batch mean. Wraps ``auraloss.freq.MultiResolutionSTFTLoss``.
    """

    Params = MRSTFTParams

    def make_inner(self, p) -> nn.Module:
        return auraloss.freq.MultiResolutionSTFTLoss(
            p.fft_sizes, p.hop_sizes, p.win_lengths, eps=p.eps, mag_distance=p.mag_distance, **_stft_kwargs(p)
        )


class RatioParams(LossParams):
    zero_mean: bool = Field(True, description="Remove each signal's mean (DC offset) first.")
    eps: float = Field(1e-8, gt=0, description="Stabiliser added inside the ratio and the log.")
    reduction: Reduction = ReductionField


@register_loss(
    "si_sdr",
    heads=("audio",),
    input=_WAVEFORM,
    target=_WAVEFORM,
    reference="Le Roux et al. (2019), SDR - half-baked or well done?, ICASSP; " + _REFERENCE_AURALOSS,
    _builtin=True,
)
class SISDRLoss(_AuralossLoss):
    """Negative scale-invariant SDR: -10 log10(||a y||^2 / ||a y - x||^2), a = <x, y> / ||y||^2, in dB.

    For separation and enhancement; insensitive to the output's gain. Per signal over the last dimension;
    'mean' over N x channels. Wraps ``auraloss.time.SISDRLoss``.
    """

    Params = RatioParams

    def make_inner(self, p) -> nn.Module:
        return auraloss.time.SISDRLoss(zero_mean=p.zero_mean, eps=p.eps, reduction=p.reduction)


@register_loss(
    "snr",
    heads=("audio",),
    input=_WAVEFORM,
    target=_WAVEFORM,
    reference=_REFERENCE_AURALOSS,
    _builtin=True,
)
class SNRLoss(_AuralossLoss):
    """Negative signal-to-noise ratio: -10 log10(||y||^2 / ||y - x||^2), in dB.

    Scale-dependent counterpart of SI-SDR. Per signal over the last dimension. Wraps ``auraloss.time.SNRLoss``.
    """

    Params = RatioParams

    def make_inner(self, p) -> nn.Module:
        return auraloss.time.SNRLoss(zero_mean=p.zero_mean, eps=p.eps, reduction=p.reduction)


class ESRParams(LossParams):
    eps: float = Field(1e-8, gt=0, description="Added to the target energy.")
    reduction: Reduction = ReductionField


@register_loss(
    "esr",
    heads=("audio",),
    input=_WAVEFORM,
    target=_WAVEFORM,
    reference="Wright & Valimaki (2020), Perceptual loss function for neural modelling of audio systems, ICASSP; "
    + _REFERENCE_AURALOSS,
    _builtin=True,
)
class ESRLoss(_AuralossLoss):
    """Error-to-signal ratio: ||y - x||^2 / (||y||^2 + eps), per signal over the last dimension.

    For modelling audio effects and circuits (often beside a pre-emphasis filter). Wraps
    ``auraloss.time.ESRLoss``.
    """

    Params = ESRParams

    def make_inner(self, p) -> nn.Module:
        return auraloss.time.ESRLoss(eps=p.eps, reduction=p.reduction)
