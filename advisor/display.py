"""How ``advisor-cli`` shows a recommendation on a terminal: the verdict first, any caveat as a banner, then
a ranking laid out for 80 columns (one line per candidate plus its reason), a legend, and the hand-off.

Only presentation lives here; every sentence and number comes from the Recommendation.
"""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from advisor.explain import head_decimals
from advisor.recommendation import HeadResult, RankedCandidate, Recommendation

RANK_WIDTH = 3
TIE_WIDTH = 4
VALUE_WIDTH = 24  # "0.376 (0.308 to 0.444)"
MIN_NAME_WIDTH = 20

LEGEND = (
    "Value: mean over repeats (each a fresh split and initialisation) and its 95% t-interval. "
    "tie: candidates with the same number cannot be told apart at these repeats (the paired 95% interval "
    "of their difference includes 0); group 1 ties with the best, and inside a group the rule prior sets "
    "the order."
)


def task_table(description: Any, title: str) -> Table:
    table = Table("head", "type", "metric", "statistics", title=title)
    for head in description.heads:
        stats = head.model_dump(
            exclude={"name", "type", "metric", "class_labels"}, exclude_none=True, exclude_defaults=True
        )
        table.add_row(head.name, head.type, head.metric or "", Text(json.dumps(stats)))
    return table


def _value(candidate: RankedCandidate, digits: int) -> str:
    e = candidate.evidence
    if e is None:
        return "rules only"
    if e.mean is None:
        return "diverged"
    text = f"{e.mean:.{digits}f}"
    if e.ci_low is not None and e.ci_high is not None and e.ci_low != e.ci_high:
        text += f" ({e.ci_low:.{digits}f} to {e.ci_high:.{digits}f})"
    return text


def _note(candidate: RankedCandidate, digits: int) -> str:
    e = candidate.evidence
    if e is None:
        return ""
    notes = [f"{e.diverged_repeats} repeats diverged"] if e.diverged_repeats else []
    if e.dropped_after:
        notes.append(f"raced out after {e.dropped_after} repeats")
    if (by_class := e.per_class_mean) is not None:
        notes.append(f"per class: {', '.join(f'{v:.{digits}f}' for v in by_class)}")
    return "; ".join(notes)


def _reason(candidate: RankedCandidate, width: int) -> str:
    """The rule's title on one line, cut at a word boundary."""
    return textwrap.shorten(candidate.title, width=width, placeholder="...")


def ranking_lines(head: HeadResult, width: int = 80) -> list[tuple[str, str]]:
    """(text, style) lines of one head's ranking table, no wider than ``width``."""
    digits = head_decimals(head.candidates)
    name_width = max(width - RANK_WIDTH - VALUE_WIDTH - TIE_WIDTH - 3, MIN_NAME_WIDTH)
    direction = "higher" if head.higher_is_better else "lower"
    header = (
        f"{'#':>{RANK_WIDTH}} {'loss':<{name_width}} {head.metric[:VALUE_WIDTH]:<{VALUE_WIDTH}} {'tie':>3}"
    )
    lines = [(header.rstrip(), "bold"), (f"{'':>{RANK_WIDTH}} ({direction} is better)", "dim")]
    indent = " " * (RANK_WIDTH + 1)
    for c in head.candidates:
        names = textwrap.wrap(c.name, name_width, break_on_hyphens=False) or [""]
        tie = str(c.tie_group) if c.evidence is not None else "-"
        first = f"{c.rank:>{RANK_WIDTH}} {names[0]:<{name_width}} {_value(c, digits):<{VALUE_WIDTH}} {tie:>3}"
        lines.append((first.rstrip(), "bold" if c.tie_group == 1 and c.evidence is not None else ""))
        lines += [(indent + more, "") for more in names[1:]]
        reason = _reason(c, width - len(indent))
        note = textwrap.shorten(_note(c, digits), width=width - len(indent), placeholder=" ...")
        lines.append((indent + reason, "dim"))
        if note:
            lines.append((indent + note, "dim"))
    return lines


def multi_task_lines(result: Recommendation, width: int = 80) -> list[tuple[str, str]]:
    """(text, style) lines of the multi_task candidates ranked by joint trials: the verdict, then a line per
    weighting scheme (its combined score and tie group) and the head it favours, no wider than ``width``."""
    trials = result.multi_task_trials
    assert trials is not None
    digits = head_decimals(result.multi_task)
    name_width = max(width - RANK_WIDTH - VALUE_WIDTH - TIE_WIDTH - 3, MIN_NAME_WIDTH)
    lines = [("Several heads: multi_task weightings, the heads trained together", "bold underline")]
    lines += [(line, "bold") for line in textwrap.wrap(trials.verdict, width)]
    header = f"{'#':>{RANK_WIDTH}} {'weighting':<{name_width}} {'combined_score':<{VALUE_WIDTH}} {'tie':>3}"
    lines += [
        (header.rstrip(), "bold"),
        (f"{'':>{RANK_WIDTH}} (higher is better; 1: as good as alone)", "dim"),
    ]
    indent = " " * (RANK_WIDTH + 1)
    for c in result.multi_task:
        name = textwrap.shorten(c.title, width=name_width, placeholder="...")
        first = (
            f"{c.rank:>{RANK_WIDTH}} {name:<{name_width}} {_value(c, digits):<{VALUE_WIDTH}} {c.tie_group:>3}"
        )
        lines.append((first.rstrip(), "bold" if c.tie_group == 1 else ""))
        lines += [(indent + more, "dim") for more in textwrap.wrap(c.summary or "", width - len(indent))]
    return lines


def print_head(console: Console, head: HeadResult, *, explain: bool) -> None:
    console.print(Text(f"Head '{head.head}' ({head.type}), ranked by {head.metric}", style="bold underline"))
    console.print(Text(head.verdict, style="bold"))
    for caveat in head.caveats:
        console.print(Text(f"! {caveat}", style="bold yellow"))
    width = min(console.width, 100)
    for text, style in ranking_lines(head, width):
        console.print(Text(text, style=style), no_wrap=True, overflow="ignore")
    console.print(Text(LEGEND, style="dim"))
    if explain:
        console.print(Text(head.explanation))
        for c in head.candidates:
            refs = f" References: {'; '.join(c.references)}." if c.references else ""
            console.print(
                Text(f"{c.rank}. {c.name} (rule {c.rule_id}, prior {c.prior:.2f}): {c.rationale}{refs}")
            )


def hand_off_lines(candidate: RankedCandidate) -> list[str]:
    """The code to train with the winner and, when it has a recipe, to predict with it."""
    lines = [f"Train with: advisor.build_loss({candidate.spec.to_json()})"]
    if candidate.post_hoc is not None:
        recipe = candidate.post_hoc.model_dump_json(exclude_none=True)
        lines.append(
            f"Predict with: advisor.apply_recipe({recipe}, logits)  # {candidate.post_hoc.describe()}"
        )
    return lines


def print_recommendation(
    console: Console, result: Recommendation, out: Path | None, *, explain: bool
) -> None:
    source = "profiled from your data" if result.task.source == "data" else "as described"
    if result.cache and result.cache.hit:  # an earlier answer: say when it was computed
        console.print(Text(f"From the result cache, computed {result.cache.created_at:%Y-%m-%d %H:%M:%S %Z}"))
    console.print(task_table(result.task, f"Task ({source})"))
    for note in result.task.notes:
        console.print(Text(f"- {note}"))
    for head in result.heads:
        print_head(console, head, explain=explain)
    if result.multi_task_trials is None:
        for multi in result.multi_task:
            console.print(Text(f"multi_task ({multi.spec.params['weighting']['scheme']}): {multi.rationale}"))
    else:
        for text, style in multi_task_lines(result, min(console.width, 100)):
            console.print(Text(text, style=style), no_wrap=True, overflow="ignore")
    for note in result.notes:
        if note not in result.task.notes:
            console.print(Text(f"Note: {note}", style="dim"))
    for line in hand_off_lines(result.best()):
        console.print(Text(line, style="bold"), soft_wrap=True)
    if out is not None:
        console.print(Text(f"Specs and recipes written to {out}"))


@contextlib.contextmanager
def progress_bar(quiet: bool) -> Iterator[Any]:
    """A rich progress bar per head, fed by recommend()'s progress callback; drawn from the first event on.

    Its 'tune best' is the best tune-row metric of any member so far, not a ranked value: the ranking is
    read on score rows."""
    if quiet:
        yield None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), TextColumn("{task.fields[status]}"),
                   TimeElapsedColumn(), console=Console(stderr=True))  # fmt: skip
    tasks: dict[str, Any] = {}

    def update(event: Any) -> None:
        p = event.progress
        if not tasks:
            bar.start()
        if event.head not in tasks:
            # '*' is the joint multi_task trials: every head trained together
            label = "joint trials" if event.head == "*" else f"trials '{event.head}'"
            tasks[event.head] = bar.add_task(label, total=p.epochs, status="")
        best = "n/a" if p.best_so_far is None else f"{p.best_so_far:.3g}"
        bar.update(tasks[event.head], completed=p.epoch,
                   status=f"epoch {p.epoch}/{p.epochs}, {p.alive}/{p.members} alive, tune best {best}")  # fmt: skip

    try:
        yield update
    finally:
        if tasks:
            bar.stop()
