"""The rule format: pydantic models for a rule's envelope and a compiler for its structured condition.

A condition is YAML data, never code: ``{all: [...]}``, ``{any: [...]}``, ``{not: {...}}`` or a comparison
``{fact: NAME, OP: VALUE}`` with OP one of eq, ne, lt, le, gt, ge, in, not_in, is_set. Fact names, operators
and values are checked against :class:`~advisor.rules.facts.Facts` when the rule loads, and the condition is
compiled into plain Python closures, so evaluating it costs microseconds.
"""

from __future__ import annotations

import difflib
import math
import operator
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from advisor.rules.derivations import DERIVATIONS, derivation_arguments
from advisor.rules.facts import Facts

Predicate = Callable[[Facts], bool]

_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}
_EQUALITY_OPS: dict[str, Callable[[Any, Any], bool]] = {"eq": operator.eq, "ne": operator.ne}
_MEMBER_OPS = ("in", "not_in")
OPERATORS = (*_EQUALITY_OPS, *_ORDER_OPS, *_MEMBER_OPS, "is_set")


class ConditionError(Exception):
    """A condition that does not validate; ``path`` locates it inside the condition."""

    def __init__(self, path: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def _suggest(word: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, options, n=2, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _fact_kind(annotation: Any) -> tuple[str, Any]:
    """('number' | 'bool' | 'choice', the annotation without None)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        annotation = args[0] if len(args) == 1 else annotation
    base = typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation
    if base is bool:
        return "bool", annotation
    if base in (int, float):
        return "number", annotation
    return "choice", annotation


_FACT_KINDS = {name: _fact_kind(field.annotation) for name, field in Facts.model_fields.items()}


def _constrained(name: str, annotation: Any) -> TypeAdapter:
    """A validator of one fact's values, bounds included (the field's metadata holds them)."""
    metadata = tuple(Facts.model_fields[name].metadata)
    return TypeAdapter(Annotated[(annotation, *metadata)] if metadata else annotation)


_FACT_CONSTRAINTS = {name: _constrained(name, annotation) for name, (_, annotation) in _FACT_KINDS.items()}


def fact_kind(name: str) -> str:
    """'number', 'bool' or 'choice' (with the choices)."""
    kind, annotation = _FACT_KINDS[name]
    choices = typing.get_args(annotation) if kind == "choice" else ()
    return f"choice: {', '.join(map(str, choices))}" if choices else kind


_ALLOWED_OPS = {
    "number": (*_EQUALITY_OPS, *_ORDER_OPS, *_MEMBER_OPS, "is_set"),
    "bool": (*_EQUALITY_OPS, "is_set"),
    "choice": (*_EQUALITY_OPS, *_MEMBER_OPS, "is_set"),
}


def _checked_value(fact: str, value: Any, path: tuple[str | int, ...]) -> Any:
    """``value`` validated as a possible value of ``fact`` (type, bounds, allowed choices)."""
    try:
        return _FACT_CONSTRAINTS[fact].validate_python(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        hint = ""
        if isinstance(value, str):
            choices = [str(c) for c in typing.get_args(_FACT_KINDS[fact][1])]
            hint = _suggest(value, choices)
        raise ConditionError(
            path, f"{value!r} is not a possible value of fact '{fact}': {error['msg']}{hint}"
        ) from None


def _compile_comparison(node: dict, path: tuple[str | int, ...]) -> Predicate:
    fact = node.get("fact")
    if not isinstance(fact, str):
        raise ConditionError(path, "a comparison needs 'fact: NAME'")
    if fact not in _FACT_KINDS:
        raise ConditionError((*path, "fact"), f"unknown fact '{fact}'{_suggest(fact, list(_FACT_KINDS))}")
    ops = [key for key in node if key != "fact"]
    if len(ops) != 1:
        raise ConditionError(
            path, f"a comparison has exactly one operator of {', '.join(OPERATORS)}; got {ops}"
        )
    op, value = ops[0], node[ops[0]]
    kind = _FACT_KINDS[fact][0]
    if op not in OPERATORS:
        raise ConditionError((*path, op), f"unknown operator '{op}'{_suggest(op, OPERATORS)}")
    if op not in _ALLOWED_OPS[kind]:
        allowed = ", ".join(_ALLOWED_OPS[kind])
        raise ConditionError(
            (*path, op), f"operator '{op}' does not fit {kind} fact '{fact}'; allowed: {allowed}"
        )
    getter = operator.attrgetter(fact)
    if op == "is_set":
        if not isinstance(value, bool):
            raise ConditionError((*path, op), f"is_set takes true or false, got {value!r}")
        return lambda facts: (getter(facts) is not None) is value
    if op in _MEMBER_OPS:
        if not isinstance(value, list) or not value:
            raise ConditionError((*path, op), f"'{op}' takes a non-empty list, got {value!r}")
        members = frozenset(_checked_value(fact, v, (*path, op, i)) for i, v in enumerate(value))
        if op == "in":
            return lambda facts: getter(facts) in members
        return lambda facts: (current := getter(facts)) is not None and current not in members
    expected = _checked_value(fact, value, (*path, op))
    compare = {**_EQUALITY_OPS, **_ORDER_OPS}[op]
    return lambda facts: (current := getter(facts)) is not None and compare(current, expected)


def compile_condition(node: Any, path: tuple[str | int, ...] = ("when",)) -> Predicate:
    """Compile a condition into a predicate over :class:`Facts`; :class:`ConditionError` locates mistakes."""
    if not isinstance(node, dict):
        raise ConditionError(path, f"a condition is a mapping (all/any/not or a comparison), got {node!r}")
    combinators = [key for key in ("all", "any", "not") if key in node]
    if not combinators:
        return _compile_comparison(node, path)
    if len(node) != 1:
        raise ConditionError(
            path, f"'{combinators[0]}' must stand alone in its mapping; found {sorted(node)}"
        )
    key = combinators[0]
    if key == "not":
        inner = compile_condition(node["not"], (*path, "not"))
        return lambda facts: not inner(facts)
    items = node[key]
    if not isinstance(items, list) or not items:
        raise ConditionError((*path, key), f"'{key}' takes a non-empty list of conditions")
    parts = tuple(compile_condition(item, (*path, key, i)) for i, item in enumerate(items))
    if key == "all":
        return lambda facts: all(part(facts) for part in parts)
    return lambda facts: any(part(facts) for part in parts)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostHoc(_Model):
    """A prediction-time recipe that goes with the loss."""

    kind: Literal["logit_adjustment", "threshold", "temperature"] = Field(
        description="logit_adjustment: predict argmax(z - tau log pi); threshold: tune the decision threshold "
        "on validation; temperature: fit a softmax temperature on validation."
    )
    tau: float | None = Field(
        None, ge=0, description="Logit-adjustment strength (tuned on validation if null)."
    )


class Derive(_Model):
    """A parameter computed by a named derivation with keyword arguments."""

    model_config = ConfigDict(extra="allow", frozen=True)
    derive: str

    @field_validator("derive")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in DERIVATIONS:
            raise ValueError(f"unknown derivation '{name}'{_suggest(name, list(DERIVATIONS))}")
        return name

    @property
    def arguments(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Recommendation(_Model):
    loss: str = Field(description="A catalog loss name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Literals or {derive: NAME, ...}.")
    post_hoc: PostHoc | None = None
    prior: float = Field(
        ge=0,
        le=1,
        description="Belief (literature and held-out measurements) that it is among the best here.",
    )
    rationale: str = Field(min_length=10, description="Why, in a sentence or two.")


class Example(_Model):
    """A task the rule must (or must not) match; ``expect`` lists parameters the match must produce."""

    head: dict[str, Any]
    task: dict[str, Any] = Field(
        default_factory=dict, description="Task fields beside heads (n_samples, ...)."
    )
    expect: dict[str, Any] = Field(default_factory=dict)


class Examples(_Model):
    match: list[Example] = Field(min_length=1)
    no_match: list[Example] = Field(min_length=1)


class RuleModel(_Model):
    """The envelope of a rule; ``when`` is compiled separately by :func:`compile_condition`."""

    id: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]*$", description="Stable identifier (lowercase, digits, '-')."
    )
    title: str = Field(min_length=3)
    status: Literal["stable", "experimental", "deprecated"] = "stable"
    when: dict[str, Any]
    recommend: Recommendation
    references: list[str] = Field(min_length=1)
    examples: Examples


def check_derive_arguments(name: str, derive: Derive) -> str | None:
    """A message when ``derive`` passes arguments its derivation does not take."""
    accepted = derivation_arguments(derive.derive)
    unknown = [arg for arg in derive.arguments if arg not in accepted]
    if unknown:
        return f"derivation '{derive.derive}' takes {sorted(accepted) or 'no arguments'}, not {unknown}"
    for arg, value in derive.arguments.items():
        default = accepted[arg].default  # every argument has a default: its type is the one expected
        numeric = isinstance(default, int | float) and not isinstance(default, bool)
        fits = (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if numeric
            else isinstance(value, type(default))
        )
        if not fits:
            expected = "a finite number" if numeric else type(default).__name__
            return f"derivation '{derive.derive}' argument '{arg}': got {value!r}; {expected}"
    return None
