"""Evaluating rules: task -> facts -> matching rules -> configured candidate losses.

:func:`candidates` is the public entry point (``advisor.candidates``). :func:`check_rules` runs every rule's
own examples, as ``advisor-cli rules check`` does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from advisor.errors import AdvisorError, FieldViolation
from advisor.losses import normalize_spec
from advisor.rules.derivations import DERIVATIONS, DerivationError, RuleContext
from advisor.rules.facts import facts_for
from advisor.rules.loader import Rule, RuleSet, load_rules
from advisor.rules.schema import Derive, PostHoc
from advisor.spec import LossSpec
from advisor.task import TaskDescription, TaskLike, parse_task

MULTI_TASK_HEAD = "*"
_MULTI_TASK_REFERENCES = [
    "Kurin et al. (2022), In Defense of the Unitary Scalarization for Deep Multi-Task Learning, NeurIPS",
    "Kendall et al. (2018), Multi-Task Learning Using Uncertainty to Weigh Losses, CVPR",
]


class Candidate(BaseModel):
    """A configured loss proposed for one head (or ``'*'``, all heads, for ``multi_task``)."""

    model_config = ConfigDict(frozen=True)

    head: str = Field(description="Head name, or '*' for a multi_task candidate over every head.")
    spec: LossSpec = Field(description="The loss, every parameter filled in.")
    post_hoc: PostHoc | None = Field(None, description="A prediction-time recipe that goes with the loss.")
    prior: float = Field(
        ge=0,
        le=1,
        description="Rule prior: the belief that it is among the best here; orders ties (rules/README.md).",
    )
    rule_id: str = Field(description="The rule that proposed it.")
    title: str
    rationale: str
    references: list[str]
    also_proposed_by: list[str] = Field(
        default_factory=list, description="Other rules with the same proposal."
    )

    def key(self) -> tuple[str, str, str]:
        return self.head, self.spec.to_json(), self.post_hoc.model_dump_json() if self.post_hoc else ""


def _resolve(value: Any, ctx: RuleContext) -> Any:
    if isinstance(value, dict) and "derive" in value:
        derive = Derive.model_validate(value)
        return DERIVATIONS[derive.derive](ctx, **derive.arguments)
    return value


def context_for(task: TaskDescription, head_name: str) -> RuleContext:
    """What rules see of one head: the task, the head and its facts (computed once per head)."""
    head = task.head(head_name)
    return RuleContext(task, head, facts_for(task, head))


def evaluate(rule: Rule, ctx: RuleContext) -> Candidate | None:
    """The candidate ``rule`` proposes for the context's head, or None when it does not apply."""
    head = ctx.head
    if not rule.predicate(ctx.facts):
        return None
    recommend = rule.model.recommend
    try:
        params = {name: _resolve(value, ctx) for name, value in recommend.params.items()}
    except DerivationError:
        return None
    return Candidate(
        head=head.name,
        spec=normalize_spec({"loss": recommend.loss, "params": params}),
        post_hoc=recommend.post_hoc,
        prior=recommend.prior,
        rule_id=rule.id,
        title=rule.model.title,
        rationale=" ".join(recommend.rationale.split()),
        references=list(rule.model.references),
    )


def _deduplicated(proposals: list[Candidate]) -> list[Candidate]:
    """One candidate per (head, spec, post-hoc): the highest prior wins, the others are credited."""
    best: dict[tuple[str, str, str], Candidate] = {}
    credits: dict[tuple[str, str, str], list[str]] = {}
    for candidate in sorted(proposals, key=lambda c: (-c.prior, c.rule_id)):
        key = candidate.key()
        if key in best:
            credits[key].append(candidate.rule_id)
        else:
            best[key], credits[key] = candidate, []
    return [best[key].model_copy(update={"also_proposed_by": credits[key]}) for key in best]


def _multi_task(task: TaskDescription, per_head: dict[str, list[Candidate]]) -> list[Candidate]:
    """multi_task candidates from each head's strongest plain loss: equal static weights and uncertainty."""
    tops = {name: next((c for c in found if c.post_hoc is None), None) for name, found in per_head.items()}
    if len(task.heads) < 2 or any(top is None for top in tops.values()):
        return []
    heads = {name: top.spec.model_dump() for name, top in tops.items() if top is not None}
    prior = round(min(top.prior for top in tops.values() if top is not None), 6)
    return [
        Candidate(
            head=MULTI_TASK_HEAD,
            spec=normalize_spec(
                {"loss": "multi_task", "params": {"heads": heads, "weighting": {"scheme": scheme}}}
            ),
            prior=prior,
            rule_id=f"multi-task-{scheme}",
            title=title,
            rationale=f"{rationale} Each head uses its best single-head candidate (by rule prior, or by trials).",
            references=_MULTI_TASK_REFERENCES,
        )
        for scheme, title, rationale in (
            (
                "static",
                "Equal-weight sum of the head losses",
                "An equal-weight sum of head losses matches specialised multi-task optimisers once tuned "
                "(Kurin et al. 2022); it is the baseline to beat.",
            ),
            (
                "uncertainty",
                "Uncertainty-weighted head losses",
                "Learned homoscedastic-uncertainty weights balance heads whose losses live on different scales "
                "(Kendall et al. 2018).",
            ),
        )
    ]


def candidates(task: TaskLike, *, rule_dirs: Sequence[str | Path] | None = None) -> list[Candidate]:
    """Configured candidate losses for every head of ``task``, deduplicated, in a deterministic order.

    Parameters
    ----------
    task : TaskDescription, dict or JSON text
        The task; validated here.
    rule_dirs : sequence of paths, optional
        Folders of user rules beside the built-in ones (``LOSS_ADVISOR_RULES`` adds more).

    Returns
    -------
    list of Candidate
        Per head in task order: by prior (highest first), then rule id; ``multi_task`` candidates last.
    """
    task = parse_task(task)
    return candidates_from(load_rules(rule_dirs), task)


def candidates_from(rules: RuleSet, task: TaskDescription) -> list[Candidate]:
    """:func:`candidates` with an already loaded rule set (for callers that evaluate many tasks)."""
    per_head: dict[str, list[Candidate]] = {}
    for head in task.heads:
        ctx = context_for(task, head.name)
        proposals = [c for rule in rules.active() if (c := evaluate(rule, ctx)) is not None]
        per_head[head.name] = _deduplicated(proposals)
    return [c for found in per_head.values() for c in found] + _multi_task(task, per_head)


def _close(actual: Any, expected: Any) -> bool:
    numbers = (int, float)
    if isinstance(expected, float) or isinstance(actual, float):
        both = isinstance(actual, numbers) and isinstance(expected, numbers)
        return both and math.isclose(actual, expected, rel_tol=1e-4, abs_tol=1e-9)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(
            _close(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(key in actual and _close(actual[key], value) for key, value in expected.items())
    return actual == expected


def check_rule(rule: Rule) -> list[FieldViolation]:
    """Run a rule's own examples: each ``match`` must match with the expected parameters, each ``no_match``
    must not match."""
    problems = []
    for kind in ("match", "no_match"):
        for index, example in enumerate(getattr(rule.model.examples, kind)):
            where = f"{rule.source}:{rule.example_lines.get((kind, index), rule.line)}"
            prefix = f"rule '{rule.id}': examples.{kind}.{index}"
            head = {"name": "target", **example.head}
            try:
                task = parse_task({**example.task, "heads": [head]})
                found = evaluate(rule, context_for(task, head["name"]))
            except AdvisorError as exc:
                problems.append(FieldViolation(where, f"{prefix}: invalid example: {exc}"))
                continue
            if kind == "no_match" and found is not None:
                problems.append(FieldViolation(where, f"{prefix}: the rule matched a task it must not match"))
            elif kind == "match" and found is None:
                problems.append(FieldViolation(where, f"{prefix}: the rule did not match"))
            elif kind == "match" and found is not None:
                for name, expected in example.expect.items():
                    actual = found.spec.params.get(name)
                    if not _close(actual, expected):
                        problems.append(
                            FieldViolation(
                                where, f"{prefix}: parameter '{name}' is {actual!r}, expected {expected!r}"
                            )
                        )
    return problems


def check_rules(rules: RuleSet) -> list[FieldViolation]:
    """Every example of every rule (deprecated ones included)."""
    return [problem for rule in rules.rules for problem in check_rule(rule)]
