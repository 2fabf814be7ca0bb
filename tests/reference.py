"""Independent float64 numpy derivations of the catalog's losses, written from the published formulas.

Nothing here calls the code under test or torch: every expected value in ``test_loss_values.py`` comes from
these functions (or from plain arithmetic in the test itself).
"""

from __future__ import annotations

import math

import numpy as np

# ------------------------------------------------------------------------------------------------- helpers


def reduce(values, reduction, denominator=None):
    """'none' -> values, 'sum' -> sum, 'mean' -> sum / denominator (default: element count)."""
    values = np.asarray(values, dtype=np.float64)
    if reduction == "none":
        return values
    if reduction == "sum":
        return values.sum()
    denominator = values.size if denominator is None else denominator
    return values.sum() / denominator if denominator != 0 else 0.0


def log_softmax(z, axis=1):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(z, axis=1):
    return np.exp(log_softmax(z, axis))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def class_last(z):
    """(N, C, *) -> (M, C), rows in the C-order of the target (N, *)."""
    z = np.asarray(z, dtype=np.float64)
    return np.moveaxis(z, 1, -1).reshape(-1, z.shape[1])


# ---------------------------------------------------------------------------------------------- regression


def mse(x, y):
    return (x - y) ** 2


def l1(x, y):
    return np.abs(x - y)


def huber(x, y, delta):
    r = np.abs(x - y)
    return np.where(r < delta, 0.5 * r**2, delta * (r - 0.5 * delta))


def smooth_l1(x, y, beta):
    r = np.abs(x - y)
    return np.where(r < beta, 0.5 * r**2 / beta, r - 0.5 * beta)


def log_cosh(x, y):
    return np.log(np.cosh(x - y))


def pinball(pred, y, levels):
    """pred (*, Q), y (*): max(q e, (q - 1) e), e = y - pred."""
    levels = np.asarray(levels, dtype=np.float64)
    e = y[..., None] - pred
    return np.where(e >= 0, levels * e, (levels - 1.0) * e)


def gaussian_nll(mean, log_var, y, eps=1e-6, full=False):
    var = np.maximum(np.exp(log_var), eps)
    nll = 0.5 * (np.log(var) + (y - mean) ** 2 / var)
    return nll + 0.5 * math.log(2 * math.pi) if full else nll


def beta_nll(mean, log_var, y, beta, eps=1e-6, full=False):
    var = np.maximum(np.exp(log_var), eps)
    return var**beta * gaussian_nll(mean, log_var, y, eps, full)


def poisson_nll(x, y, log_input=True, full=False, eps=1e-8):
    loss = np.exp(x) - y * x if log_input else x - y * np.log(x + eps)
    if full:
        safe = np.where(y > 1, y, 1.0)
        stirling = safe * np.log(safe) - safe + 0.5 * np.log(2 * math.pi * safe)
        loss = loss + np.where(y > 1, stirling, 0.0)
    return loss


def tweedie(eta, y, p):
    mu = np.exp(eta)
    return -y * mu ** (1.0 - p) / (1.0 - p) + mu ** (2.0 - p) / (2.0 - p)


def kl_div(log_q, t):
    """Pointwise t (log t - log q), 0 where t = 0."""
    safe = np.where(t > 0, t, 1.0)
    return np.where(t > 0, t * (np.log(safe) - log_q), 0.0)


# ------------------------------------------------------------------------------------------ classification


def cross_entropy(logits, target, weight=None, ignore_index=-100, smoothing=0.0, reduction="mean"):
    """torch's CE: (1-e) w_y (-log p_y) + (e/C) sum_c w_c (-log p_c); mean / sum of valid w_y."""
    rows = class_last(logits)
    t = np.asarray(target).reshape(-1)
    c = rows.shape[1]
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    logp = log_softmax(rows, axis=1)
    per, den = [], 0.0
    for i, y in enumerate(t):
        if y == ignore_index:
            per.append(0.0)
            continue
        value = (1 - smoothing) * w[y] * (-logp[i, y]) + smoothing / c * sum(
            w[k] * (-logp[i, k]) for k in range(c)
        )
        per.append(value)
        den += w[y]
    per = np.array(per)
    if reduction == "none":
        return per.reshape(np.shape(target))
    return reduce(per, reduction, den)


def focal(logits, target, gamma, alpha=None, ignore_index=-100, mean_over="samples", reduction="mean"):
    rows = class_last(logits)
    t = np.asarray(target).reshape(-1)
    p = softmax(rows, axis=1)
    per, count = [], 0
    for i, y in enumerate(t):
        if y == ignore_index:
            per.append(0.0)
            continue
        a = 1.0 if alpha is None else alpha[y]
        per.append(-a * (1 - p[i, y]) ** gamma * math.log(p[i, y]))
        count += 1
    per = np.array(per)
    if reduction == "none":
        return per.reshape(np.shape(target))
    return reduce(per, reduction, count * (rows.shape[1] if mean_over == "elements" else 1))


def binary_focal(x, y, gamma, alpha):
    """-a_t (1 - p_t)^g log p_t with p_t = p if y = 1 else 1 - p."""
    p = sigmoid(x)
    pt = np.where(y == 1, p, 1 - p)
    at = 1.0 if alpha is None else np.where(y == 1, alpha, 1 - alpha)
    return -at * (1 - pt) ** gamma * np.log(pt)


def bce(x, y, weight=1.0, pos_weight=1.0):
    p = sigmoid(x)
    return -weight * (pos_weight * y * np.log(p) + (1 - y) * np.log(1 - p))


def asl(x, y, gamma_neg, gamma_pos, clip):
    p = sigmoid(x)
    pm = np.maximum(p - clip, 0.0)
    positive = y * (1 - p) ** gamma_pos * np.log(p)
    negative = (1 - y) * pm**gamma_neg * np.log(1 - pm)
    return -(positive + negative)


def class_balanced_weights(counts, beta):
    n = np.maximum(np.asarray(counts, dtype=np.float64), 1.0)
    w = (1 - beta) / (1 - beta**n)
    return w * len(n) / w.sum()


def per_sample_pt(logits, target):
    rows = class_last(logits)
    t = np.asarray(target).reshape(-1)
    return softmax(rows, axis=1)[np.arange(len(t)), t]


def poly1(logits, target, epsilon):
    pt = per_sample_pt(logits, target)
    return -np.log(pt) + epsilon * (1 - pt)


def gce(logits, target, q):
    pt = per_sample_pt(logits, target)
    return (1 - pt**q) / q


def sce(logits, target, alpha, beta, log_zero):
    """alpha CE + beta RCE; RCE = -sum_c p_c log q_c with q the one-hot label and log 0 := A."""
    rows = class_last(logits)
    t = np.asarray(target).reshape(-1)
    p = softmax(rows, axis=1)
    log_q = np.full(p.shape, float(log_zero))
    log_q[np.arange(len(t)), t] = 0.0
    rce = -(p * log_q).sum(axis=1)
    return alpha * -np.log(p[np.arange(len(t)), t]) + beta * rce


# -------------------------------------------------------------------------------------------- segmentation


def seg_arrays(logits, target, activation="softmax", ignore_index=None):
    """(N, C, P) probabilities and one-hot targets with ignored pixels zeroed in both."""
    z = np.asarray(logits, dtype=np.float64)
    n, c = z.shape[:2]
    z = z.reshape(n, c, -1)
    p = {"softmax": lambda a: softmax(a, axis=1), "sigmoid": sigmoid, "none": lambda a: a}[activation](z)
    t = np.asarray(target)
    if t.shape == np.shape(logits):
        return p, t.reshape(n, c, -1).astype(np.float64)
    t = t.reshape(n, -1)
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    if c == 1:
        g = np.where(keep, t, 0)[:, None].astype(np.float64)
    else:
        g = np.stack([(t == k) & keep for k in range(c)], axis=1).astype(np.float64)
    return p * keep[:, None], g


def overlap(p, g, batch=False, include_background=True, squared=False):
    if not include_background:
        p, g = p[:, 1:], g[:, 1:]
    axes = (0, 2) if batch else (2,)
    power = 2 if squared else 1
    return (p * g).sum(axes), (p**power).sum(axes), (g**power).sum(axes)


def reduce_classes(values, sum_g, empty, reduction, weight=None):
    """Mean over counted (sample, class) values; with per-class weights w_c (already restricted to the scored
    classes) the weighted mean sum w_c L / sum w_c over counted values."""
    counted = sum_g > 0 if empty == "skip" else np.ones(values.shape, bool)
    w = np.ones(values.shape[-1]) if weight is None else np.asarray(weight, dtype=np.float64)
    weighted = np.where(counted, values, 0.0) * w
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    denominator = (counted * w).sum()
    return weighted.sum() / denominator if denominator != 0 else 0.0


def lovasz_jaccard_set_loss(mispredicted, foreground):
    """Jaccard loss of class c as a function of the set M of mispredicted pixels: |M| / |fg u M|."""
    union = foreground | mispredicted
    return mispredicted.sum() / union.sum() if union.sum() else 0.0


def lovasz_extension(errors, foreground):
    """Lovasz extension of the Jaccard set loss at the error vector: sort errors descending and sum
    e_(i) * (Delta({pi_1..pi_i}) - Delta({pi_1..pi_(i-1)}))."""
    order = np.argsort(-errors, kind="stable")
    total, previous = 0.0, 0.0
    chosen = np.zeros(len(errors), bool)
    for i in order:
        chosen[i] = True
        current = lovasz_jaccard_set_loss(chosen, foreground)
        total += errors[i] * (current - previous)
        previous = current
    return total


def lovasz_softmax(probs, labels, classes="present"):
    """probs (P, C), labels (P,): mean over (present) classes of the Lovasz extension of |fg - p_c|."""
    values = []
    for c in range(probs.shape[1]):
        fg = labels == c
        if classes == "present" and not fg.any():
            continue
        values.append(lovasz_extension(np.abs(fg - probs[:, c]), fg))
    return float(np.mean(values))


def lovasz_hinge(logits, labels):
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    order = np.argsort(-errors, kind="stable")
    fg = labels == 1
    total, previous = 0.0, 0.0
    chosen = np.zeros(len(errors), bool)
    for i in order:
        chosen[i] = True
        current = lovasz_jaccard_set_loss(chosen, fg)
        total += max(errors[i], 0.0) * (current - previous)
        previous = current
    return total


# ------------------------------------------------------------------------------------------------- audio


def _zero_mean(a):
    return a - a.mean(axis=-1, keepdims=True)


def esr(x, y, eps):
    return ((y - x) ** 2).sum(-1) / ((y**2).sum(-1) + eps)


def snr(x, y, zero_mean, eps):
    if zero_mean:
        x, y = _zero_mean(x), _zero_mean(y)
    return -10 * np.log10((y**2).sum(-1) / (((y - x) ** 2).sum(-1) + eps) + eps)


def si_sdr(x, y, zero_mean, eps):
    if zero_mean:
        x, y = _zero_mean(x), _zero_mean(y)
    a = (x * y).sum(-1) / ((y**2).sum(-1) + eps)
    s = a[..., None] * y
    return -10 * np.log10((s**2).sum(-1) / (((s - x) ** 2).sum(-1) + eps) + eps)


def hann_periodic(length):
    n = np.arange(length)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / length)


def stft_magnitude(x, n_fft, hop, win_length, eps, window=None):
    """|STFT| of (B, T) signals as torch.stft defaults give it: centred frames with reflect padding of
    n_fft // 2, the window zero-padded to n_fft in the middle, one-sided, not normalised; the magnitude is
    sqrt(max(re^2 + im^2, eps)). Returns (B, n_fft // 2 + 1, frames)."""
    w = hann_periodic(win_length) if window is None else window
    padded_window = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    padded_window[left : left + win_length] = w
    pad = n_fft // 2
    xp = np.pad(x, ((0, 0), (pad, pad)), mode="reflect")
    frames = 1 + (xp.shape[1] - n_fft) // hop
    index = hop * np.arange(frames)[:, None] + np.arange(n_fft)[None, :]
    spectrum = np.fft.rfft(xp[:, index] * padded_window, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    return np.sqrt(np.maximum(power, eps)).transpose(0, 2, 1)


def stft_loss(
    x, y, n_fft, hop, win_length, eps=1e-8, w_sc=1.0, w_log=1.0, w_lin=0.0, distance="L1", window=None
):
    """w_sc ||Y| - |X||_F / ||Y||_F + w_log mean d(log|Y|, log|X|) + w_lin mean d(|Y|, |X|), pooled over the
    batch; x = input, y = target, each (N, ch, T)."""
    xm = stft_magnitude(x.reshape(-1, x.shape[-1]), n_fft, hop, win_length, eps, window)
    ym = stft_magnitude(y.reshape(-1, y.shape[-1]), n_fft, hop, win_length, eps, window)

    def dist(a, b):
        return np.mean(np.abs(a - b)) if distance == "L1" else np.mean((a - b) ** 2)

    sc = np.sqrt(((ym - xm) ** 2).sum()) / np.sqrt((ym**2).sum())
    return w_sc * sc + w_log * dist(np.log(ym), np.log(xm)) + w_lin * dist(ym, xm)
