"""One self-contained HTML report of a :class:`~advisor.recommendation.Recommendation`.

``write_report(recommendation, "report.html")`` writes a single file that opens anywhere, offline: the inferred
task, per head the ranking table, a chart of each candidate's metric across repeats, the validation curves of the
trial fits, the rules' rationales with their references, the ``multi_task`` specs, and the winner's spec with a
copy-ready snippet; given the segmentation or audio data the recommendation was profiled from, also a few samples
of it beside the ranking (images with their masks, or spectrograms of input and target clips). Charts are
matplotlib (Agg) PNGs embedded as base64; styles and the copy button are inline.
Every piece of text is HTML-escaped, so rule rationales, column names or head names cannot inject markup.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from advisor._text import shorten
from advisor.explain import head_decimals
from advisor.heads import chance_level
from advisor.recommendation import HeadResult, RankedCandidate, Recommendation, key_params
from advisor.task import Head

__all__ = ["render_report", "snippet", "write_report"]

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;margin:0;background:#f5f6f8}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:34px 0 8px;border-bottom:2px solid #e3e6ea;padding-bottom:4px}
h1 code,h2 code,h3 code{font-size:.9em}h3{font-size:16px;margin:22px 0 6px}p{margin:6px 0}.muted{color:#5f6b7a}.small{font-size:13px}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:8px 0}
th,td{border:1px solid #dde1e6;padding:5px 7px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.winner td{background:#e6f4ea}tr.winner td.key{font-weight:700}tr.tie td{background:#f6fbf7}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
pre{background:#f3f5f7;border:1px solid #dde1e6;border-radius:6px;padding:10px 12px;overflow-x:auto;margin:6px 0;white-space:pre}
.box{border:1px solid #b7dfc3;background:#f3fbf5;border-radius:8px;padding:12px 16px;margin:14px 0}
.note{border-left:4px solid #e0a800;background:#fff8e1;padding:8px 12px;margin:10px 0}.verdict{font-size:16px;margin:8px 0}
.snippet{position:relative}.snippet button{position:absolute;top:6px;right:6px;font-size:12px;padding:3px 10px;
cursor:pointer;border:1px solid #9aa5b1;border-radius:4px;background:#fff}
img.chart{max-width:100%;height:auto;display:block;margin:8px 0}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0}dl.kv dt{font-weight:600}dl.kv dd{margin:0}
ul{margin:4px 0 4px 20px;padding:0}details{margin:6px 0}summary{cursor:pointer;color:#2457a6}
.samples{display:flex;flex-wrap:wrap;gap:4px 22px}.samples figure{margin:6px 0}.samples figcaption{font-size:13px;color:#5f6b7a}
.swatch{display:inline-block;width:12px;height:12px;border:1px solid #0004;border-radius:2px;vertical-align:-1px;margin:0 4px 0 10px}
.rule{margin:10px 0 14px}.rule .id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px;color:#5f6b7a}
"""

_SCRIPT = """
document.querySelectorAll("button[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var text = source.textContent;
    function done(label) { button.textContent = label; setTimeout(function () { button.textContent = "Copy"; }, 1500); }
    function fallback() {
      var range = document.createRange(); range.selectNodeContents(source);
      var selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);
      try { document.execCommand("copy"); done("Copied"); } catch (e) { done("Press Ctrl+C"); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done("Copied"); }, fallback);
    } else { fallback(); }
  });
});
"""

_DPI = 160
_STYLE = {"font.size": 9, "text.parse_math": False, "axes.spines.top": False, "axes.spines.right": False}
_STAT_SKIP = {"name", "type", "metric", "class_labels", "class_histogram"}


def _t(value: Any) -> str:
    """Escaped text for element content."""
    return html.escape(str(value), quote=False)


def _a(value: Any) -> str:
    """Escaped text for an attribute value."""
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.{digits}g}"


def _chart_label(candidate: RankedCandidate, ranks: Sequence[int] | None = None) -> str:
    ranks = ranks or [candidate.rank]
    params = key_params(candidate.spec, limit=34)
    base = (
        f"#{', #'.join(str(r) for r in ranks)} {candidate.label if len(ranks) == 1 else candidate.spec.loss}"
    )
    return base + (f" ({params})" if params else "")


def _python_literal(value: Any, level: int = 0, width: int = 96) -> str:
    """Python source for JSON data, laid out the way ``ruff format`` would."""
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string literal is a valid Python string literal
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, dict):
        items = [f"{_python_literal(k)}: {_python_literal(v, level + 1, width)}" for k, v in value.items()]
        opening, closing = "{", "}"
    else:
        items = [_python_literal(v, level + 1, width) for v in value]
        opening, closing = "[", "]"
    flat = opening + ", ".join(items) + closing
    if len(flat) + 4 * (level + 1) <= width or not items:
        return flat
    pad = "    " * (level + 1)
    return opening + "\n" + "".join(f"{pad}{item},\n" for item in items) + "    " * level + closing


def snippet(candidate: RankedCandidate) -> str:
    """Copy-ready Python that builds the candidate's loss (and says what else to do with it)."""
    spec = candidate.spec.model_dump(mode="json")
    lines = ["import advisor", "", f"loss = advisor.build_loss({_python_literal(spec)})"]
    if spec["loss"] == "multi_task":
        scheme = spec["params"].get("weighting", {}).get("scheme")
        names = list(spec["params"].get("heads", {}))
        outputs = ", ".join(f'"{n}": {n}_output' for n in names)
        targets = ", ".join(f'"{n}": {n}_target' for n in names)
        lines.append(f"# total = loss({{{outputs}}}, {{{targets}}})")
        if scheme == "uncertainty":
            lines.append("# the uncertainty weights are learned: optimize them with the model:")
            lines.append("# optimizer = torch.optim.Adam([*model.parameters(), *loss.parameters()])")
        elif scheme == "dwa":
            lines.append(
                "# call loss.end_epoch() after every epoch (DWA re-weights from the last two epochs)"
            )
    recipe = candidate.post_hoc
    if recipe is not None:
        lines.append(f"# at prediction time: {recipe.describe()}")
        call = f"advisor.apply_recipe({_python_literal(recipe.model_dump(mode='json', exclude_none=True))}, logits)"
        lines.append(f"predictions = {call}" if recipe.ready else f"# predictions = {call}  # tune it first")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- charts


def _smaller_png(data: bytes) -> bytes:
    """The PNG with a 256-colour palette (a third of the size for line charts), when Pillow is there."""
    try:
        from PIL import Image
    except ImportError:  # matplotlib depends on Pillow, so this is a formality
        return data
    image = Image.open(io.BytesIO(data)).convert("RGB")
    palette = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue() if buffer.tell() < len(data) else data


def _png(fig: Any, alt: str) -> str:
    """An <img> of a matplotlib figure, rendered denser than it is shown so that it stays sharp."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, bbox_inches="tight", pad_inches=0.08)
    data = _smaller_png(buffer.getvalue())
    width = int.from_bytes(data[16:20], "big") * 100 // _DPI  # PNG IHDR width, shown as at 100 dpi
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img class="chart" width="{width}" alt="{_a(alt)}" src="data:image/png;base64,{encoded}">'


def _colors(count: int) -> list[Any]:
    from matplotlib import colormaps

    name = "tab10" if count <= 10 else "tab20"
    cmap = colormaps[name]
    return [cmap(i % cmap.N) for i in range(count)]


def _spec_key(candidate: RankedCandidate) -> str:
    return candidate.spec.to_json()


def _chance(rec: Recommendation, head: HeadResult) -> float | None:
    """The head's chance level (see :func:`advisor.heads.chance_level`) from the task's statistics."""
    described = next((h for h in rec.task.heads if h.name == head.head), None)
    if described is None:
        return None
    variance = described.target.variance if described.target is not None else None
    return chance_level(
        head.metric,
        class_counts=described.class_histogram,
        positive_rates=described.positive_rates,
        variance=variance,
    )


def _band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Per epoch: the median and the 25th and 75th percentiles over the repeats that reached it."""
    longest = max(len(curve) for curve in curves)
    median, low, high = [], [], []
    for epoch in range(longest):
        at = [c[epoch] for c in curves if epoch < len(c) and math.isfinite(c[epoch])]
        q = np.percentile(at, [50, 25, 75]) if at else [math.nan] * 3
        median.append(float(q[0]))
        low.append(float(q[1]))
        high.append(float(q[2]))
    return median, low, high


def _charts(head: HeadResult, chance: float | None) -> tuple[str, str] | None:
    """(metric chart, curves chart) as <img> tags, or None when the head has no trial evidence."""
    rows = [c for c in head.candidates if c.evidence is not None]
    if not rows:
        return None
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state is touched
    from matplotlib.ticker import MaxNLocator

    specs = list(dict.fromkeys(_spec_key(c) for c in rows))
    palette = dict(zip(specs, _colors(len(specs)), strict=True))
    direction = "higher is better" if head.higher_is_better else "lower is better"
    with matplotlib.rc_context(_STYLE):
        # Metric per candidate: every repeat as a dot, the mean as a diamond with +/- one standard deviation.
        fig = Figure(figsize=(8.6, 0.42 * len(rows) + 1.1))
        ax = fig.add_subplot()
        for y, candidate in enumerate(rows):
            e = candidate.evidence
            assert e is not None
            color = palette[_spec_key(candidate)]
            if candidate.tie_group == 1:
                ax.axhspan(y - 0.5, y + 0.5, color="#e6f4ea", zorder=0, lw=0)
            values = [v for v in e.per_repeat if v is not None and math.isfinite(v)]
            offsets = [y + 0.16 * ((i % 3) - 1) for i in range(len(values))]
            ax.scatter(values, offsets, s=22, color=color, alpha=0.6, zorder=2, linewidths=0)
            if e.mean is not None:
                ax.errorbar(
                    e.mean, y, xerr=e.std or 0.0, fmt="D", ms=6, color=color, ecolor=color,
                    capsize=3, lw=1.4, zorder=3, markeredgecolor="black", markeredgewidth=0.5,
                )  # fmt: skip
            if e.diverged_repeats:
                ax.annotate(f"{e.diverged_repeats} diverged", (1.0, y), xycoords=("axes fraction", "data"),
                            ha="right", va="center", fontsize=8, color="#b00020")  # fmt: skip
        if chance is not None:
            ax.axvline(chance, color="#b00020", ls="--", lw=1.0, zorder=1)
            ax.annotate(f" chance {chance:.3g}", (chance, 0.0), xycoords=("data", "axes fraction"),
                        ha="left", va="bottom", fontsize=8, color="#b00020")  # fmt: skip
        ax.set_yticks(range(len(rows)), labels=[_chart_label(c) for c in rows])
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_xlabel(f"{head.metric} on held-out rows ({direction}); dots: repeats, diamond: mean ± std")
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        ax.set_title("shaded: tie group 1 (not distinguishable from the best at these repeats)", fontsize=8,
                     loc="left", color="#555555")  # fmt: skip
        metric_img = _png(fig, f"{head.metric} of each candidate across repeats")

        # Tune-row curves: one colour per trained spec, the median over repeats with its interquartile band.
        fig = Figure(figsize=(8.6, 3.8))
        ax = fig.add_subplot()
        for key in specs:
            group = [c for c in rows if _spec_key(c) == key]
            first = group[0]
            curves = [curve for curve in first.evidence.curves if curve] if first.evidence else []
            if not curves:
                continue
            color = palette[key]
            median, low, high = _band(curves)
            epochs = range(1, len(median) + 1)
            marker = "o" if len(median) <= 3 else None
            ax.fill_between(epochs, low, high, color=color, alpha=0.15, lw=0)
            label = _chart_label(first, [c.rank for c in group])
            ax.plot(epochs, median, color=color, lw=1.8, label=shorten(label, 60), marker=marker, ms=3)
        if chance is not None:
            ax.axhline(chance, color="#b00020", ls="--", lw=1.0, label=f"chance {chance:.3g}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"validation {head.metric}")
        ax.grid(color="#e5e5e5", lw=0.6)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        curves_img = _png(fig, f"tune-row {head.metric} per epoch of each candidate")
    return metric_img, curves_img


def _needs_report_extra(what: str) -> str:
    """The note that stands in for figures when matplotlib (the report extra) is missing."""
    return f"<p class=\"note\">{_t(what)} need the report extra: <code>pip install 'loss-advisor[report]'</code>.</p>"


# ---------------------------------------------------------------------------------------------- your data

# Samples shown of segmentation or audio data: enough to see what the masks or clips are like, few enough that
# only their files are read and the report stays small.
_SHOWN_IMAGES = 4
_SHOWN_CLIPS = 3
_SAMPLE_SEED = 0
_MASK_ALPHA = 0.55
# Each image panel is drawn about 460 pixels wide: a stride to at most this side bounds the memory of the
# overlay (4 floats a pixel) for very large images without a visible loss.
_SHOWN_SIDE = 512
# Spectrograms: a Hann window of about 32 ms (a power of two of samples), hop a quarter of it, and a colour
# scale of this many dB below the clip's loudest bin.
_WINDOW_SECONDS = 0.032
_SPECTROGRAM_DB = 90.0


def _display_image(image: np.ndarray) -> np.ndarray:
    """An image (C, H, W) as (H, W, 3) RGB in [0, 1]: its first three channels, or its first as grey; values
    outside [0, 1] (the raw numbers of arrays) are stretched to it."""
    channels = image[:3] if len(image) >= 3 else np.repeat(image[:1], 3, axis=0)
    shown = np.nan_to_num(channels.astype(np.float64))
    low, high = shown.min(), shown.max()
    if low < 0 or high > 1:
        shown = (shown - low) / (high - low) if high > low else np.zeros_like(shown)
    return np.moveaxis(shown, 0, -1)


def _class_names(head: Head, classes: int, word: str) -> list[str]:
    """The head's class labels when it has one per class, else ``word`` and the index ("class 0", ...)."""
    labels = head.class_labels if head.class_labels and len(head.class_labels) == classes else None
    return [labels[c] if labels else f"{word} {c}" for c in range(classes)]


def _image_samples(data: Any, head: Head) -> str:
    """A few image/mask pairs: each image beside itself with the mask overlaid, and the legend of the classes."""
    from advisor.profiling.images import BINARY_255, open_pairs

    pairs = open_pairs(data, _SHOWN_IMAGES, np.random.default_rng(_SAMPLE_SEED))
    try:
        import matplotlib
        from matplotlib.colors import to_hex
        from matplotlib.figure import Figure
    except ImportError:
        return _needs_report_extra("Samples of your data")
    overlapping = pairs.overlapping  # multi-label (K, H, W) channel masks, checked when the source was opened
    loaded, classes = [], head.num_classes or 2
    for i in pairs.indices:
        image, raw = pairs.load(int(i))
        name = pairs.name(int(i))
        mask = pairs.checked_mask(raw, image, name)
        if not overlapping:  # a 0/255 mask is binary: the profiler reads 255 as class 1
            mask = np.where(mask == BINARY_255, 1, mask)
        classes = max(classes, len(mask) if overlapping else int(mask.max()) + 1)
        step = -(-max(image.shape[-2:]) // _SHOWN_SIDE)
        loaded.append((name, image.shape, image[:, ::step, ::step], mask[..., ::step, ::step]))
    first = 0 if overlapping else 1  # the background (class 0 of exclusive classes) is not coloured
    colours = _colors(classes - first)
    figures = []
    with matplotlib.rc_context(_STYLE):
        for name, shape, shown_image, shown_mask in loaded:
            planes = shown_mask if overlapping else shown_mask == np.arange(1, classes)[:, None, None]
            fig = Figure(figsize=(5.0, 2.6))  # two a row in the page
            picture = _display_image(shown_image)
            for column, title in enumerate(("image", "mask overlaid")):
                ax = fig.add_subplot(1, 2, column + 1)
                ax.imshow(picture, interpolation="nearest")
                if column:  # a data set may hold fewer channels than the head has classes: not strict
                    for plane, colour in zip(planes, colours, strict=False):
                        layer = np.zeros((*plane.shape, 4))
                        layer[plane] = (*colour[:3], _MASK_ALPHA)
                        ax.imshow(layer, interpolation="nearest")
                ax.set_title(title)
                ax.set_axis_off()
            channels, height, width = shape
            shown = {1: "", 2: ", the first shown", 3: ""}.get(channels, ", the first three shown as RGB")
            caption = f"{name}: {height}x{width} pixels (height x width), {channels} channel(s){shown}"
            figures.append(
                f"<figure>{_png(fig, f'{name} and its mask')}<figcaption>{_t(caption)}</figcaption></figure>"
            )
    names = _class_names(head, classes, "channel" if overlapping else "class")
    legend = "".join(
        f'<span class="swatch" style="background:{to_hex(colour)}"></span>{_t(label)}'
        for label, colour in zip(names[first:], colours, strict=True)
    )
    title = (
        "Channels (multi-label: a pixel may be in several, their colours blended):"
        if overlapping
        else f"Classes ({_t(names[0])}, the background, is not coloured):"
    )
    return (
        f"<p>{len(loaded)} of the {pairs.total:,} image/mask pairs of {_t(pairs.origin)}, a seeded sample (the "
        f"same in every report).</p>"
        f'<p class="small">{title}{legend}</p>'
        f'<div class="samples">{"".join(figures)}</div>'
    )


def _log_spectrogram(clip: np.ndarray, rate: int) -> np.ndarray:
    """The log-magnitude (dB) spectrogram (frequency, time) of a clip (C, T), its channels mixed to mono."""
    from scipy import signal

    mono = clip.astype(np.float64).mean(0)
    window = min(len(mono), 2 ** round(math.log2(_WINDOW_SECONDS * rate)))
    *_, magnitude = signal.spectrogram(
        mono, fs=rate, window="hann", nperseg=window, noverlap=window - window // 4, mode="magnitude",
        scaling="spectrum",
    )  # fmt: skip
    return 20 * np.log10(np.maximum(magnitude, 1e-12))


def _audio_samples(data: Any, sample_rate: int | None) -> str:
    """A few input/target pairs: the log-magnitude spectrograms of each, side by side on one colour scale."""
    from advisor.profiling.audio import PROFILE_SECONDS, checked_infos, open_audio

    pairs = open_audio(data, _SHOWN_CLIPS, np.random.default_rng(_SAMPLE_SEED), sample_rate)
    infos = checked_infos(pairs)
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return _needs_report_extra("Samples of your data")
    rate = infos[0].rate
    longest = round(PROFILE_SECONDS * rate)
    figures = []
    with matplotlib.rc_context(_STYLE):
        for i, info in zip(pairs.indices, infos, strict=True):
            frames = min(info.frames, longest)
            start = (info.frames - frames) // 2
            spectra = [_log_spectrogram(clip, rate) for clip in pairs.load(int(i), start, frames)]
            top = max(float(spectrum.max()) for spectrum in spectra)
            fig = Figure(figsize=(8.6, 2.6))
            axes = fig.subplots(1, 2, sharey=True)
            for ax, spectrum, title in zip(axes, spectra, ("input", "target"), strict=True):
                image = ax.imshow(
                    spectrum, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                    extent=(start / rate, (start + frames) / rate, 0.0, rate / 2), vmin=top - _SPECTROGRAM_DB,
                    vmax=top,
                )  # fmt: skip
                ax.set_title(title)
                ax.set_xlabel("time (s)")
            axes[0].set_ylabel("frequency (Hz)")
            fig.colorbar(image, ax=axes, label="magnitude (dB)", pad=0.02)
            name = pairs.name(int(i))
            caption = f"{name}: {info.frames / rate:.3g} s at {rate:,} Hz"
            if frames < info.frames:
                caption += f", the centred {PROFILE_SECONDS:g} s shown"
            if info.channels > 1:
                caption += f", {info.channels} channels mixed to mono"
            figures.append(
                f"<figure>{_png(fig, f'spectrograms of {name} and its target')}<figcaption>{_t(caption)}"
                "</figcaption></figure>"
            )
    return (
        f"<p>{len(figures)} of the {pairs.total:,} input/target pairs of {_t(pairs.origin)}, a seeded sample (the "
        f"same in every report): log-magnitude spectrograms at {rate:,} Hz, input and target on one colour scale "
        f"per pair (the top {_SPECTROGRAM_DB:g} dB).</p>"
        f'<div class="samples">{"".join(figures)}</div>'
    )


def _data_section(rec: Recommendation, data: Any, sample_rate: int | None) -> str:
    """The "Your data" section: a few samples of the segmentation or audio data the recommendation was profiled
    from; empty for a table, a description or no data. The recommendation's head type is the kind of data the
    profiler read."""
    if data is None or rec.task.source != "data":
        return ""
    head = next((h for h in rec.task.heads if h.kind.dense), None)
    if head is None:
        return ""
    samples = _image_samples(data, head) if head.kind.layout == "image" else _audio_samples(data, sample_rate)
    return "<h2>Your data</h2>" + samples


# ---------------------------------------------------------------------------------------------- sections


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{_t(k)}</dt><dd>{_t(v)}</dd>" for k, v in pairs)
    return f'<dl class="kv">{items}</dl>'


def _list(items: Iterable[str], css: str = "") -> str:
    rendered = "".join(f"<li>{_t(item)}</li>" for item in items)
    return f'<ul class="{css}">{rendered}</ul>' if rendered else ""


def _references(references: Sequence[str]) -> str:
    if not references:
        return ""
    return f'<p class="muted small">References: {"; ".join(_t(r) for r in references)}.</p>'


def _head_statistics(head: Any) -> str:
    parts = []
    if head.class_histogram:
        labels = head.class_labels or [str(i) for i in range(len(head.class_histogram))]
        counts = ", ".join(
            f"{label}: {count}" for label, count in zip(labels, head.class_histogram, strict=False)
        )
        parts.append(f"class counts {counts}")
        if head.imbalance_ratio is not None:
            parts.append(f"imbalance ratio {head.imbalance_ratio:.3g}")
    stats = head.model_dump(exclude=_STAT_SKIP, exclude_none=True, exclude_defaults=True)
    for name, value in stats.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={_num(v) if isinstance(v, float) else v}" for k, v in value.items())
        parts.append(f"{name}: {value}")
    return "; ".join(parts)


def _task_section(rec: Recommendation) -> str:
    task = rec.task
    source = "profiled from your data" if task.source == "data" else "as described"
    rows = "".join(
        f"<tr><td>{_t(h.name)}</td><td>{_t(h.type)}</td><td>{_t(h.metric or '')}</td>"
        f"<td>{_t(_head_statistics(h))}</td></tr>"
        for h in task.heads
    )
    size = []
    if task.n_samples is not None:
        size.append(f"{task.n_samples} rows")
    if task.n_features is not None:
        size.append(f"{task.n_features} features")
    notes = _list(task.notes)
    return (
        f"<h2>Task ({_t(source)})</h2>"
        + (f"<p>{_t(', '.join(size))}</p>" if size else "")
        + f"<table><tr><th>head</th><th>type</th><th>metric</th><th>statistics</th></tr>{rows}</table>"
        + (f"<h3>What the advisor noticed</h3>{notes}" if notes else "")
    )


def _metric_cell(candidate: RankedCandidate, digits: int) -> str:
    e = candidate.evidence
    if e is None:
        return '<td class="num muted">rules only</td>'
    if e.mean is None:
        return '<td class="num key">diverged</td>'
    spread = f" ± {e.std:.{digits}f}" if e.std is not None else ""
    ci = f"95% CI {e.ci_low:.{digits}f} to {e.ci_high:.{digits}f}" if e.ci_low is not None else ""
    repeats = f"{e.repeats} repeats" + (f", {e.diverged_repeats} diverged" if e.diverged_repeats else "")
    if e.dropped_after:
        repeats += f", raced out after {e.dropped_after}"
    detail = ", ".join(part for part in (repeats, ci) if part)
    # The same rows, epoch and protocol as the mean, which averages them.
    if (by_class := e.per_class_mean) is not None:
        detail += "; per class: " + ", ".join(f"{v:.{digits}f}" for v in by_class)
    return f'<td class="num key">{_t(f"{e.mean:.{digits}f}" + spread)}<br><span class="muted small">{_t(detail)}</span></td>'


def _loss_cell(candidate: RankedCandidate) -> str:
    text = f"<code>{_t(candidate.spec.loss)}</code>"
    post_hoc = candidate.post_hoc
    if post_hoc is not None:
        text += f' + {_t(post_hoc.kind.replace("_", " "))}<br><span class="small">{_t(post_hoc.describe())}</span>'
        tuned = candidate.evidence.post_hoc_values if candidate.evidence else None
        if tuned:
            values = ", ".join(_num(v, 3) for v in tuned)
            text += f'<br><span class="muted small">tuned per repeat and protocol: {_t(values)}</span>'
    return f'<td class="key">{text}</td>'


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_-]+", "_", part) for part in parts)


def _ranking_table(head: HeadResult, index: int) -> str:
    digits = head_decimals(head.candidates)
    rows = []
    for c in head.candidates:
        tied = c.tie_group == 1 and c.evidence is not None
        css = "winner" if c.rank == 1 else ("tie" if tied else "")
        params = key_params(c.spec)
        shown_params = (
            f'<code title="{_a(params)}">{_t(shorten(params, 70))}</code>'
            if params
            else '<span class="muted small">defaults</span>'
        )
        rule = f"#{_anchor('rule', str(index), c.rule_id)}"
        rows.append(
            f'<tr class="cand {css}" data-rank="{c.rank}">'
            f'<td class="num key">{c.rank}</td>{_loss_cell(c)}'
            f"<td>{shown_params}</td>{_metric_cell(c, digits)}"
            f'<td class="num">{c.tie_group}</td><td class="num">{c.prior:.2f}</td>'
            f'<td title="{_a(c.rationale)}">{_t(c.title)} <a class="small" href="{_a(rule)}">why</a></td></tr>'
        )
    header = (
        f"<tr><th>#</th><th>loss</th><th>key parameters</th><th>{_t(head.metric)} mean ± std</th>"
        "<th>tie group</th><th>prior</th><th>reason</th></tr>"
    )
    return f'<table class="ranking">{header}{"".join(rows)}</table>'


def _rationales(head: HeadResult, index: int) -> str:
    seen: dict[str, RankedCandidate] = {}
    for c in head.candidates:
        seen.setdefault(c.rule_id, c)
    blocks = []
    for rule_id, c in seen.items():
        ranks = ", ".join(f"#{x.rank}" for x in head.candidates if x.rule_id == rule_id)
        references = _references(c.references)
        blocks.append(
            f'<div class="rule" id="{_a(_anchor("rule", str(index), rule_id))}">'
            f'<b>{_t(c.title)}</b> <span class="id">{_t(rule_id)} ({_t(ranks)})</span>'
            f"<p>{_t(c.rationale)}</p>" + references + "</div>"
        )
    return "<h3>Why these candidates: the rules' rationales</h3>" + "".join(blocks)


def _evidence_summary(head: HeadResult, trials: bool) -> str:
    if head.evidence_source == "rules":
        if not trials:  # the page's banner already says so
            return '<p class="muted small">Ranked by rule priors (rules only).</p>'
        return (
            '<p class="note"><b>Rules only:</b> no trial fits ran for this head, so the candidates are ranked '
            "by their rule priors; there is no metric evidence and no chart.</p>"
        )
    where = "your data" if head.evidence_source == "data" else "synthetic data matching the description"
    stopped = {"epochs": "the epoch budget", "early_stopping": "early stopping of every member",
               "time": "THE TIME CAP (the evidence is cut short)", "cancelled": "cancellation",
               "diverged": "divergence of every member", "not_run": "nothing"}[head.stopped_by]  # fmt: skip
    return (
        f'<p class="muted small">Evidence: quick trial fits on {_t(where)}: {head.train_rows} training rows, '
        f"{head.score_rows} scoring rows a repeat, {head.repeats} repeats (a fresh split each), up to "
        f"{head.epochs_completed} epochs in {head.trial_seconds:.1f} s, stopped by {_t(stopped)}. Protocols: "
        f"{_t('; '.join(head.protocols))}.</p>"
    )


def _head_section(head: HeadResult, index: int, charts: bool, trials: bool, chance: float | None) -> str:
    direction = "higher is better" if head.higher_is_better else "lower is better"
    parts = [
        f'<h2 id="{_a(_anchor("head", str(index)))}">Head <code>{_t(head.head)}</code> ({_t(head.type)}): '
        f"ranked by {_t(head.metric)} ({direction})</h2>",
        f'<p class="verdict"><b>{_t(head.verdict)}</b></p>',
        *(f'<p class="note caveat">{_t(caveat)}</p>' for caveat in head.caveats if trials),
        _evidence_summary(head, trials),
    ]
    if chance is not None:
        parts.append(
            f'<p class="muted small">Chance level: {_t(f"{chance:.3g}")} {_t(head.metric)}, what a prediction that '
            "ignores the features scores (dashed red line in the charts).</p>"
        )
    if not head.candidates:
        parts.append('<p class="note">No rule proposed a loss for this head.</p>')
        return "".join(parts)
    parts.append(f"<p>{_t(head.explanation)}</p>")
    parts.append(_ranking_table(head, index))
    if charts and head.evidence_source != "rules":
        try:
            images = _charts(head, chance)
        except ImportError:
            images = None
            parts.append(_needs_report_extra("Charts"))
        if images is not None:
            metric_img, curves_img = images
            parts.append(f"<h3>{_t(head.metric)} of each candidate across repeats</h3>{metric_img}")
            shared = (
                " Candidates that differ only by a post-hoc recipe share one trained member, so they share a "
                "curve (curves show the metric before the recipe)."
                if any(c.post_hoc for c in head.candidates)
                else ""
            )
            parts.append(
                f"<h3>Tune-row curves of the trial fits</h3>{curves_img}"
                f'<p class="muted small">Lines: the median over repeats; bands: their 25th to 75th percentiles.{shared}</p>'
            )
    parts.append(_rationales(head, index))
    top = head.candidates[0]
    parts.append(
        f"<details><summary>Spec of this head's winner ({_t(top.label)})</summary>"
        f"<pre>{_t(top.spec.to_json(indent=2))}</pre></details>"
    )
    return "".join(parts)


def _multi_task_section(rec: Recommendation) -> str:
    if not rec.multi_task:
        return ""
    blocks = []
    for c in rec.multi_task:
        weighting = c.spec.params.get("weighting", {})
        scheme = weighting.get("scheme", "static")
        if weighting.get("weights"):  # fixed weights that are not all 1 (the inverse initial losses)
            scheme += " (" + ", ".join(f"{name} {w:.3g}" for name, w in weighting["weights"].items()) + ")"
        references = _references(c.references)
        e = c.evidence
        measured = (
            f"<p><b>combined_score {e.mean:.3f}</b> (95% CI {e.ci_low:.3f} to {e.ci_high:.3f}, tie group "
            f"{c.tie_group}). {_t(c.summary or '')}</p>"
            if e is not None and e.mean is not None and e.ci_low is not None and e.ci_high is not None
            else ""
        )
        blocks.append(
            f'<div class="rule"><b>#{c.rank} {_t(scheme)} weighting</b> '
            f'<span class="id">{_t(c.rule_id)}, prior {c.prior:.2f}</span>'
            + measured
            + f"<p>{_t(c.title)}. {_t(c.rationale)}</p>"
            + references
            + f"<details><summary>Spec</summary><pre>{_t(c.spec.to_json(indent=2))}</pre></details></div>"
        )
    joint = rec.multi_task_trials
    if joint is None:
        how = (
            "Each combines the heads' winners; they are ordered by rule prior (the trial fits train each head "
            "on its own)."
        )
    else:
        how = (
            f"{_t(joint.verdict)} The heads were trained together (one shared trunk, an output per head; "
            f"{joint.repeats} paired repeats of {joint.train_rows} training rows). Combined score: "
            f"{_t(joint.combined)}."
        )
    return f'<h2>Several heads: multi_task specs</h2><p class="muted small">{how}</p>' + "".join(blocks)


def _winner_section(rec: Recommendation) -> str:
    try:
        best = rec.best()
    except (IndexError, StopIteration):
        return '<div class="note">No candidate loss was proposed for this task.</div>'
    where = "every head" if best.head == "*" else f"head '{best.head}'"
    verdict = "" if best.head == "*" else f'<p class="verdict">{_t(rec.head(best.head).verdict)}</p>'
    code = snippet(best)
    params = key_params(best.spec)
    params = f"<p>Key parameters: <code>{_t(params)}</code></p>" if params else ""
    return (
        '<div class="box">'
        f'<h2 style="margin-top:0">Train with: <code>{_t(best.label)}</code> for {_t(where)}</h2>'
        f"{verdict}{params}"
        '<div class="snippet"><button type="button" data-copy="winner-snippet">Copy</button>'
        f'<pre id="winner-snippet">{_t(code)}</pre></div>'
        f'<details><summary>The spec as JSON</summary><pre id="winner-spec">{_t(best.spec.to_json(indent=2))}'
        "</pre></details></div>"
    )


def _footer(rec: Recommendation) -> str:
    s = rec.settings
    settings = [
        ("trials", "yes" if s.trials else "no (rules only)"),
        ("budget", f"{s.budget_s:g} s"),
        ("repeats", "by rows" if s.repeats is None else s.repeats),
        ("epochs", s.epochs),
        ("max rows", s.max_rows),
        ("device", s.device),
    ]
    if s.rule_dirs:
        settings.append(("user rules", ", ".join(s.rule_dirs)))
    timings = ", ".join(f"{k} {v:.2f} s" for k, v in rec.timings.items())
    extra_notes = [n for n in rec.notes if n not in rec.task.notes]
    return (
        "<h2>Settings</h2>"
        + _kv(settings)
        + (f'<p class="muted small">Timings: {_t(timings)}</p>' if timings else "")
        + (f"<h3>Notes</h3>{_list(extra_notes)}" if extra_notes else "")
    )


def render_report(
    recommendation: Recommendation, *, charts: bool = True, data: Any = None, sample_rate: int | None = None
) -> str:
    """The report as one HTML document (text).

    Parameters
    ----------
    recommendation : Recommendation
        What :func:`advisor.recommend` returned (with or without trial evidence).
    charts : bool
        False leaves out every matplotlib figure: the charts and the samples of ``data`` (which is then not
        read).
    data : any, optional
        The data given to :func:`advisor.recommend`. When the recommendation was profiled from segmentation or
        audio data, the report shows a few samples of it (a seeded sample, the same every time; only their files
        are read) in a "Your data" section: 4 images beside their masks overlaid in one colour per class, with
        the class legend, or the log-magnitude spectrograms of 3 input clips and their targets. Tables,
        descriptions and None add nothing. Without matplotlib the section says what to install.
    sample_rate : int, optional
        The ``sample_rate`` given to :func:`advisor.recommend` (audio arrays need it).

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    ProfileError
        ``data`` that does not read as the recommendation's kind of data (the profiler's error, naming the
        field).
    """
    rec = recommendation
    from advisor import __version__

    heads = ", ".join(f"{h.head} ({h.type})" for h in rec.heads)
    if rec.settings.trials:
        kind = "ranked by quick trial fits, ties broken by the rules' priors"
    else:
        kind = "rules only: ranked by rule priors, no trial fits ran"
    banner = ""
    if not rec.settings.trials:
        banner = (
            '<p class="note"><b>Rules only.</b> This recommendation was made without trial fits '
            "(<code>trials=False</code> / <code>--no-trials</code>): there is no metric evidence and there are "
            "no charts. Run with trials to prove the ranking on your data.</p>"
        )
    body = [
        f'<h1>Loss Advisor report</h1><p class="muted">{_t(heads)}: {_t(kind)}. '
        f"loss-advisor {_t(__version__)}.</p>",
        banner,
        _winner_section(rec),
        _task_section(rec),
        _data_section(rec, data, sample_rate) if charts else "",
        *(_head_section(h, i, charts, rec.settings.trials, _chance(rec, h)) for i, h in enumerate(rec.heads)),
        _multi_task_section(rec),
        _footer(rec),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Loss Advisor report: {_t(heads)}</title><style>{_CSS}</style></head>\n"
        f"<body><main>{''.join(body)}</main><script>{_SCRIPT}</script></body></html>\n"
    )


def write_report(
    recommendation: Recommendation, path: str | Path, *, data: Any = None, sample_rate: int | None = None
) -> Path:
    """Write the recommendation as one self-contained HTML file and return its path.

    Parameters
    ----------
    recommendation : Recommendation
        What :func:`advisor.recommend` returned (with or without trial evidence).
    path : str or Path
        Where to write; missing parent folders are created.
    data : any, optional
        The data given to :func:`advisor.recommend`: segmentation or audio data adds a few samples of it
        (images with their masks, or spectrograms of clips) beside the ranking (see :func:`render_report`).
    sample_rate : int, optional
        The ``sample_rate`` given to :func:`advisor.recommend` (audio arrays need it).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ProfileError
        ``data`` that does not read as the recommendation's kind of data (naming the field).

    Example
    -------
    >>> result = advisor.recommend("client_examples/data/churn.csv", target="churned")  # doctest: +SKIP
    >>> write_report(result, "report.html")  # doctest: +SKIP
    """
    page = render_report(recommendation, data=data, sample_rate=sample_rate)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target
