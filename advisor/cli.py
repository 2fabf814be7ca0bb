"""``advisor-cli``: the command-line face. It only converts arguments and output; the work is in the core API.

Exit codes: 0 success, 2 usage or input error or a missing extra (one line naming the problem), 1 internal
error.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

# Only light modules at import time, so `--help`, `--version` and `losses` never load torch, grpc, pandas or
# matplotlib; each command imports what it needs.
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from advisor._extras import MissingExtraError, extra_of, requires_extra
from advisor.errors import AdvisorError, FieldViolation, SpecError, WorkerLostError
from advisor.trials.protocols import DEFAULT_BUDGET_S, DEFAULT_EPOCHS


class _Group(TyperGroup):
    """A command group whose help shows no type on flags (typer prints ``<bool>`` beside every flag)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _untyped_flags(command.get_params(ctx))
        return command


def _untyped_flags(params: list[Any]) -> list[Any]:
    for param in params:
        if getattr(param, "is_flag", False):
            param.metavar = ""  # a flag takes no value; an empty metavar leaves the type column blank
    return params


app = typer.Typer(
    cls=_Group,
    help="Loss Advisor: which loss should this model train with, configured how, and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from advisor import __version__

        typer.echo(f"advisor-cli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Loss Advisor: which loss should this model train with, configured how, and why."""


spec_app = typer.Typer(
    cls=_Group, help="Check loss specs and export their JSON Schema.", no_args_is_help=True
)
app.add_typer(spec_app, name="spec")
rules_app = typer.Typer(
    cls=_Group, help="Validate, test and list the rules that propose candidate losses.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
operation_app = typer.Typer(
    cls=_Group, help="Follow, cancel and list long-running recommendations on a server.", no_args_is_help=True
)
app.add_typer(operation_app, name="operation")
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
        meaning = Text(_plain(prop.get("description", "")))
        table.add_row(name, _type_name(prop), default, _constraint(prop), meaning)
    return table


_RST_MARKUP = re.compile(r"(?::[a-z]+:)?``?([^`]+)``?_?")  # ``literal``, `reference`_, :role:`target`


def _plain(text: str) -> str:
    """Docstring text for a terminal: reStructuredText literals and roles shown as their bare text."""
    return _RST_MARKUP.sub(r"\1", text)


def _catalog_entries(name: str | None) -> list[dict[str, Any]]:
    """Catalog entries as ``LossInfo.as_dict()`` plus ``description``: from the stored catalog without
    importing torch, or from the registry when third-party losses are installed or the name is unknown
    (its error names the closest losses)."""
    from advisor._catalog_json import entry, read

    stored = read()
    found = [e for e in stored or () if name is None or e["name"] == name]
    if found:
        return found
    from advisor.losses import catalog, get_loss_info

    return [entry(info) for info in ([get_loss_info(name)] if name else catalog())]


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
    entries = _catalog_entries(name)
    if as_json:
        listed = [{k: v for k, v in e.items() if k != "description"} for e in entries]
        typer.echo(json.dumps(listed[0] if name else listed, indent=2))
        return
    if name:
        info = entries[0]
        console.rule(f"[bold]{info['name']}")
        paragraphs = _plain(info["description"]).split("\n\n")
        console.print(Text("\n\n".join(" ".join(part.split()) for part in paragraphs)))
        console.print(Text.assemble("\n", ("heads", "bold"), ": ", ", ".join(info["heads"])))
        for label in ("input", "target", "reference"):
            console.print(Text.assemble((f"{label}: ", "bold"), _plain(info[label])))
        console.print(_params_table(info["params_schema"]))
        return
    table = Table("loss", "heads", "summary", title=f"Loss catalog ({len(entries)} losses)")
    for info in entries:
        table.add_row(info["name"], ", ".join(info["heads"]), Text(_plain(info["summary"])))
    console.print(table)


@spec_app.command("check")
def spec_check(
    path: Annotated[str, typer.Argument(help="A JSON spec file, or - for standard input.")],
) -> None:
    """Validate a loss spec and print it with every default filled in (the form build_loss uses)."""
    from advisor.losses import normalize_spec

    text = sys.stdin.read() if path == "-" else _read_text(path)
    typer.echo(normalize_spec(text).to_json(indent=2))


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON Schema of a loss spec (one alternative per registered loss)."""
    from advisor.losses import spec_json_schema

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
    from advisor.recommendation import key_params
    from advisor.rules import candidates

    found = candidates(sys.stdin.read() if task_json == "-" else _read_text(task_json), rule_dirs=rules)
    if as_json:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in found], indent=2))
        return
    table = Table("head", "prior", "loss", "key parameters", "post-hoc", "rule", title="Candidates")
    for c in found:
        post_hoc = c.post_hoc.kind if c.post_hoc else ""
        table.add_row(
            c.head, f"{c.prior:.2f}", c.spec.loss, Text(key_params(c.spec, limit=60)), post_hoc, c.rule_id
        )
    console.print(table)


DATA_HELP = (
    "A CSV file; for segmentation an .npz file (arrays images and masks), a manifest CSV (columns image and "
    "mask), or a folder of images with --masks; for audio a folder of WAV/FLAC inputs with --target-audio, or a "
    "manifest CSV (columns input and target; --task audio if it is not detected)."
)
MasksOption = Annotated[
    Path | None,
    typer.Option(
        "--masks",
        help="Segmentation: the folder of masks (PNG/TIFF, matched to the images by file name), or the masks "
        ".npy file when DATA is the images .npy file.",
    ),
]


TargetAudioOption = Annotated[
    Path | None,
    typer.Option(
        "--target-audio",
        help="Audio: the folder of target clips (WAV/FLAC, matched to the input clips in DATA by file name).",
    ),
]
LabelSeparatorOption = Annotated[
    str | None,
    typer.Option(
        "--label-separator",
        help="The separator of a target column of label sets, e.g. '|' for cat|dog: one multilabel head "
        "(default: recognised and sniffed among | ; ,).",
    ),
]


def _data_source(data: str, masks: Path | None, target_audio: Path | None = None) -> str | tuple[str, str]:
    """What the core reads: the data path, or (images, masks) or (inputs, targets) paths."""
    if masks is not None and target_audio is not None:
        raise UsageError(FieldViolation("target_audio", "--target-audio (audio targets) and --masks "
                                        "(segmentation masks) exclude each other"))  # fmt: skip
    paired = masks if target_audio is None else target_audio
    return data if paired is None else (data, str(paired))


@app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help=DATA_HELP)],
    masks: MasksOption = None,
    target_audio: TargetAudioOption = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Target column (repeatable); inferred when obvious.")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Force the head type, e.g. ordinal.")] = None,
    label_separator: LabelSeparatorOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the TaskDescription as JSON.")] = False,
) -> None:
    """Profile a CSV file (or images and masks, or audio clips and their targets) and print the task
    description inferred from it."""
    from advisor.profiling import profile

    targets = target[0] if target and len(target) == 1 else target
    description = profile(
        _data_source(str(data), masks, target_audio),
        target=targets,
        task=task,
        label_separator=label_separator,
    )
    if as_json:
        typer.echo(description.model_dump_json(indent=2, exclude_none=True))
        return
    from advisor.display import task_table

    console.print(task_table(description, f"Task profiled from {data.name}"))
    console.print(Text(f"rows: {description.n_samples}, features: {description.n_features}"))
    for note in description.notes:
        console.print(Text(f"- {note}"))


@app.command("describe")
def describe_command(
    task_json: Annotated[str, typer.Argument(help="A task description as a JSON file, or - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the validated description as JSON.")] = False,
) -> None:
    """Validate a task description and show it as the advisor reads it (defaults filled in, facts per head)."""
    from advisor.rules import facts_for
    from advisor.task import parse_task

    description = parse_task(sys.stdin.read() if task_json == "-" else _read_text(task_json))
    if as_json:
        typer.echo(description.model_dump_json(indent=2, exclude_none=True))
        return
    from advisor.display import task_table

    console.print(task_table(description, "Task description"))
    for head in description.heads:
        facts = facts_for(description, head).model_dump(exclude_none=True)
        console.print(Text(f"facts of '{head.name}': " + ", ".join(f"{k}={v}" for k, v in facts.items())))


@app.command("doctor")
def doctor_command(
    paths: Annotated[list[Path], typer.Argument(help="Python files or folders (every *.py below them).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the number of files read, the findings and errors as JSON.")
    ] = False,
) -> None:
    """Read training scripts for loss misuse: softmax into CrossEntropyLoss, NLLLoss without log_softmax,
    BCELoss on logits, BCEWithLogitsLoss after a sigmoid, a sigmoid applied twice.

    Exit codes: 1 when something is found, 0 when clean, 2 when a file is missing or does not parse.
    """
    from advisor.doctor.static import scan_paths

    result = scan_paths(paths)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for finding in result.findings:
            typer.echo(f"{finding.where}: {finding.severity} {finding.id}: {finding.seen}")
            typer.echo(f"    fix: {finding.fix}")
        files = {finding.path for finding in result.findings}
        read = f"{len(result.files)} file{'s' * (len(result.files) != 1)} read"
        summary = (
            f"{len(result.findings)} finding{'s' * (len(result.findings) != 1)} in {len(files)} of {read}"
            if files
            else f"no findings in {read}"
        )
        typer.echo(summary)
    for error in result.errors:
        typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2 if result.errors else 1 if result.findings else 0)


@app.command("recommend")
def recommend_command(
    data: Annotated[str | None, typer.Argument(help=DATA_HELP + " Or use --task-json.")] = None,
    masks: MasksOption = None,
    target_audio: TargetAudioOption = None,
    target: Annotated[list[str] | None, typer.Option("--target", help="Target column (repeatable).")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Force the head type, e.g. ordinal.")] = None,
    label_separator: LabelSeparatorOption = None,
    task_json: Annotated[
        str | None, typer.Option("--task-json", help="A task description (JSON file) instead of data.")
    ] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="Metric to rank by (default per head type).")
    ] = None,
    budget: Annotated[
        float, typer.Option("--budget", help="Wall-clock cap of the trials in seconds (it should not bind).")
    ] = DEFAULT_BUDGET_S,
    repeats: Annotated[
        int | None,
        typer.Option("--repeats", help="Repeats per candidate, each a fresh split (default: by rows, 4-10)."),
    ] = None,
    epochs: Annotated[
        int, typer.Option("--epochs", help="Epoch budget of every trial run.")
    ] = DEFAULT_EPOCHS,
    training: Annotated[
        str | None,
        typer.Option(
            "--training",
            help="How you will train, to rank under that protocol: key=value pairs separated by commas "
            "(epochs, early_stopping_patience, lr, batch_size), e.g. epochs=100,early_stopping_patience=10.",
        ),
    ] = None,
    no_race: Annotated[
        bool, typer.Option("--no-race", help="Give every candidate every repeat (no racing).")
    ] = False,
    no_trials: Annotated[
        bool, typer.Option("--no-trials", help="Rank by the rules alone (milliseconds).")
    ] = False,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    rules: RulesOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Recommendation as JSON.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Also print the full explanation and every rationale.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write each head's winning spec and prediction-time recipe (JSON) here."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server", help="Run it on a Loss Advisor service at HOST:PORT (token from LOSS_ADVISOR_TOKEN)."
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Write a self-contained HTML report (charts, rationale, spec)."),
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="Result cache file (SQLite): an identical call is answered from it in milliseconds "
            "(default: LOSS_ADVISOR_CACHE, else the user cache folder).",
        ),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Compute afresh; read and store nothing in the result cache.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor", help="Where trials run: local (this process) or ray (each head as a Ray task)."
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address",
            help="Ray cluster to join (auto, or ray://HOST:10001; default: RAY_ADDRESS, else a local one).",
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="With --server: start a long-running operation, print its name and return (follow it with "
            "advisor-cli operation wait NAME).",
        ),
    ] = False,
) -> None:
    """Recommend configured losses for a CSV, images and masks, audio clips and their targets, or a task
    description, proven by quick trial fits."""
    if (data is None) == (task_json is None):
        raise UsageError(FieldViolation("data", "give a CSV file or --task-json, not both or neither"))
    # With --server the client reads the pairs and sends them as arrays (Dataset.npz).
    if masks is not None and data is None:
        raise UsageError(FieldViolation("masks", "--masks goes with DATA, the images (folder or .npy file), "
                                        "not with --task-json"))  # fmt: skip
    if target_audio is not None and data is None:
        raise UsageError(FieldViolation("target_audio", "--target-audio goes with DATA, the folder of input "
                                        "clips, not with --task-json"))  # fmt: skip
    if server and rules:
        raise UsageError(FieldViolation("rules", "--rules folders are local; the service uses its own rules"))
    if server and (executor != "local" or ray_address):
        raise UsageError(FieldViolation("executor", "--executor and --ray-address are local; the service "
                                        "runs trials on its own executor (serve --executor)"))  # fmt: skip
    if detach and (not server or report or out):
        raise UsageError(FieldViolation("detach", "--detach needs --server and excludes --report and --out "
                                        "(the result is read later with advisor-cli operation wait)"))  # fmt: skip
    if cache is not None and (no_cache or server):
        raise UsageError(FieldViolation("cache", "--cache PATH is local and excludes --no-cache and --server "
                                        "(the service uses its own cache; --no-cache skips it)"))  # fmt: skip
    for name, path in (("out", out), ("report", report)):  # checked before the work, not after it
        if path is not None and not path.parent.is_dir():
            raise UsageError(
                FieldViolation(name, f"no such folder: {str(path.parent)!r} (for {str(path)!r})")
            )
    source = (
        _data_source(data, masks, target_audio) if data is not None
        else sys.stdin.read() if task_json == "-" else _read_text(task_json)
    )  # fmt: skip
    stop = CancelFlag()
    targets = target[0] if target and len(target) == 1 else target
    options = {"target": targets, "task": task, "label_separator": label_separator, "metric": metric,
               "budget_s": budget, "repeats": repeats, "epochs": epochs, "training": _training_option(training),
               "race": not no_race, "trials": not no_trials, "device": device,
               "cache": False if no_cache else True if cache is None else str(cache)}  # fmt: skip
    from advisor.display import print_recommendation, progress_bar

    if detach:
        with _operations_client(server) as client:
            name = client.start_recommend(source, **_remote_options(options))
        typer.echo(json.dumps({"name": name}) if as_json else name)
        return
    with stop.on_interrupt(), progress_bar(as_json) as on_progress:
        if server:
            result = _remote_recommend(server, source, options, on_progress)
        else:
            from advisor.core import recommend

            result = recommend(source, **options, rule_dirs=rules, progress=on_progress, cancel=stop.is_set,
                               executor=executor, ray_address=ray_address)  # fmt: skip
    if out is not None:
        try:
            choices = {name: choice.model_dump(mode="json") for name, choice in result.choices().items()}
            out.write_text(json.dumps(choices, indent=2) + "\n")
        except OSError as exc:  # the result is still printed below
            typer.echo(f"error: out: cannot write {str(out)!r}: {exc.strerror}", err=True)
            out = None
    if report is not None:
        from advisor.report import write_report

        try:
            written = write_report(result, report, data=source if data is not None else None)
        except OSError as exc:
            raise UsageError(FieldViolation("report", f"cannot write {report}: {exc.strerror}")) from None
        typer.echo(f"Report written to {written}", err=as_json)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        print_recommendation(console, result, out, explain=explain)
    if stop.is_set():
        typer.echo(
            "Interrupted: trials stopped early; the ranking above uses the epochs that finished.", err=True
        )
        raise typer.Exit(130)


def _training_option(text: str | None) -> dict[str, str] | None:
    """``--training epochs=100,lr=1e-3`` as a mapping (values are validated by recommend())."""
    if text is None:
        return None
    pairs = [part.strip() for part in text.split(",") if part.strip()]
    bad = [part for part in pairs if part.count("=") != 1]
    if bad or not pairs:
        raise UsageError(FieldViolation("training", f"got {text!r}; key=value pairs separated by commas"))
    return {key.strip(): value.strip() for key, value in (part.split("=") for part in pairs)}


def _remote_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options a service call takes: those set (target and task as the client names them)."""
    remote = {k: v for k, v in options.items() if v is not None and k not in ("target", "task")}
    remote.update({k: options[k] for k in ("target", "task") if options[k] is not None})
    return remote


def _remote_recommend(
    server: str, source: str | tuple[str, str], options: dict[str, Any], on_progress: Any
) -> Any:
    """The same recommendation through the gRPC service; progress events feed the same progress bar."""
    import os
    from types import SimpleNamespace

    from advisor.client import AdvisorClient

    remote = _remote_options(options)

    def progress(event: Any) -> None:
        if on_progress is not None:
            best = event.best_so_far if event.HasField("best_so_far") else None
            update = SimpleNamespace(epoch=event.epoch, epochs=event.epochs, alive=event.alive,
                                     members=event.members, best_so_far=best)  # fmt: skip
            on_progress(SimpleNamespace(head=event.head, progress=update))

    with AdvisorClient(server, token=os.environ.get("LOSS_ADVISOR_TOKEN")) as client:
        return client.recommend_stream(source, on_progress=progress, **remote)


class CancelFlag:
    """Ctrl-C sets a flag the trainer polls, so trials stop cleanly and what finished is kept."""

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        return self._set

    @contextlib.contextmanager
    def on_interrupt(self):
        previous = signal.getsignal(signal.SIGINT)

        def interrupt(signum, frame) -> None:
            if self._set:  # a second Ctrl-C stops at once
                signal.default_int_handler(signum, frame)
            self._set = True

        signal.signal(signal.SIGINT, interrupt)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


# serve also reads each option from an environment variable. The help lists them in its epilog, one paragraph
# (typer versions disagree on line breaks there): beside each option, rich help cuts long names at 80 columns.
SERVE_ENV = {
    "host": "LOSS_ADVISOR_HOST",
    "port": "LOSS_ADVISOR_PORT",
    "workers": "LOSS_ADVISOR_WORKERS",
    "max-message-mb": "LOSS_ADVISOR_MAX_MESSAGE_MB",
    "dataset-limit-mb": "LOSS_ADVISOR_DATASET_LIMIT_MB",
    "token": "LOSS_ADVISOR_TOKEN",
    "tls-cert": "LOSS_ADVISOR_TLS_CERT",
    "tls-key": "LOSS_ADVISOR_TLS_KEY",
    "metrics-port": "LOSS_ADVISOR_METRICS_PORT",
    "grace": "LOSS_ADVISOR_GRACE_S",
    "max-connection-age": "LOSS_ADVISOR_MAX_CONNECTION_AGE_S",
    "cache": "LOSS_ADVISOR_CACHE",
    "executor": "LOSS_ADVISOR_EXECUTOR",
    "ray-address": "LOSS_ADVISOR_RAY_ADDRESS",
    "operations": "LOSS_ADVISOR_OPERATIONS",
    "operations-ttl": "LOSS_ADVISOR_OPERATIONS_TTL_S",
    "operations-queue": "LOSS_ADVISOR_OPERATIONS_QUEUE",
}
SERVE_EPILOG = "Each option also reads an environment variable (the command line wins): " + ", ".join(
    f"{variable} (--{option})" for option, variable in SERVE_ENV.items()
)


def _env_option(option: str, help: str, **kwargs: Any) -> Any:
    return typer.Option(f"--{option}", envvar=SERVE_ENV[option], show_envvar=False, help=help, **kwargs)


@app.command("serve", epilog=SERVE_EPILOG)
def serve_command(
    host: Annotated[str, _env_option("host", "Address to bind.")] = "127.0.0.1",
    port: Annotated[int, _env_option("port", "Port; 0 picks a free one.")] = 50051,
    workers: Annotated[
        int,
        _env_option(
            "workers",
            "Trial worker processes = calls with trials admitted at once; more are refused with "
            "RESOURCE_EXHAUSTED and RetryInfo.",
            min=1,
        ),
    ] = 1,
    max_message_mb: Annotated[
        float, _env_option("max-message-mb", "Largest request or response message.")
    ] = 16.0,
    dataset_limit_mb: Annotated[
        float,
        _env_option(
            "dataset-limit-mb",
            "Largest dataset (CSV or Arrow) in a request; larger ones fail with INVALID_ARGUMENT.",
        ),
    ] = 8.0,
    token: Annotated[
        str | None, _env_option("token", "Require 'authorization: Bearer TOKEN' (health checks excepted).")
    ] = None,
    tls_cert: Annotated[Path | None, _env_option("tls-cert", "PEM certificate (TLS).")] = None,
    tls_key: Annotated[Path | None, _env_option("tls-key", "PEM private key (TLS).")] = None,
    metrics_port: Annotated[
        int | None, _env_option("metrics-port", "Serve Prometheus metrics on this port.")
    ] = None,
    grace: Annotated[float, _env_option("grace", "Seconds in-flight calls get after SIGTERM.")] = 30.0,
    max_connection_age: Annotated[
        float, _env_option("max-connection-age", "Connections are recycled after this many seconds.")
    ] = 600.0,
    cache: Annotated[
        str | None,
        _env_option(
            "cache",
            "Result cache file (SQLite) the workers share; 'off' for none (default: the user cache folder).",
        ),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Serve without a result cache.")] = False,
    executor: Annotated[
        str,
        _env_option("executor", "Where the workers' calls run trials: local, or ray (heads as Ray tasks)."),
    ] = "local",
    ray_address: Annotated[
        str | None,
        _env_option("ray-address", "Ray cluster to join (auto, ray://HOST:10001; default: a local one)."),
    ] = None,
    operations: Annotated[
        str | None,
        _env_option(
            "operations",
            "Long-running operations' store file (SQLite); 'off' keeps them in memory (default: "
            "operations-PORT.sqlite3 in the user cache folder; in memory with --port 0).",
        ),
    ] = None,
    operations_ttl: Annotated[
        float, _env_option("operations-ttl", "Seconds finished long-running operations are kept.", min=0)
    ] = 86400.0,
    operations_queue: Annotated[
        int,
        _env_option(
            "operations-queue",
            "Long-running operations that may wait for a worker; more are refused with RESOURCE_EXHAUSTED.",
            min=0,
        ),
    ] = 64,
) -> None:
    """Serve the LossAdvisor gRPC API (with health, reflection and optional metrics) until SIGTERM."""
    import asyncio

    with requires_extra("server", "advisor-cli serve"):
        from advisor.service.server import ServerConfig, serve

    if (tls_cert is None) != (tls_key is None):
        raise UsageError(FieldViolation("tls_cert", "give both --tls-cert and --tls-key, or neither"))
    config = ServerConfig(host=host, port=port, workers=workers, max_message_mb=max_message_mb,
                          dataset_limit_mb=dataset_limit_mb, token=token, tls_cert=tls_cert, tls_key=tls_key,
                          metrics_port=metrics_port, grace_s=grace, max_connection_age_s=max_connection_age,
                          cache=False if no_cache else cache or True, executor=executor,
                          ray_address=ray_address, operations=operations or True,
                          operations_ttl_s=operations_ttl, operations_queue=operations_queue)  # fmt: skip

    def ready(bound: int) -> None:
        print(f"listening on {host}:{bound}", flush=True)

    asyncio.run(serve(config, ready=ready))
    typer.echo("stopped: in-flight calls finished", err=True)


ServerOption = Annotated[
    str,
    typer.Option("--server", help="The Loss Advisor service at HOST:PORT (token from LOSS_ADVISOR_TOKEN)."),
]
NameArgument = Annotated[str, typer.Argument(help="The operation's name, operations/<id>.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextlib.contextmanager
def _operations_client(server: str) -> Iterator[Any]:
    import os

    with requires_extra("server", "advisor-cli operation"):
        from advisor.client import AdvisorClient

    with AdvisorClient(server, token=os.environ.get("LOSS_ADVISOR_TOKEN")) as client:
        yield client


def _operation_json(operation: Any) -> dict[str, Any]:
    from google.protobuf import json_format

    found: dict[str, Any] = {"name": operation.name, "state": operation.state, "done": operation.done}
    if operation.progress is not None:
        found["progress"] = json_format.MessageToDict(operation.progress, preserving_proto_field_name=True)
    if operation.recommendation is not None:
        found["recommendation"] = operation.recommendation.model_dump(mode="json")
    if operation.error is not None:
        found["error"] = str(operation.error)
    return found


def _operation_line(operation: Any) -> str:
    line = f"{operation.name}: {operation.state}"
    progress = operation.progress
    if progress is not None and not operation.done:
        line += f" (head {progress.head}, epoch {progress.epoch}/{progress.epochs})"
    return line + (f": {operation.error}" if operation.error is not None else "")


def _print_operation(operation: Any, as_json: bool) -> None:
    """One line of state, then the recommendation once there is one; exit 1 when the operation failed."""
    if as_json:
        typer.echo(json.dumps(_operation_json(operation), indent=2))
    else:
        typer.echo(_operation_line(operation))
        if operation.recommendation is not None:
            from advisor.display import print_recommendation

            print_recommendation(console, operation.recommendation, None, explain=False)
    if operation.error is not None and operation.state != "cancelled":
        raise typer.Exit(1)


@operation_app.command("get")
def operation_get(name: NameArgument, server: ServerOption, as_json: JsonOption = False) -> None:
    """Where an operation stands; its recommendation once it is done."""
    with _operations_client(server) as client:
        _print_operation(client.get_operation(name), as_json)


@operation_app.command("wait")
def operation_wait(
    name: NameArgument,
    server: ServerOption,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Seconds to wait at most (default: until done).", min=0)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until an operation is done (or the timeout passes), then print it as get does."""
    with _operations_client(server) as client:
        _print_operation(client.wait_operation(name, timeout), as_json)


@operation_app.command("cancel")
def operation_cancel(name: NameArgument, server: ServerOption) -> None:
    """Stop an operation: a queued one ends cancelled, a running one keeps what its trials found."""
    with _operations_client(server) as client:
        client.cancel_operation(name)
    typer.echo(f"{name}: cancel requested")


@operation_app.command("delete")
def operation_delete(name: NameArgument, server: ServerOption) -> None:
    """Forget a finished operation."""
    with _operations_client(server) as client:
        client.delete_operation(name)
    typer.echo(f"{name}: deleted")


@operation_app.command("list")
def operation_list(
    server: ServerOption,
    done: Annotated[
        bool | None, typer.Option("--done/--running", help="Only finished ones, or only unfinished ones.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 100,
    as_json: JsonOption = False,
) -> None:
    """The operations the server keeps, oldest first."""
    with _operations_client(server) as client:
        found = client.list_operations(done=done, limit=limit)
    if as_json:
        typer.echo(json.dumps([_operation_json(o) for o in found], indent=2))
    else:
        for operation in found:
            typer.echo(_operation_line(operation))
        typer.echo(f"{len(found)} operation{'s' * (len(found) != 1)}")


class UsageError(AdvisorError):
    """Arguments that do not fit together."""


class RuleCheckFailed(AdvisorError):
    """Rule examples that fail; printed one per line."""


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(FieldViolation("path", f"cannot read {path!r}: {exc.strerror}")) from None
    except UnicodeDecodeError as exc:
        raise SpecError(
            FieldViolation("path", f"{path!r} is not UTF-8 text (byte {exc.start}): expected a JSON file")
        ) from None


def _is_report(exc: AdvisorError) -> bool:
    """Rule load and check failures, printed one line per problem (the loader is imported if one was raised)."""
    loader = sys.modules.get("advisor.rules.loader")
    return isinstance(exc, RuleCheckFailed) or (loader is not None and isinstance(exc, loader.RuleLoadError))


def main() -> None:
    """Console-script entry point: input errors and missing extras become one line on stderr and exit code 2."""
    try:
        app()
    except AdvisorError as exc:
        if _is_report(exc):
            typer.echo("\n".join(str(v) for v in exc.violations), err=True)
        else:
            typer.echo(f"error: {exc}", err=True)
        code = getattr(exc, "code", None)  # a service error other than bad input is not the user's mistake
        sys.exit(1 if code is not None and code.name != "INVALID_ARGUMENT" else 2)
    except ModuleNotFoundError as exc:  # an optional dependency: name the extra that brings it
        extra = exc.extra if isinstance(exc, MissingExtraError) else extra_of(exc.name)
        if extra is None:
            raise
        missing = exc if isinstance(exc, MissingExtraError) else MissingExtraError("this command", extra)
        typer.echo(f"error: {missing} (no module named {exc.name!r})", err=True)
        sys.exit(2)
    except WorkerLostError as exc:  # not the user's input: exit 1, as for a service error
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside trials
        typer.echo("Interrupted.", err=True)
        sys.exit(130)
