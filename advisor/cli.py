"""``advisor-cli``: the command-line face. It only converts arguments and output; the work is in the core API.

Exit codes: 0 success, 2 usage or input error (one line naming the problem), 1 internal error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from advisor.errors import AdvisorError, FieldViolation, SpecError
from advisor.losses import catalog, get_loss_info, normalize_spec, spec_json_schema
from advisor.rules.loader import RuleLoadError
from advisor.spec import LossSpec

app = typer.Typer(
    help="Loss Advisor: which loss should this model train with, configured how, and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
spec_app = typer.Typer(help="Check loss specs and export their JSON Schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
rules_app = typer.Typer(
    help="Validate, test and list the rules that propose candidate losses.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
console = Console()


def _constraint(schema: dict[str, Any]) -> str:
    """A short text of a JSON-schema property's bounds and choices."""
    options = schema.get("anyOf", [schema])
    parts = []
    for option in options:
        if "enum" in option or "const" in option:
            parts.append(" | ".join(repr(v) for v in option.get("enum", [option.get("const")])))
        bounds = [
            f"{symbol} {option[key]}"
            for key, symbol in (
                ("minimum", ">="),
                ("exclusiveMinimum", ">"),
                ("maximum", "<="),
                ("exclusiveMaximum", "<"),
            )
            if key in option
        ]
        if bounds:
            parts.append(", ".join(bounds))
    return "; ".join(parts)


def _type_name(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf", [schema])
    names = []
    for option in options:
        kind = option.get("type", "object" if "$ref" in option or "oneOf" in option else "any")
        if kind == "array":
            kind = f"list[{option.get('items', {}).get('type', 'any')}]"
        names.append(kind)
    return " | ".join(names)


def _params_table(schema: dict[str, Any]) -> Table:
    table = Table("parameter", "type", "default", "allowed", "meaning", show_lines=False)
    for name, prop in schema.get("properties", {}).items():
        default = json.dumps(prop["default"]) if "default" in prop else "(required)"
        table.add_row(name, _type_name(prop), default, _constraint(prop), Text(prop.get("description", "")))
    return table


@app.command()
def losses(
    name: Annotated[
        str | None, typer.Argument(help="Show one loss in full: formula, formats, parameters.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON: names, heads, schemas, references.")
    ] = False,
) -> None:
    """List the loss catalog, or show one entry."""
    entries = [get_loss_info(name)] if name else catalog()
    if as_json:
        payload: Any = entries[0].as_dict() if name else [entry.as_dict() for entry in entries]
        typer.echo(json.dumps(payload, indent=2))
        return
    if name:
        info = entries[0]
        console.rule(f"[bold]{info.name}")
        paragraphs = info.description.split("\n\n")
        console.print(Text("\n\n".join(" ".join(part.split()) for part in paragraphs)))
        console.print(f"\n[bold]heads[/]: {', '.join(info.heads)}")
        for label, value in (("input", info.input), ("target", info.target), ("reference", info.reference)):
            console.print(Text.assemble((f"{label}: ", "bold"), value))
        console.print(_params_table(info.params_schema()))
        return
    table = Table("loss", "heads", "summary", title=f"Loss catalog ({len(entries)} losses)")
    for info in entries:
        table.add_row(info.name, ", ".join(info.heads), Text(info.summary))
    console.print(table)


@spec_app.command("check")
def spec_check(
    path: Annotated[str, typer.Argument(help="A JSON spec file, or - for standard input.")],
) -> None:
    """Validate a loss spec and print it with every default filled in (the form build_loss uses)."""
    text = sys.stdin.read() if path == "-" else _read_text(path)
    typer.echo(normalize_spec(text).to_json(indent=2))


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of a loss spec (one alternative per registered loss)."""
    typer.echo(json.dumps(spec_json_schema(), indent=2))


RulesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--rules",
        help="A folder of user rules beside the built-in ones (repeatable; also LOSS_ADVISOR_RULES).",
    ),
]


@rules_app.command("check")
def rules_check(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Rule files or folders; default: the built-in and user rules.")
    ] = None,
    rules: RulesOption = None,
) -> None:
    """Validate rule files and run every rule's examples; exit 2 with file:line messages on any failure."""
    from advisor.rules import RuleSet, check_rules, load_rule_file, load_rules
    from advisor.rules.loader import rule_files

    if paths:
        files = [f for path in paths for f in (rule_files(path) if path.is_dir() else [path])]
        ruleset = RuleSet(tuple(rule for f in files for rule in load_rule_file(f)))
    else:
        ruleset = load_rules(rules)
        files = sorted({rule.source for rule in ruleset.rules})
    problems = check_rules(ruleset)
    if problems:
        raise RuleCheckFailed(problems)
    examples = sum(len(r.model.examples.match) + len(r.model.examples.no_match) for r in ruleset.rules)
    typer.echo(f"{len(ruleset.rules)} rules in {len(files)} files: valid, all {examples} examples pass")


@rules_app.command("list")
def rules_list(
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the rules: id, status, proposed loss, prior, title and where each comes from."""
    from advisor.rules import load_rules

    ruleset = load_rules(rules)
    overridden = {o.rule_id: o for o in ruleset.overrides}
    if as_json:
        rows = [
            {
                **rule.model.model_dump(exclude={"examples"}),
                "source": rule.location,
                "overrides": overridden[rule.id].replaced if rule.id in overridden else None,
            }
            for rule in ruleset.rules
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "status", "loss", "prior", "title", "source", title=f"Rules ({len(ruleset.rules)})")
    for rule in ruleset.rules:
        source = "built-in" if rule.builtin else rule.location
        if rule.id in overridden:
            source += f" (overrides {overridden[rule.id].replaced})"
        recommend = rule.model.recommend
        loss = recommend.loss + (f" + {recommend.post_hoc.kind}" if recommend.post_hoc else "")
        table.add_row(
            rule.id, rule.model.status, loss, f"{recommend.prior:.2f}", Text(rule.model.title), source
        )
    console.print(table)


@rules_app.command("facts")
def rules_facts() -> None:
    """List the facts rule conditions may compare, with their types."""
    from advisor.rules import Facts
    from advisor.rules.schema import fact_kind

    table = Table("fact", "kind", "meaning", title="Facts")
    for name, field in Facts.model_fields.items():
        table.add_row(name, fact_kind(name), Text(field.description or ""))
    console.print(table)


@app.command("candidates")
def candidates_command(
    task_json: Annotated[str, typer.Argument(help="A task description as a JSON file, or - for stdin.")],
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The configured candidate losses the rules propose for a task description (no trials)."""
    from advisor.rules import candidates

    found = candidates(sys.stdin.read() if task_json == "-" else _read_text(task_json), rule_dirs=rules)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    table = Table("head", "prior", "loss", "key parameters", "post-hoc", "rule", title="Candidates")
    for c in found:
        post_hoc = c.post_hoc.kind if c.post_hoc else ""
        table.add_row(c.head, f"{c.prior:.2f}", c.spec.loss, Text(_key_params(c.spec)), post_hoc, c.rule_id)
    console.print(table)


def _key_params(spec: LossSpec) -> str:
    """Parameters that differ from the loss's defaults, compactly."""
    defaults = normalize_spec({"loss": spec.loss, "params": _required_params(spec)}).params
    changed = {k: v for k, v in spec.params.items() if defaults.get(k) != v}
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items() if k != "heads")
    return text if len(text) <= 60 else text[:57] + "..."


def _required_params(spec: LossSpec) -> dict[str, Any]:
    model = get_loss_info(spec.loss).params_model
    return {name: spec.params[name] for name, field in model.model_fields.items() if field.is_required()}


@app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="A CSV file.")],
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Target column (repeatable); inferred when obvious.")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Force the head type, e.g. ordinal.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the TaskDescription as JSON.")] = False,
) -> None:
    """Profile a CSV file and print the task description inferred from it."""
    from advisor.profiling import profile

    targets = target[0] if target and len(target) == 1 else target
    description = profile(str(data), target=targets, task=task)
    if as_json:
        typer.echo(description.model_dump_json(indent=2, exclude_none=True))
        return
    table = Table("head", "type", "metric", "statistics", title=f"Task profiled from {data.name}")
    for head in description.heads:
        stats = head.model_dump(
            exclude={"name", "type", "metric", "class_labels"}, exclude_none=True, exclude_defaults=True
        )
        table.add_row(head.name, head.type, head.metric or "", Text(json.dumps(stats)))
    console.print(table)
    console.print(Text(f"rows: {description.n_samples}, features: {description.n_features}"))
    for note in description.notes:
        console.print(Text(f"- {note}"))


class RuleCheckFailed(AdvisorError):
    """Rule examples that fail; printed one per line."""


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SpecError(FieldViolation("path", f"cannot read {path!r}: {exc.strerror}")) from None


def main() -> None:
    """Console-script entry point: input errors become one line on stderr and exit code 2."""
    try:
        app()
    except AdvisorError as exc:
        if isinstance(exc, RuleLoadError | RuleCheckFailed):  # a report: one line per problem
            typer.echo("\n".join(str(v) for v in exc.violations), err=True)
        else:
            typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
