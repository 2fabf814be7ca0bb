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

app = typer.Typer(
    help="Loss Advisor: which loss should this model train with, configured how, and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
spec_app = typer.Typer(help="Check loss specs and export their JSON Schema.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
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
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
