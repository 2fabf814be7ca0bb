"""What the quality benches share: the normalised regret of a pick and the table they print."""

from __future__ import annotations

import numpy as np


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
