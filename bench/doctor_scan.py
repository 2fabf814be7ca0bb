"""Run the loss doctor's static check over real training scripts and print the counts.

    python -m bench.doctor_scan FOLDER [FOLDER ...] [--json]
    python -m bench.doctor_scan --git GIT_DIR [GIT_DIR ...]   # the *.py and *.ipynb files of each HEAD

Reads every ``*.py`` (hidden folders skipped) and every ``*.ipynb``: a notebook's code cells that parse on
their own, joined in order, with IPython magics and shell lines commented out; a finding names the cell and the
line inside it. ``--git`` reads the files of each repository's HEAD commit straight from its git directory
(blobs a snapshot lacks are skipped). Prints the files read, those that name a loss the static check knows,
those that do not parse (Python 2, templates), the torch loss calls recognised and what their input is known
to be, the findings by id, and every finding with its location, to be judged by reading it.
"""

from __future__ import annotations

import argparse
import ast
import collections
import io
import json
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from advisor.doctor.findings import Finding
from advisor.doctor.static import LossCall, scan_with_calls

_LOSS_NAME = re.compile(
    r"CrossEntropyLoss|cross_entropy|NLLLoss|nll_loss|BCELoss|BCEWithLogitsLoss|binary_cross_entropy"
)
_SUFFIXES = (".py", ".ipynb")
_LOSS_LABELS = {"ce": "cross_entropy", "nll": "nll_loss", "bce": "BCELoss", "bce_logits": "BCEWithLogitsLoss"}


def _decode(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding)


def _notebook_cells(data: bytes) -> tuple[list[tuple[int, str]], int]:
    """(cell number, source) of the code cells that parse, and how many did not (exercise blanks, magics)."""
    cells = json.loads(data.decode("utf-8")).get("cells", [])
    parsed, dropped = [], 0
    for number, cell in enumerate(cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        text = cell.get("source", "")
        text = "".join(text) if isinstance(text, list) else str(text)
        lines = [
            f"# {line}" if line.lstrip().startswith(("%", "!", "?")) else line for line in text.splitlines()
        ]
        source = "\n".join(lines) + "\n"
        try:
            ast.parse(source)
        except SyntaxError:
            dropped += 1
            continue
        parsed.append((number, source))
    return parsed, dropped


def _scan_notebook(label: str, data: bytes) -> tuple[str, list[Finding], list[LossCall], int]:
    """Scan the parsing code cells as one script (cells run top to bottom); findings name their cell."""
    cells, dropped = _notebook_cells(data)
    source, starts = "", []
    for number, cell in cells:
        starts.append((source.count("\n") + 1, number))
        source += cell

    def locate(line: int) -> tuple[int, int]:
        start, number = max(s for s in starts if s[0] <= line)
        return number, line - start + 1

    def relabel(match: re.Match[str]) -> str:
        number, line = locate(int(match.group(1)))
        return f"cell {number} line {line}"

    found, calls = scan_with_calls(source, label)
    located = []
    for finding in found:
        number, line = locate(finding.line or 1)
        seen = re.sub(r"\bline (\d+)\b", relabel, finding.seen)
        located.append(replace(finding, path=f"{label}[cell {number}]", line=line, seen=seen))
    return source, located, calls, dropped


def _folder_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.suffix in _SUFFIXES and path.is_file() and not hidden:
            yield str(path), path.read_bytes()


def _git_files(git_dir: Path) -> Iterator[tuple[str, bytes]]:
    """The *.py and *.ipynb blobs of HEAD, labelled 'repo@commit:path' (blobs the snapshot lacks skipped)."""
    git = ["git", "-C", str(git_dir)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    )
    root = git_dir.resolve()
    while root.name in ("repo", ".git"):  # a snapshot at .../owner+name/repo: name it by its folder
        root = root.parent
    name = root.name
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", "HEAD"], capture_output=True, check=True).stdout
    wanted = []
    for entry in listing.split(b"\0"):
        if entry:
            meta, path = entry.split(b"\t", 1)
            mode, kind, sha = meta.split()
            text = path.decode("utf-8", "surrogateescape")
            if kind == b"blob" and mode != b"120000" and text.endswith(_SUFFIXES):  # 120000: a symlink
                wanted.append((text, sha))
    with subprocess.Popen(
        [*git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as batch:
        assert batch.stdin is not None and batch.stdout is not None
        for text, sha in wanted:
            batch.stdin.write(sha + b"\n")
            batch.stdin.flush()
            header = batch.stdout.readline().split()
            if len(header) != 3:  # '<sha> missing': not in this snapshot
                continue
            data = batch.stdout.read(int(header[2]))
            batch.stdout.read(1)
            yield f"{name}@{commit.stdout.strip()}:{text}", data
        batch.stdin.close()


def scan(sources: Iterator[tuple[str, bytes]]) -> dict[str, Any]:
    files: list[str] = []
    with_losses = 0
    unreadable: list[str] = []
    findings: list[Finding] = []
    dropped_cells = 0
    calls: collections.Counter[str] = collections.Counter()  # loss calls by loss and what their input is
    for label, data in sources:
        try:
            if label.endswith(".ipynb"):
                source, found, seen_calls, dropped = _scan_notebook(label, data)
                dropped_cells += dropped
            else:
                source = _decode(data)
                found, seen_calls = scan_with_calls(source, label)
        except (SyntaxError, ValueError, UnicodeDecodeError, RecursionError, KeyError, TypeError) as exc:
            unreadable.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        files.append(label)
        calls.update(f"{_LOSS_LABELS[loss]} <- {kind or 'unknown'}" for _, _, loss, kind in seen_calls)
        with_losses += bool(_LOSS_NAME.search(source))
        findings += found
    return {
        "files_read": len(files),
        "python_files": sum(not f.endswith(".ipynb") for f in files),
        "notebooks": sum(f.endswith(".ipynb") for f in files),
        "files_naming_a_checked_loss": with_losses,
        "unreadable": unreadable,
        "notebook_cells_not_parsed": dropped_cells,
        "loss_calls": sum(calls.values()),
        "loss_calls_by_input": dict(sorted(calls.items())),
        "findings_by_id": dict(collections.Counter(f.id for f in findings)),
        "files_with_findings": len({f.path.split("[cell")[0] for f in findings if f.path}),
        "findings": [f.to_dict() for f in findings],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="folders (or git directories with --git)")
    parser.add_argument(
        "--git", action="store_true", help="read each path's HEAD commit from its git directory"
    )
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    args = parser.parse_args(argv)
    read = _git_files if args.git else _folder_files
    result = scan(source for path in args.paths for source in read(path))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"files read: {result['files_read']} ({result['python_files']} .py, {result['notebooks']} notebooks)"
    )
    print(f"files naming a loss the static check knows: {result['files_naming_a_checked_loss']}")
    print(f"unreadable (not Python 3): {len(result['unreadable'])}")
    print(f"notebook code cells left out (do not parse alone): {result['notebook_cells_not_parsed']}")
    print(f"torch loss calls recognised: {result['loss_calls']}, by loss <- what the input is known to be:")
    for pair, count in result["loss_calls_by_input"].items():
        print(f"  {pair}: {count}")
    print(f"findings: {len(result['findings'])} in {result['files_with_findings']} files")
    for finding_id, count in sorted(result["findings_by_id"].items()):
        print(f"  {finding_id}: {count}")
    for finding in result["findings"]:
        print(
            f"- {finding['path']}:{finding['line']}:{finding['column']}: {finding['id']}: {finding['seen']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
