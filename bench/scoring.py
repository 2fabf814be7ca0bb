"""What the quality benches share: a pool entry, the normalised regret of a pick, the table they print, and
their ground-truth cache files."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advisor import LossSpec


@dataclass
class Entry:
    """A pool entry: a loss spec under the rule ids (or labels) that propose it."""

    labels: list[str]
    spec: LossSpec

    @property
    def key(self) -> str:
        return self.spec.to_json()


def regret(means: np.ndarray, pick: int | None) -> float:
    """(best - pick) / (best - worst) over the entries' means (higher is better); 1 for a missing or unusable
    pick (None, negative, or an entry without a finite mean)."""
    best, worst = np.nanmax(means), np.nanmin(means)
    if pick is None or pick < 0 or not np.isfinite(means[pick]):
        return 1.0
    return 0.0 if best == worst else float((best - means[pick]) / (best - worst))


def render(rows: list[dict[str, str]], markdown: bool = True) -> str:
    """Rows as a Markdown table, or as aligned plain text."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        return "\n".join(lines + ["| " + " | ".join(r.get(c, "") for c in columns) + " |" for r in rows])
    widths = {c: max(len(c), *(len(r.get(c, "")) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(r.get(c, "").ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def read_truth(folder: Path, name: str) -> dict[str, dict[str, Any]]:
    """A dataset's cached ground-truth records (``folder/name.json``), or none."""
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_truth(folder: Path, name: str, records: dict[str, dict[str, Any]]) -> None:
    """One record per line, keys sorted: small files with readable diffs; replaced atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{json.dumps(k)}: {json.dumps(records[k], separators=(',', ':'))}" for k in sorted(records)]
    temporary = folder / f"{name}.tmp"
    temporary.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    os.replace(temporary, folder / f"{name}.json")
