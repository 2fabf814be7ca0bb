"""The HTML report: one self-contained file with the task, rankings, charts, rationales and a runnable snippet;
every text escaped; rules-only and multi-head recommendations covered; samples of segmentation and audio data
(made here, small, in tmp_path: PNG folders, WAV folders, arrays)."""

from __future__ import annotations

import ast
import base64
import html
import io
import math
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image
from typer.testing import CliRunner

import advisor
from advisor.cli import app
from advisor.core import recommend
from advisor.explain import head_decimals
from advisor.heads import chance_level
from advisor.profiling import ProfileError
from advisor.profiling import images as image_reader
from advisor.recommendation import Recommendation, key_params
from advisor.report import _band, _log_spectrogram, _python_literal, render_report, write_report

QUICK = {"budget_s": 30.0, "epochs": 3, "repeats": 2, "max_rows": 500}
CHURN = "client_examples/data/churn.csv"
TWO_HEADS = {
    "heads": [
        {"name": "label", "type": "multiclass", "class_histogram": [300, 100, 40]},
        {"name": "price", "type": "regression", "target": {"mean": 2.0, "variance": 4.0}},
    ],
    "n_features": 6,
}
RATE = 8_000


class Page(HTMLParser):
    """Tags with their attributes, text nodes, and the text inside each element with an id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.by_id: dict[str, list[str]] = {}
        self._open: list[str | None] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag not in ("img", "br", "meta", "input"):
            self._open.append(attributes.get("id"))
            if attributes.get("id"):
                self.by_id[attributes["id"]] = []

    def handle_endtag(self, tag):
        if tag not in ("img", "br", "meta", "input") and self._open:
            self._open.pop()

    def handle_data(self, data):
        self.text.append(data)
        for element in self._open:
            if element:
                self.by_id[element].append(data)

    def inner(self, element: str) -> str:
        return "".join(self.by_id[element])

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attributes for name, attributes in self.tags if name == tag]


@pytest.fixture(scope="module")
def churn() -> Recommendation:
    return recommend(CHURN, target="churned", **QUICK)


@pytest.fixture(scope="module")
def churn_rules() -> Recommendation:
    return recommend(CHURN, target="churned", trials=False)


@pytest.fixture(scope="module")
def two_heads() -> Recommendation:
    return recommend(TWO_HEADS, **QUICK)


def _external_references(page: Page) -> list[str]:
    found = []
    for tag, attributes in page.tags:
        for name in ("src", "href", "data", "action", "poster"):
            value = (attributes.get(name) or "").strip().lower()
            if value and not value.startswith(("data:image/png;base64,", "#")):
                found.append(f"<{tag} {name}={value[:60]}>")
        if tag == "link":
            found.append("<link>")
    return found


def _winner_snippet_builds(page: Page, best) -> None:
    code = page.inner("winner-snippet")
    namespace: dict = {}
    exec(compile(code, "<report snippet>", "exec"), namespace)  # the copy-ready snippet runs as printed
    assert namespace["loss"].spec() == advisor.build_loss(best.spec).spec()


def test_report_is_one_self_contained_file(churn, tmp_path):
    path = write_report(churn, tmp_path / "nested" / "report.html")
    assert path == tmp_path / "nested" / "report.html" and path.is_file()
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    page = Page(text)
    assert _external_references(page) == []
    assert "@import" not in text and "url(" not in text  # no stylesheet fetches either
    scripts = page.all("script")
    assert len(scripts) == 1 and "src" not in scripts[0]
    images = page.all("img")
    assert len(images) == 2  # the metric chart and the validation curves of the one head
    for image in images:
        data = base64.b64decode(image["src"].split(",", 1)[1])
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and image["alt"]
    assert len(text) < 600_000


def test_every_candidate_has_its_table_row_and_the_winner_spec_is_there(churn):
    text = render_report(churn)
    page = Page(text)
    head = churn.heads[0]
    rows = re.findall(r'<tr class="cand[^"]*" data-rank="(\d+)">(.*?)</tr>', text, flags=re.S)
    assert [int(rank) for rank, _ in rows] == [c.rank for c in head.candidates]
    for (_, row), candidate in zip(rows, head.candidates, strict=True):
        cell_text = html.unescape(re.sub(r"<[^>]+>", " ", row))
        assert candidate.spec.loss in cell_text
        digits = head_decimals(head.candidates)  # one number of digits for the whole table
        assert f"{candidate.evidence.mean:.{digits}f} ± {candidate.evidence.std:.{digits}f}" in cell_text
        assert f"{candidate.prior:.2f}" in cell_text
        assert candidate.title in cell_text
        if candidate.post_hoc:
            assert candidate.post_hoc.kind.replace("_", " ") in cell_text
    assert 'class="cand winner" data-rank="1"' in text
    best = churn.best()
    assert page.inner("winner-spec") == best.spec.to_json(indent=2)
    assert best.spec.to_json(indent=2) in html.unescape(text)
    copy = [b for b in page.all("button") if b.get("data-copy") == "winner-snippet"]
    assert len(copy) == 1
    _winner_snippet_builds(page, best)
    words = " ".join(page.text)
    for note in churn.task.notes:
        assert note in words
    for reference in {r for c in head.candidates for r in c.references}:
        assert reference in words
    assert "Rules only" not in words


def test_rules_only_report_says_so_and_has_no_charts(churn_rules, tmp_path):
    text = write_report(churn_rules, tmp_path / "rules.html").read_text(encoding="utf-8")
    page = Page(text)
    words = " ".join(page.text)
    assert "Rules only" in words and "no charts" in words
    assert page.all("img") == [] and "<svg" not in text and "base64" not in text
    assert len(re.findall(r'<tr class="cand', text)) == len(churn_rules.heads[0].candidates)
    assert page.inner("winner-spec") == churn_rules.best().spec.to_json(indent=2)
    _winner_snippet_builds(page, churn_rules.best())


def test_multi_head_report_has_every_head_and_the_multi_task_specs(two_heads):
    assert two_heads.multi_task  # the premise: several heads give multi_task specs
    text = render_report(two_heads)
    page = Page(text)
    headings = [html.unescape(re.sub(r"<[^>]+>", "", h)) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", text)]
    for head in two_heads.heads:
        assert any(h.startswith(f"Head {head.head} ({head.type})") for h in headings)
        assert len(re.findall(r'<tr class="cand[^"]*" data-rank="\d+">', text)) >= len(head.candidates)
    assert len(page.all("img")) == 2 * len(two_heads.heads)
    unescaped = html.unescape(text)
    for candidate in two_heads.multi_task:
        assert candidate.spec.to_json(indent=2) in unescaped
    best = two_heads.best()
    assert best.spec.loss == "multi_task"
    assert page.inner("winner-spec") == best.spec.to_json(indent=2)
    _winner_snippet_builds(page, best)
    words = " ".join(page.text)
    assert "rmse" in words and "lower is better" in words  # the regression head's direction is stated


def _hostile(rec: Recommendation) -> Recommendation:
    evil = '</p><script>alert("pwned")</script><p>'
    head = rec.heads[0]
    first = head.candidates[0].model_copy(
        update={
            "rationale": f"Because {evil} & more.",
            "title": "<img src=x onerror=alert(1)>",
            "rule_id": '"><b onmouseover=alert(1)>id',
            "references": ['<a href="http://evil.example/x">ref</a>'],
        }
    )
    head = head.model_copy(update={"candidates": [first, *head.candidates[1:]], "explanation": evil})
    task = rec.task.model_copy(update={"notes": ["column <iframe src=http://evil.example>"]})
    return rec.model_copy(
        update={"heads": [head], "task": task, "notes": ["<style>body{display:none}</style>"]}
    )


def test_hostile_text_is_escaped(churn):
    rec = _hostile(churn)
    text = render_report(rec)
    page = Page(text)
    assert len(page.all("script")) == 1  # only the report's own copy-button script
    assert page.all("iframe") == []
    assert all((a.get("href") or "").startswith("#") for a in page.all("a"))  # only in-page links
    assert len(page.all("style")) == 1
    assert [img for img in page.all("img") if img.get("src") == "x"] == []
    assert _external_references(page) == []
    assert "&lt;script&gt;alert(" in text
    words = "".join(page.text)  # the hostile strings survive as text, exactly
    assert 'Because </p><script>alert("pwned")</script><p> & more.' in words
    assert "<img src=x onerror=alert(1)>" in words
    assert '<a href="http://evil.example/x">ref</a>' in words
    assert "column <iframe src=http://evil.example>" in words
    # the hostile rule id only ever lands inside quoted attributes, escaped
    for _, attributes in page.tags:
        assert "onmouseover" not in attributes and "onerror" not in attributes


def test_diverged_and_partial_evidence_still_renders(churn):
    head = churn.heads[0]
    last = head.candidates[-1]
    broken = last.evidence.model_copy(
        update={
            "per_repeat": [None, None], "mean": None, "std": None, "ci_low": None, "ci_high": None,
            "diverged_repeats": 2, "curves": [[0.1], []],
        }
    )  # fmt: skip
    candidates = [*head.candidates[:-1], last.model_copy(update={"evidence": broken})]
    rec = churn.model_copy(update={"heads": [head.model_copy(update={"candidates": candidates})]})
    text = render_report(rec)
    row = re.findall(rf'data-rank="{last.rank}">(.*?)</tr>', text, flags=re.S)[0]
    assert "diverged" in row
    assert len(Page(text).all("img")) == 2


def test_key_params_show_what_differs_from_the_defaults():
    assert key_params(advisor.normalize_spec({"loss": "focal"})) == ""
    assert key_params(advisor.normalize_spec({"loss": "focal", "params": {"gamma": 3.0}})) == "gamma=3.0"
    multi = advisor.normalize_spec(
        {
            "loss": "multi_task",
            "params": {"heads": {"a": {"loss": "mse"}, "b": {"loss": "l1"}}, "weighting": {"scheme": "dwa"}},
        }
    )
    assert key_params(multi) == "weighting=dwa (temperature=2.0); heads a: mse, b: l1"


@pytest.mark.parametrize(
    "value",
    [
        {"a": None, "b": True, "c": [1, 2.5, "x\"y'z"], "d": {"e": [], "f": {}}},
        {"heads": {f"h{i}": {"loss": "focal", "params": {"alpha": [0.1] * 12}} for i in range(4)}},
    ],
)
def test_snippet_literals_are_valid_python(value):
    assert ast.literal_eval(_python_literal(value)) == value


def test_the_report_opens_each_head_with_its_verdict_and_shows_the_chance_level(churn):
    page = Page(render_report(churn, charts=False))
    text = " ".join(page.text)
    head = churn.heads[0]
    assert head.verdict and text.index(head.verdict) < text.index(head.explanation)
    # 357 churners of 3000 rows: a random ranking's average precision
    assert f"Chance level: {357 / 3000:.3g} average_precision" in text


def test_median_band_of_the_curves():
    median, low, high = _band([[1.0, 2.0, 3.0], [3.0, 4.0], [2.0, 6.0, math.nan]])
    assert median == [2.0, 4.0, 3.0] and low == [1.5, 3.0, 3.0] and high == [2.5, 5.0, 3.0]


@pytest.mark.parametrize(
    ("metric", "statistics", "expected"),
    [
        ("average_precision", {"class_counts": [75, 25]}, 0.25),
        ("roc_auc", {}, 0.5),
        ("accuracy", {"class_counts": [60, 30, 10]}, 0.6),
        ("balanced_accuracy", {"class_counts": [60, 30, 10]}, 1 / 3),
        ("macro_f1", {"class_counts": [50, 50]}, 0.5),
        ("log_loss", {"class_counts": [50, 50]}, math.log(2)),
        ("brier", {"class_counts": [80, 20]}, 0.16),
        ("rmse", {"variance": 9.0}, 3.0),
        ("map", {"positive_rates": [0.1, 0.3]}, 0.2),
        ("dice", {"class_counts": [1, 1]}, None),
        ("accuracy", {}, None),
    ],
)
def test_chance_levels_by_hand(metric, statistics, expected):
    found = chance_level(metric, **statistics)
    assert found == (None if expected is None else pytest.approx(expected))


# ---------------------------------------------------------------------------------------------- your data


def _segmentation_folders(folder: Path, count: int = 6) -> tuple[str, str]:
    """``count`` RGB PNG images 40x48 with grey PNG masks of classes 0, 1 and 2 (a block of each class)."""
    rng = np.random.default_rng(0)
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for index in range(count):
        mask = np.zeros((40, 48), np.uint8)
        mask[4:18, 4 + index : 24] = 1
        mask[22:36, 20:44] = 2
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"case{index}.png")
        Image.fromarray(mask).save(masks / f"case{index}.png")
    return str(images), str(masks)


def _audio_folders(folder: Path, count: int = 5, seconds: float = 0.3) -> tuple[str, str]:
    """``count`` pairs of 8 kHz WAV files: a tone plus noise as the input, the tone as its target."""
    rng = np.random.default_rng(0)
    inputs, targets = folder / "noisy", folder / "clean"
    inputs.mkdir(parents=True)
    targets.mkdir()
    t = np.arange(round(seconds * RATE)) / RATE
    for index in range(count):
        clean = 0.5 * np.sin(2 * np.pi * (400 + 150 * index) * t)
        noisy = clean + 0.05 * rng.normal(size=t.shape)
        soundfile.write(inputs / f"clip{index}.wav", noisy, RATE, subtype="FLOAT")
        soundfile.write(targets / f"clip{index}.wav", clean, RATE, subtype="FLOAT")
    return str(inputs), str(targets)


@pytest.fixture(scope="module")
def segmentation_folders(tmp_path_factory) -> tuple[str, str]:
    return _segmentation_folders(tmp_path_factory.mktemp("segmentation"))


@pytest.fixture(scope="module")
def segmentation(segmentation_folders) -> Recommendation:
    return recommend(segmentation_folders, trials=False)


@pytest.fixture(scope="module")
def audio_folders(tmp_path_factory) -> tuple[str, str]:
    return _audio_folders(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def audio(audio_folders) -> Recommendation:
    return recommend(audio_folders, trials=False)


def _data_section(text: str) -> str | None:
    """The "Your data" section's HTML (up to the next heading of its level), or None when there is none."""
    found = re.search(r"<h2>Your data</h2>(.*?)(?=<h2)", text, flags=re.S)
    return found.group(1) if found else None


def _png_images(section: str) -> list[Image.Image]:
    page = Page(section)
    assert all(img["alt"] and img["src"].startswith("data:image/png;base64,") for img in page.all("img"))
    return [Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) for img in page.all("img")]


def test_segmentation_report_shows_a_few_images_with_their_masks_and_the_class_legend(
    segmentation, segmentation_folders, tmp_path, monkeypatch
):
    read = []
    original = image_reader._image_file
    monkeypatch.setattr(image_reader, "_image_file", lambda path: read.append(path.name) or original(path))
    text = write_report(segmentation, tmp_path / "report.html", data=segmentation_folders).read_text("utf-8")
    assert len(read) == 4  # of 6 pairs: only the samples shown are read
    section = _data_section(text)
    assert section is not None
    headings = re.findall(r"<h2[^>]*>(.*?)</h2>", text)
    where = headings.index("Your data")
    assert headings[where - 1].startswith("Task") and headings[where + 1].startswith("Head ")
    pictures = _png_images(section)
    assert len(pictures) == 4 and len(Page(text).all("img")) == 4  # rules only: no charts besides
    assert all(picture.width > 2 * picture.height for picture in pictures)  # the image beside its overlay
    words = " ".join(Page(section).text)
    assert "4 of the 6 image/mask pairs" in words
    assert words.count("40x48 pixels (height x width), 3 channel(s)") == 4
    assert sorted(re.findall(r"'?(case\d\.png)", words)) == sorted(read)
    legend = re.findall(r'<span class="swatch" style="background:(#[0-9a-f]{6})"></span>([^<]+)', section)
    assert [name for _, name in legend] == ["class 1", "class 2"]
    assert len({colour for colour, _ in legend}) == 2
    assert "Classes (class 0, the background, is not coloured):" in words


def test_segmentation_arrays_and_0_255_masks_show_one_foreground_class():
    masks = np.zeros((3, 20, 30), np.uint8)
    masks[:, 5:15, 5:20] = 255
    images = np.random.default_rng(1).normal(size=(3, 1, 20, 30)).astype(np.float32)  # raw numbers, not 0..1
    rec = recommend((images, masks), trials=False)
    section = _data_section(render_report(rec, data=(images, masks)))
    assert section is not None and len(_png_images(section)) == 3
    legend = re.findall(r'<span class="swatch"[^>]*></span>([^<]+)', section)
    assert legend == ["class 1"]
    assert "3 of the 3 image/mask pairs of arrays" in " ".join(Page(section).text)


def test_overlapping_channel_masks_colour_every_channel():
    masks = np.zeros((3, 2, 20, 30), np.uint8)
    masks[:, 0, 2:12, 2:20] = 1
    masks[:, 1, 8:18, 10:28] = 1  # overlaps channel 0: multi-label
    images = np.random.default_rng(3).uniform(size=(3, 3, 20, 30)).astype(np.float32)
    rec = recommend((images, masks), trials=False)
    assert rec.task.heads[0].overlapping_classes  # the premise
    section = _data_section(render_report(rec, data=(images, masks)))
    assert section is not None and len(_png_images(section)) == 3
    assert re.findall(r'<span class="swatch"[^>]*></span>([^<]+)', section) == ["channel 0", "channel 1"]
    assert "Channels (multi-label: a pixel may be in several" in " ".join(Page(section).text)


def test_audio_report_shows_input_and_target_spectrograms_with_the_sample_rate(audio, audio_folders):
    text = render_report(audio, data=audio_folders)
    section = _data_section(text)
    assert section is not None
    pictures = _png_images(section)
    assert len(pictures) == 3 and len(Page(text).all("img")) == 3
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", section)
    assert len(captions) == 3
    assert all(html.unescape(c).endswith(": 0.3 s at 8,000 Hz") for c in captions)
    assert "log-magnitude spectrograms at 8,000 Hz" in " ".join(Page(section).text)


def test_long_multichannel_audio_arrays_show_their_centre_mixed_to_mono():
    rng = np.random.default_rng(2)
    targets = (0.3 * np.sin(2 * np.pi * 500 * np.arange(3 * RATE) / RATE) * np.ones((4, 2, 1))).astype(
        np.float32
    )
    inputs = (targets + 0.05 * rng.normal(size=targets.shape)).astype(np.float32)
    rec = recommend((inputs, targets), sample_rate=RATE, trials=False)
    section = _data_section(render_report(rec, data=(inputs, targets), sample_rate=RATE))
    assert section is not None and len(_png_images(section)) == 3
    captions = [html.unescape(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", section)]
    assert captions and all(
        c.endswith(": 3 s at 8,000 Hz, the centred 2 s shown, 2 channels mixed to mono") for c in captions
    )


def test_spectrogram_rows_run_from_0_hz_to_half_the_sample_rate():
    tone = np.sin(2 * np.pi * 1_000 * np.arange(RATE) / RATE)[None].astype(np.float32)
    spectrum = _log_spectrogram(tone, RATE)
    rows = spectrum.shape[0]
    peak_hz = spectrum.mean(1).argmax() * (RATE / 2) / (rows - 1)
    assert rows == 256 // 2 + 1  # a 32 ms window at 8 kHz: 256 samples
    assert abs(peak_hz - 1_000) <= RATE / 256
    assert spectrum.max() - np.median(spectrum) > 40  # a tone stands far above the rest, in dB


def test_tables_descriptions_and_no_data_add_no_data_section(churn_rules, segmentation, segmentation_folders):
    plain = render_report(churn_rules)
    assert render_report(churn_rules, data=CHURN) == plain
    assert _data_section(plain) is None and "Your data" not in plain
    described = recommend({"heads": [{"type": "segmentation", "num_classes": 3}]}, trials=False)
    assert _data_section(render_report(described, data=segmentation_folders)) is None
    assert _data_section(render_report(segmentation)) is None
    # charts=False leaves every figure out, the samples too, and reads no data
    assert _data_section(render_report(segmentation, charts=False, data=("nowhere", "either"))) is None


def test_bad_data_raises_the_profilers_error_naming_the_field(
    segmentation, audio, segmentation_folders, tmp_path
):
    images, _ = segmentation_folders
    with pytest.raises(ProfileError, match=r"^masks: no such folder") as caught:
        write_report(segmentation, tmp_path / "out" / "report.html", data=(images, str(tmp_path / "missing")))
    assert isinstance(caught.value, ValueError) and caught.value.violations[0].field == "masks"
    assert not (tmp_path / "out").exists()  # nothing written for a report that failed
    clips = np.zeros((3, 800), np.float32)
    with pytest.raises(ProfileError, match=r"^sample_rate: arrays do not say their sample rate"):
        render_report(audio, data=(clips, clips))
    with pytest.raises(ProfileError, match=r"^data: .*is not a manifest"):
        render_report(segmentation, data=CHURN)


def test_without_matplotlib_the_data_section_says_what_to_install(
    segmentation, segmentation_folders, monkeypatch
):
    for name in ["matplotlib", *(m for m in sys.modules if m.startswith("matplotlib."))]:
        monkeypatch.setitem(sys.modules, name, None)  # every import of matplotlib now fails, loaded or not
    section = _data_section(render_report(segmentation, data=segmentation_folders))
    assert section is not None and "<img" not in section
    words = "".join(Page(section).text)
    assert "Samples of your data need the report extra: pip install 'loss-advisor[report]'" in words


def test_cli_report_shows_the_data_it_profiled(segmentation_folders, tmp_path):
    images, masks = segmentation_folders
    report = tmp_path / "report.html"
    done = CliRunner().invoke(
        app, ["recommend", images, "--masks", masks, "--no-trials", "--report", str(report)]
    )
    assert done.exit_code == 0, done.output
    section = _data_section(report.read_text(encoding="utf-8"))
    assert section is not None and len(_png_images(section)) == 4


def test_dice_candidates_show_their_per_class_means_beside_the_metric():
    task = {"heads": [{"type": "segmentation", "num_classes": 3, "foreground_shares": [0.2, 0.05]}]}
    rec = recommend(task, epochs=1, repeats=2, race=False, cache=False)
    page = render_report(rec, charts=False)
    for candidate in rec.heads[0].candidates:
        rows = [values for values in candidate.evidence.per_class if values is not None]
        assert rows and all(len(values) == 2 for values in rows)  # classes 1 and 2
        means = [sum(column) / len(rows) for column in zip(*rows, strict=True)]
        digits = head_decimals(rec.heads[0].candidates)
        assert "per class: " + ", ".join(f"{v:.{digits}f}" for v in means) in page
