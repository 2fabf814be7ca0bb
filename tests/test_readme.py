"""Every code block of the README runs as written.

Each ```python block runs on its own in a fresh interpreter. In ```bash blocks, every command line runs
(``advisor-cli ...`` and ``python ...``) and must exit 0, except the lines this test cannot run as a child: the
set-up commands themselves (``make``, ``pip``, ``npm``: CI runs them), ``advisor-cli serve`` (a server that runs
until stopped; tests/test_service.py covers it), commands that talk to such a server (``--server``) and the Node
client. Any other kind of
line fails the test, so an unrunnable new block cannot slip in. Commands run in a scratch folder that links
``client_examples/``, so the files they write stay out of the checkout.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SKIPPED = ("make ", "pip ", "npm ", "node ", "advisor-cli serve", "buf ", "grpcurl ")


def _blocks(language: str) -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    return [
        (text[: m.start()].count("\n") + 1, m.group(2))
        for m in BLOCK.finditer(text)
        if m.group(1) == language
    ]


def _commands() -> list[tuple[int, str]]:
    found = []
    for line_number, block in _blocks("bash"):
        for offset, line in enumerate(block.splitlines()):
            command = line.split("  #")[0].split(" # ")[0].strip()
            if command and not command.startswith(("#", *SKIPPED)) and " --server " not in command:
                found.append((line_number + 1 + offset, command))
    return found


def _scratch(tmp_path: Path) -> Path:
    (tmp_path / "client_examples").symlink_to(ROOT / "client_examples")
    return tmp_path


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}


@pytest.mark.parametrize(
    ("line", "code"), _blocks("python"), ids=lambda v: f"line{v}" if isinstance(v, int) else ""
)
def test_python_block_runs(line, code, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=_scratch(tmp_path), env=_env(), capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"README.md line {line}:\n{done.stderr[-3000:]}"


@pytest.mark.parametrize(
    ("line", "command"), _commands(), ids=lambda v: f"line{v}" if isinstance(v, int) else ""
)
def test_bash_command_runs(line, command, tmp_path):
    words = shlex.split(command)
    if words[0] == "advisor-cli":
        argv = [sys.executable, "-m", "advisor", *words[1:]]
    elif words[0] == "python":
        argv = [sys.executable, *words[1:]]
    else:
        pytest.fail(f"README.md line {line}: {command!r} is neither advisor-cli nor python; make it runnable")
    done = subprocess.run(
        argv, cwd=_scratch(tmp_path), env=_env(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"README.md line {line}: {command}\n{done.stderr[-3000:]}"


def test_the_readme_has_blocks_of_both_kinds():
    assert len(_blocks("python")) >= 4 and len(_commands()) >= 15
