"""The HTML report: one self-contained file with the task, rankings, charts, rationales and a runnable snippet;
every text escaped; rules-only and multi-head recommendations covered."""

from __future__ import annotations

import ast
import base64
import html
import math
import re
from html.parser import HTMLParser

import pytest

import advisor
from advisor.core import recommend
from advisor.explain import head_decimals
from advisor.heads import chance_level
from advisor.recommendation import Recommendation, key_params
from advisor.report import _band, _python_literal, render_report, write_report

QUICK = {"budget_s": 30.0, "epochs": 3, "repeats": 2, "max_rows": 500}
CHURN = "client_examples/data/churn.csv"
TWO_HEADS = {
    "heads": [
        {"name": "label", "type": "multiclass", "class_histogram": [300, 100, 40]},
        {"name": "price", "type": "regression", "target": {"mean": 2.0, "variance": 4.0}},
    ],
    "n_features": 6,
}


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
