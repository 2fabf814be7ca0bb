"""Loading rule files: YAML with line numbers, validation against the facts and the catalog, user folders.

Built-in rules live in the project's ``rules/`` folder. Users add folders with ``rule_dirs=`` (Python),
``--rules DIR`` (command line) or the ``LOSS_ADVISOR_RULES`` environment variable (paths separated by the
OS path separator). A user rule with the id of a built-in one replaces it, and the replacement is listed in
:attr:`RuleSet.overrides`.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from advisor.errors import AdvisorError, FieldViolation, SpecError
from advisor.losses import get_loss_info, validate_params
from advisor.rules.schema import (
    ConditionError,
    Derive,
    Predicate,
    RuleModel,
    check_derive_arguments,
    compile_condition,
)

RULES_ENV = "LOSS_ADVISOR_RULES"


def _builtin_rules_dir() -> Path:
    """The package data ``advisor/rules/builtin`` of an installed wheel (any layout: site-packages, ``--user``,
    ``--target``), else the checkout's top-level ``rules/``, the one copy (editable installs, a plain checkout)."""
    packaged = resources.files("advisor.rules") / "builtin"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "rules"


BUILTIN_RULES_DIR = _builtin_rules_dir()
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple[str | int, ...]


class RuleLoadError(AdvisorError):
    """Rule files that do not validate; each violation reads ``file:line: rule 'id': path: message``."""


@dataclass(frozen=True)
class Rule:
    """A validated rule, its compiled condition and where it came from."""

    model: RuleModel
    predicate: Predicate = field(repr=False)
    source: str
    line: int
    builtin: bool
    example_lines: dict[Path_, int] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class Override:
    rule_id: str
    source: str
    replaced: str


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    overrides: tuple[Override, ...] = ()

    def active(self) -> tuple[Rule, ...]:
        """Rules that take part in recommendations (deprecated ones are kept only for ``rules list``)."""
        return tuple(rule for rule in self.rules if rule.model.status != "deprecated")


def _line_of(node: yaml.Node, path: Path_) -> int:
    """1-based line of the deepest node along ``path``."""
    for step in path:
        if isinstance(node, yaml.MappingNode):
            child = next((value for key, value in node.value if key.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            child = node.value[step]
        else:
            child = None
        if child is None:
            break
        node = child
    return node.start_mark.line + 1


def _collect(rules: Iterable[tuple[int, Any]], root: yaml.Node, source: str, builtin: bool) -> list[Rule]:
    loaded, errors = [], []

    def fail(index: int, rule_id: str, path: Path_, message: str) -> None:
        line = _line_of(root, ("rules", index, *path))
        where = ".".join(str(p) for p in path) or "rule"
        errors.append(FieldViolation(f"{source}:{line}", f"rule '{rule_id}': {where}: {message}"))

    seen: set[str] = set()
    for index, raw in rules:
        rule_id = raw.get("id", f"#{index}") if isinstance(raw, dict) else f"#{index}"
        try:
            model = RuleModel.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                fail(index, rule_id, error["loc"], error["msg"].removeprefix("Value error, "))
            continue
        if model.id in seen:
            fail(index, rule_id, ("id",), "repeats an id defined earlier in this file")
        seen.add(model.id)
        problems = _recommendation_problems(model)
        try:
            predicate = compile_condition(model.when)
        except ConditionError as exc:
            problems.append((exc.path, exc.message))
        for path, message in problems:
            fail(index, rule_id, path, message)
        if not problems:
            example_lines = {
                (kind, i): _line_of(root, ("rules", index, "examples", kind, i))
                for kind in ("match", "no_match")
                for i in range(len(getattr(model.examples, kind)))
            }
            line = _line_of(root, ("rules", index))
            loaded.append(Rule(model, predicate, source, line, builtin, example_lines))
    if errors:
        raise RuleLoadError(errors)
    return loaded


def _recommendation_problems(model: RuleModel) -> list[tuple[Path_, str]]:
    """Loss, parameter names, literal values and derivation arguments, checked against the catalog."""
    recommend = model.recommend
    try:
        info = get_loss_info(recommend.loss)
    except SpecError as exc:
        return [(("recommend", "loss"), exc.violations[0].description)]
    known = list(info.params_model.model_fields)
    problems: list[tuple[Path_, str]] = []
    derived = {}
    for name, value in recommend.params.items():
        if isinstance(value, dict) and "derive" in value:
            try:
                derived[name] = Derive.model_validate(value)
            except ValidationError as exc:
                problems.append(
                    (("recommend", "params", name), exc.errors()[0]["msg"].removeprefix("Value error, "))
                )
    for name in recommend.params:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            problems.append(
                (
                    ("recommend", "params", name),
                    f"loss '{info.name}' has no parameter '{name}'; {hint}allowed: {', '.join(known)}",
                )
            )
    for name, derive in derived.items():
        message = check_derive_arguments(name, derive)
        if message:
            problems.append((("recommend", "params", name), message))
    literals = {k: v for k, v in recommend.params.items() if not _is_derived(v) and k in known}
    try:
        validate_params(info.name, literals)
    except SpecError as exc:
        for violation in exc.violations:
            name = violation.field.removeprefix("params.").split(".")[0]
            if name in literals:  # parameters left to derivations or defaults are checked by the examples
                problems.append((("recommend", "params", name), violation.description))
    if any(_is_derived(v) for v in recommend.params.values()) and not any(
        example.expect for example in model.examples.match
    ):
        problems.append(
            (("examples", "match"), "a rule with derived parameters needs an example with 'expect'")
        )
    return problems


def _is_derived(value: Any) -> bool:
    return isinstance(value, dict) and "derive" in value


# Bounds on a rule file, so a hostile or broken one fails fast with a short message (an alias bomb in 'when'
# once took 2 GB): the built-in files are under 25 KB and a few thousand YAML nodes each.
MAX_RULE_FILE_BYTES = 1024 * 1024
MAX_RULE_NODES = 200_000  # YAML nodes with every alias expanded


def _read_rule_file(path: str) -> str:
    try:
        size = Path(path).stat().st_size
        if size > MAX_RULE_FILE_BYTES:
            raise RuleLoadError(
                FieldViolation(
                    f"{path}:1", f"{size:,} bytes; a rule file may have at most {MAX_RULE_FILE_BYTES:,}"
                )
            )
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:  # a symlink loop, a permission, a folder named *.yaml
        raise RuleLoadError(
            FieldViolation(f"{path}:1", f"cannot read the rule file: {exc.strerror}")
        ) from None
    except UnicodeDecodeError as exc:
        raise RuleLoadError(
            FieldViolation(f"{path}:1", f"not UTF-8 text (byte {exc.start}); save rule files as UTF-8")
        ) from None


def _expanded_size_exceeds(root: yaml.Node, limit: int) -> bool:
    """Whether the node tree, every alias expanded, has more than ``limit`` nodes (stops counting there)."""
    stack, count = [root], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(node, yaml.MappingNode):
            stack.extend(child for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return False


@functools.lru_cache(maxsize=256)
def _load_file(path: str, modified: float, builtin: bool) -> tuple[Rule, ...]:
    loader = _Loader(_read_rule_file(path))
    try:  # parsed once: the node tree gives line numbers and the alias check, then builds the data
        root = loader.get_single_node()
        if root is not None and _expanded_size_exceeds(root, MAX_RULE_NODES):
            raise RuleLoadError(
                FieldViolation(
                    f"{path}:1",
                    f"over {MAX_RULE_NODES:,} YAML nodes once aliases are expanded (an alias bomb?)",
                )
            )
        data = None if root is None else loader.construct_document(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise RuleLoadError(
            FieldViolation(f"{path}:{line}", f"invalid YAML: {getattr(exc, 'problem', exc)}")
        ) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleLoadError(FieldViolation(f"{path}:1", "a rule file is a mapping with a 'rules:' list"))
    return tuple(_collect(enumerate(data["rules"]), root, path, builtin))


def load_rule_file(path: str | Path, *, builtin: bool = False) -> tuple[Rule, ...]:
    """Validate one YAML rule file; :class:`RuleLoadError` lists every problem with its file and line."""
    path = Path(path)
    if not path.is_file():
        raise RuleLoadError(FieldViolation("rules", f"{path}: no such rule file"))
    return _load_file(str(path), _modified(path), builtin)


def rule_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise RuleLoadError(FieldViolation("rules", f"{directory}: no such rule folder"))
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def user_rule_dirs(rule_dirs: Sequence[str | Path] | None = None) -> list[Path]:
    """Folders from ``LOSS_ADVISOR_RULES`` followed by ``rule_dirs``."""
    from_env = [Path(p) for p in os.environ.get(RULES_ENV, "").split(os.pathsep) if p]
    return [*from_env, *(Path(d) for d in rule_dirs or ())]


def load_rules(rule_dirs: Sequence[str | Path] | None = None, *, builtin: bool = True) -> RuleSet:
    """The built-in rules plus those in user folders (environment first, then ``rule_dirs``).

    Raises
    ------
    RuleLoadError
        Every invalid file, rule, condition or parameter, as ``file:line: rule 'id': path: message``.
    """
    sources = [(BUILTIN_RULES_DIR, True)] if builtin else []
    sources += [(d, False) for d in user_rule_dirs(rule_dirs)]
    files = tuple(
        (str(path), _modified(path), is_builtin) for d, is_builtin in sources for path in rule_files(d)
    )
    return _rule_set(files)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError as exc:  # a symlink loop or a dangling link
        raise RuleLoadError(
            FieldViolation(f"{path}:1", f"cannot read the rule file: {exc.strerror}")
        ) from None


@functools.lru_cache(maxsize=64)
def _rule_set(files: tuple[tuple[str, float, bool], ...]) -> RuleSet:
    """The merged rule set of these files at these modification times (cached: services call this per request)."""
    by_id: dict[str, Rule] = {}
    overrides: list[Override] = []
    errors: list[FieldViolation] = []
    for path, modified, is_builtin in files:
        try:
            rules = _load_file(path, modified, is_builtin)
        except RuleLoadError as exc:
            errors += exc.violations
            continue
        for rule in rules:
            previous = by_id.get(rule.id)
            if previous is not None and previous.source != rule.source:
                if previous.builtin and not rule.builtin:
                    overrides.append(Override(rule.id, rule.location, previous.location))
                else:
                    errors.append(
                        FieldViolation(
                            rule.location, f"rule '{rule.id}': id: already defined at {previous.location}"
                        )
                    )
                    continue
            by_id[rule.id] = rule
    if errors:
        raise RuleLoadError(errors)
    return RuleSet(tuple(sorted(by_id.values(), key=lambda r: r.id)), tuple(overrides))
