"""Every finding the loss doctor can report, declared in one place, each with the examples that prove it.

A :class:`FindingDoc` carries the finding's id, severity, title, why it matters, the fix, and examples: a
snippet that triggers it and one that does not. ``runtime`` examples are Python that defines ``loss``,
``outputs`` and ``targets`` (run with ``torch``, ``nn`` = ``torch.nn``, ``F`` = ``torch.nn.functional`` and
``advisor`` imported) for :func:`advisor.doctor.check`; ``static`` examples are training-script source for
:func:`advisor.doctor.static.scan_source`. tests/test_doctor.py runs every example, as ``advisor-cli rules
check`` runs the rules' examples, and ``FINDINGS.md`` beside this file is generated from here
(``python -m advisor.doctor.findings > advisor/doctor/FINDINGS.md``; a test fails when it is stale).

This module imports no torch, so the static check and the CLI stay light.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
ExampleKind = Literal["runtime", "static"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One problem the doctor saw: what, with the numbers (``seen``), why it matters and the fix.

    Runtime findings name the loss they checked (``loss``; ``head`` for a multi_task head); static findings
    name the file, line and column (1-based) of the loss call.
    """

    id: str
    severity: Severity
    title: str
    seen: str
    why: str
    fix: str
    loss: str | None = None
    head: str | None = None
    path: str | None = None
    line: int | None = None
    column: int | None = None

    @property
    def where(self) -> str:
        """'train.py:12:9' for a static finding, the loss (and head) for a runtime one."""
        if self.path is not None:
            return f"{self.path}:{self.line}:{self.column}"
        return " ".join(part for part in (self.loss, f"head '{self.head}'" if self.head else None) if part)

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.severity} {self.id}: {self.seen} Fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Example:
    """A snippet that triggers the finding and one that does not (``kind`` says which check runs them)."""

    kind: ExampleKind
    triggers: str
    clean: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "triggers", textwrap.dedent(self.triggers).strip() + "\n")
        object.__setattr__(self, "clean", textwrap.dedent(self.clean).strip() + "\n")


@dataclass(frozen=True)
class FindingDoc:
    """The declaration of one finding: what it is, why it matters, the fix, and its examples."""

    id: str
    severity: Severity
    title: str
    why: str
    fix: str
    examples: tuple[Example, ...] = field(default_factory=tuple)

    def finding(self, seen: str, **where: Any) -> Finding:
        """A report of this finding with what was seen (``where``: loss, head or path/line/column)."""
        return Finding(self.id, self.severity, self.title, seen, self.why, self.fix, **where)

    @property
    def kinds(self) -> tuple[ExampleKind, ...]:
        return tuple(dict.fromkeys(example.kind for example in self.examples))


_DOCS: tuple[FindingDoc, ...] = (
    FindingDoc(
        "softmax-into-cross-entropy",
        "error",
        "Softmax outputs fed to a loss that applies log-softmax itself",
        "CrossEntropyLoss (and every catalog loss that reads softmax logits: focal, dice_ce, ...) applies "
        "log_softmax to its input. Probabilities in [0, 1] read as logits give a nearly uniform softmax: the "
        "predicted probability of a class can never exceed e / (e + C - 1) (0.23 for 10 classes), so the loss "
        "cannot fall much, gradients are small and training stalls or crawls.",
        "Pass the logits (the output before the softmax) and apply softmax only to read predictions. A model "
        "that must return probabilities can return log_softmax instead and train with NLLLoss.",
        (
            Example(
                "runtime",
                """
                loss = nn.CrossEntropyLoss()
                outputs = torch.randn(8, 4).softmax(dim=1)
                targets = torch.randint(0, 4, (8,))
                """,
                """
                loss = nn.CrossEntropyLoss()
                outputs = torch.randn(8, 4)
                targets = torch.randint(0, 4, (8,))
                """,
            ),
            Example(
                "runtime",
                """
                loss = {"loss": "dice_ce"}  # a spec: the doctor builds it and reads its declared format
                outputs = torch.randn(2, 3, 8, 8).softmax(dim=1)
                targets = torch.randint(0, 3, (2, 8, 8))
                """,
                """
                loss = {"loss": "dice_ce"}
                outputs = torch.randn(2, 3, 8, 8)
                targets = torch.randint(0, 3, (2, 8, 8))
                """,
            ),
            Example(
                "static",
                """
                import torch.nn.functional as F


                def training_step(model, x, y):
                    return F.cross_entropy(model(x).softmax(-1), y)
                """,
                """
                import torch.nn.functional as F


                def training_step(model, x, y):
                    return F.cross_entropy(model(x), y)
                """,
            ),
            Example(
                "static",
                """
                import torch
                from torch import nn

                criterion = nn.CrossEntropyLoss()


                def train(model, loader):
                    for x, y in loader:
                        probs = torch.softmax(model(x), dim=1)
                        loss = criterion(probs, y)
                        loss.backward()
                """,
                """
                import torch
                from torch import nn

                criterion = nn.CrossEntropyLoss()


                def train(model, loader):
                    for x, y in loader:
                        logits = model(x)
                        probs = torch.softmax(logits, dim=1)  # for metrics only
                        loss = criterion(logits, y)
                        loss.backward()
                """,
            ),
        ),
    ),
    FindingDoc(
        "nll-without-log-softmax",
        "error",
        "A log-probability loss (NLLLoss) fed logits or probabilities",
        "NLLLoss returns -input[target] and applies nothing: it is only a likelihood when the input holds "
        "log-probabilities. On raw logits it is unbounded below (it falls by pushing the target logit up, "
        "not by normalising over classes); on probabilities it is -p_y, which barely punishes a wrong answer.",
        "Apply log_softmax(dim=1) to the logits before NLLLoss, or pass the logits to CrossEntropyLoss (which "
        "is log_softmax followed by NLLLoss).",
        (
            Example(
                "runtime",
                """
                loss = nn.NLLLoss()
                outputs = torch.randn(8, 5) * 3
                targets = torch.randint(0, 5, (8,))
                """,
                """
                loss = nn.NLLLoss()
                outputs = (torch.randn(8, 5) * 3).log_softmax(dim=1)
                targets = torch.randint(0, 5, (8,))
                """,
            ),
            Example(
                "runtime",
                """
                loss = F.nll_loss  # functional forms work too
                outputs = torch.randn(8, 5).softmax(dim=1)
                targets = torch.randint(0, 5, (8,))
                """,
                """
                loss = F.nll_loss
                outputs = torch.randn(8, 5).log_softmax(dim=1)
                targets = torch.randint(0, 5, (8,))
                """,
            ),
            Example(
                "static",
                """
                from torch import nn


                class Net(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.fc = nn.Linear(784, 10)

                    def forward(self, x):
                        return self.fc(x.flatten(1))


                model = Net()
                criterion = nn.NLLLoss()


                def train_step(x, y):
                    return criterion(model(x), y)
                """,
                """
                import torch
                from torch import nn


                class Net(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.fc = nn.Linear(784, 10)

                    def forward(self, x):
                        return torch.log_softmax(self.fc(x.flatten(1)), dim=1)


                model = Net()
                criterion = nn.NLLLoss()


                def train_step(x, y):
                    return criterion(model(x), y)
                """,
            ),
        ),
    ),
    FindingDoc(
        "logits-into-bce",
        "error",
        "Logits fed to a loss that reads probabilities (BCELoss)",
        "BCELoss takes log(input) and log(1 - input): it reads probabilities. torch raises on values outside "
        "[0, 1]; a clamp that hides them trains on the wrong scale. A separate sigmoid followed by BCELoss is "
        "also less stable in float16 than BCEWithLogitsLoss, which fuses the two.",
        "Pass the logits to BCEWithLogitsLoss (catalog 'bce'), which applies the sigmoid stably; apply "
        "torch.sigmoid only to read predictions.",
        (
            Example(
                "runtime",
                """
                loss = nn.BCELoss()
                outputs = torch.randn(32) * 3
                targets = torch.randint(0, 2, (32,)).float()
                """,
                """
                loss = nn.BCELoss()
                outputs = torch.sigmoid(torch.randn(32) * 3)
                targets = torch.randint(0, 2, (32,)).float()
                """,
            ),
            Example(
                "static",
                """
                from torch import nn

                model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1))
                criterion = nn.BCELoss()


                def fit(loader):
                    for x, y in loader:
                        loss = criterion(model(x).squeeze(1), y)
                        loss.backward()
                """,
                """
                from torch import nn

                model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid())
                criterion = nn.BCELoss()


                def fit(loader):
                    for x, y in loader:
                        loss = criterion(model(x).squeeze(1), y)
                        loss.backward()
                """,
            ),
        ),
    ),
    FindingDoc(
        "probabilities-into-bce-with-logits",
        "error",
        "Probabilities fed to a loss that applies the sigmoid itself (BCEWithLogitsLoss)",
        "BCEWithLogitsLoss (catalog 'bce', 'binary_focal', 'asl') applies a sigmoid to its input. Probabilities "
        "in [0, 1] become sigmoid(p) in [0.5, 0.73]: the model can never predict a negative, the loss of a "
        "negative never falls below log 2 = 0.69, and every gradient passes through an extra sigmoid "
        "derivative (at most 0.25).",
        "Pass the logits (drop the sigmoid before the loss), or keep the probabilities and use BCELoss.",
        (
            Example(
                "runtime",
                """
                loss = nn.BCEWithLogitsLoss()
                outputs = torch.sigmoid(torch.randn(32, 4) * 3)
                targets = torch.randint(0, 2, (32, 4)).float()
                """,
                """
                loss = nn.BCEWithLogitsLoss()
                outputs = torch.randn(32, 4) * 3
                targets = torch.randint(0, 2, (32, 4)).float()
                """,
            ),
            Example(
                "runtime",
                """
                # a recommendation's choice hands its spec over: LossChoice, RankedCandidate, LossSpec or dict
                loss = advisor.LossChoice(spec=advisor.LossSpec(loss="binary_focal"))
                outputs = torch.sigmoid(torch.randn(64))
                targets = torch.randint(0, 2, (64,)).float()
                """,
                """
                loss = advisor.LossChoice(spec=advisor.LossSpec(loss="binary_focal"))
                outputs = torch.randn(64)
                targets = torch.randint(0, 2, (64,)).float()
                """,
            ),
            Example(
                "static",
                """
                import torch
                import torch.nn.functional as F


                def step(model, x, y):
                    p = torch.sigmoid(model(x))
                    return F.binary_cross_entropy_with_logits(p, y)
                """,
                """
                import torch
                import torch.nn.functional as F


                def step(model, x, y):
                    logits = model(x)
                    p = torch.sigmoid(logits)  # for the accuracy only
                    accuracy = ((p > 0.5) == y).float().mean()
                    return F.binary_cross_entropy_with_logits(logits, y), accuracy
                """,
            ),
        ),
    ),
    FindingDoc(
        "sigmoid-applied-twice",
        "warning",
        "A sigmoid applied twice (outputs squeezed into [0.5, 0.73])",
        "sigmoid(sigmoid(x)) lies in (0.5, 0.731): every prediction says 'positive', negatives can never be "
        "predicted, and each extra sigmoid scales gradients down by 4x or more. The usual cause is a model "
        "that ends in nn.Sigmoid and a training step that applies torch.sigmoid again (or a loss that does).",
        "Apply the sigmoid once: not at all before BCEWithLogitsLoss (it applies it), once before BCELoss. "
        "Check the model's forward for a final nn.Sigmoid.",
        (
            Example(
                "runtime",
                """
                loss = nn.BCELoss()
                outputs = torch.sigmoid(torch.sigmoid(torch.randn(32) * 3))
                targets = torch.randint(0, 2, (32,)).float()
                """,
                """
                loss = nn.BCELoss()
                outputs = torch.sigmoid(torch.randn(32) * 3)
                targets = torch.randint(0, 2, (32,)).float()
                """,
            ),
            Example(
                "static",
                """
                import torch
                from torch import nn


                class Head(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.out = nn.Sequential(nn.Linear(16, 1), nn.Sigmoid())

                    def forward(self, x):
                        return self.out(x)


                head = Head()
                bce = nn.BCELoss()


                def step(x, y):
                    return bce(torch.sigmoid(head(x)), y)
                """,
                """
                import torch
                from torch import nn


                class Head(nn.Module):
                    def __init__(self):
                        super().__init__()
                        self.out = nn.Sequential(nn.Linear(16, 1), nn.Sigmoid())

                    def forward(self, x):
                        return self.out(x)


                head = Head()
                bce = nn.BCELoss()


                def step(x, y):
                    return bce(head(x), y)
                """,
            ),
        ),
    ),
    FindingDoc(
        "targets-not-class-indices",
        "error",
        "One-hot or float targets where class indices are meant",
        "This loss reads class indices: int64, shaped like the input without dim 1. One-hot targets have the "
        "wrong shape and float targets the wrong type; the loss raises, and a quick .long() on a one-hot matrix "
        "silently turns it into indices 0 and 1.",
        "One-hot targets: targets.argmax(dim=1). Float indices: targets.long(). Soft targets (probabilities "
        "per class): use a loss that reads them (nn.CrossEntropyLoss accepts probabilities shaped like the "
        "input; catalog 'kl_div').",
        (
            Example(
                "runtime",
                """
                loss = {"loss": "focal", "params": {"gamma": 2.0}}
                outputs = torch.randn(8, 3)
                targets = F.one_hot(torch.randint(0, 3, (8,)), 3).float()
                """,
                """
                loss = {"loss": "focal", "params": {"gamma": 2.0}}
                outputs = torch.randn(8, 3)
                targets = torch.randint(0, 3, (8,))
                """,
            ),
            Example(
                "runtime",
                """
                loss = nn.NLLLoss()
                outputs = torch.randn(4, 3).log_softmax(dim=1)
                targets = torch.tensor([0.0, 2.0, 1.0, 1.0])
                """,
                """
                loss = nn.NLLLoss()
                outputs = torch.randn(4, 3).log_softmax(dim=1)
                targets = torch.tensor([0, 2, 1, 1])
                """,
            ),
        ),
    ),
    FindingDoc(
        "class-index-out-of-range",
        "error",
        "Class indices outside [0, C - 1]",
        "Class indices must lie in [0, C - 1], C being the size of the input's dim 1. torch raises 'Target is "
        "out of bounds' on the CPU and a device-side assert on CUDA (which ends the process); a negative "
        "label other than ignore_index is an error too. Labels encoded 1..C are the usual cause.",
        "Encode labels as 0..C-1 (subtract 1 from 1-based labels, or use sklearn's LabelEncoder), give the "
        "model one output per class, and mark entries to skip with the loss's ignore_index.",
        (
            Example(
                "runtime",
                """
                loss = nn.CrossEntropyLoss()
                outputs = torch.randn(6, 3)
                targets = torch.tensor([1, 2, 3, 1, 2, 3])  # labels 1..3
                """,
                """
                loss = nn.CrossEntropyLoss()
                outputs = torch.randn(6, 3)
                targets = torch.tensor([0, 1, 2, 0, 1, 2])
                """,
            ),
            Example(
                "runtime",
                """
                loss = nn.CrossEntropyLoss(ignore_index=255)
                outputs = torch.randn(2, 4, 6, 6)
                targets = torch.randint(0, 4, (2, 6, 6))
                targets[0, 0, 0] = 254
                """,
                """
                loss = nn.CrossEntropyLoss(ignore_index=255)
                outputs = torch.randn(2, 4, 6, 6)
                targets = torch.randint(0, 4, (2, 6, 6))
                targets[0, 0, 0] = 255
                """,
            ),
        ),
    ),
    FindingDoc(
        "label-smoothing-twice",
        "warning",
        "Label smoothing on targets that are already smoothed",
        "Label smoothing mixes the targets with a uniform distribution. Targets that are already smoothed get "
        "mixed again: the effective smoothing is e1 + e2 - e1 e2, so the model is pushed to be less "
        "confident than either setting intends, which costs calibration and accuracy.",
        "Smooth in one place: pass hard targets (class indices or one-hot rows) with label_smoothing, or the "
        "smoothed targets with label_smoothing=0.",
        (
            Example(
                "runtime",
                """
                loss = nn.CrossEntropyLoss(label_smoothing=0.1)
                hard = F.one_hot(torch.randint(0, 5, (16,)), 5).float()
                targets = hard * 0.9 + 0.1 / 5  # smoothed already
                outputs = torch.randn(16, 5)
                """,
                """
                loss = nn.CrossEntropyLoss(label_smoothing=0.1)
                targets = F.one_hot(torch.randint(0, 5, (16,)), 5).float()
                outputs = torch.randn(16, 5)
                """,
            ),
        ),
    ),
    FindingDoc(
        "class-weight-order",
        "warning",
        "Class weights whose order does not match the label encoding",
        "Per-class weights (weight, alpha) and counts (samples_per_class) are positional: entry i belongs to "
        "the class encoded as i. Weights computed for one label order and used with another put the large "
        "weight on a frequent class, which deepens the imbalance they were meant to correct. One batch's "
        "counts are noisy and a weight may favour a frequent class on purpose: read the numbers.",
        "Compute weights and counts from targets in the same encoding, e.g. torch.bincount(train_targets, "
        "minlength=C), and check the label encoder's class order. Ignore this if the weights favour that "
        "class on purpose.",
        (
            Example(
                "runtime",
                """
                loss = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0]))  # meant: class 0 is rare
                outputs = torch.randn(100, 2)
                targets = torch.cat([torch.zeros(10), torch.ones(90)]).long()  # but class 1 is frequent
                """,
                """
                loss = nn.CrossEntropyLoss(weight=torch.tensor([5.0, 1.0]))
                outputs = torch.randn(100, 2)
                targets = torch.cat([torch.zeros(10), torch.ones(90)]).long()
                """,
            ),
            Example(
                "runtime",
                """
                loss = {"loss": "class_balanced", "params": {"samples_per_class": [900, 100, 50]}}
                outputs = torch.randn(60, 3)
                targets = torch.cat([torch.zeros(3), torch.ones(7), torch.full((50,), 2)]).long()
                """,
                """
                loss = {"loss": "class_balanced", "params": {"samples_per_class": [50, 100, 900]}}
                outputs = torch.randn(60, 3)
                targets = torch.cat([torch.zeros(3), torch.ones(7), torch.full((50,), 2)]).long()
                """,
            ),
        ),
    ),
    FindingDoc(
        "variance-head-unscaled-target",
        "warning",
        "A variance head (gaussian_nll, beta_nll) trained on an unscaled target",
        "A mean / log-variance head starts near log-variance 0, i.e. variance 1 in the target's units. With a "
        "target std far from 1 the first steps are dominated by (y - mean)^2 / variance: huge gradients for a "
        "std >> 1 (the log-variance must travel far while the mean's updates blow up), a log-variance that "
        "dives toward its floor for a std << 1. Both make training unstable or slow.",
        "Standardise the target with the training set's mean and std: train on (y - m) / s, then map "
        "predictions back (mean * s + m, variance * s^2).",
        (
            Example(
                "runtime",
                """
                loss = {"loss": "gaussian_nll"}
                outputs = torch.randn(64, 2)  # mean, log-variance
                targets = 5000.0 + 2000.0 * torch.randn(64)  # e.g. prices in dollars
                """,
                """
                loss = {"loss": "gaussian_nll"}
                outputs = torch.randn(64, 2)
                targets = torch.randn(64)  # standardised
                """,
            ),
        ),
    ),
    FindingDoc(
        "reduction-sum",
        "info",
        "reduction='sum': the learning rate was probably tuned for the mean",
        "With reduction='sum' the loss and its gradients grow with the number of summed elements (batch size, "
        "pixels, tokens). A learning rate tuned with the mean, as most published settings and the advisor's "
        "trials are, is that many times too large, and changing the batch size changes the step.",
        "Use reduction='mean', or divide the learning rate by the number of summed elements. Keep 'sum' if "
        "the learning rate was tuned for it or you normalise elsewhere.",
        (
            Example(
                "runtime",
                """
                loss = nn.MSELoss(reduction="sum")
                outputs = torch.randn(128)
                targets = torch.randn(128)
                """,
                """
                loss = nn.MSELoss()
                outputs = torch.randn(128)
                targets = torch.randn(128)
                """,
            ),
        ),
    ),
)

FINDINGS: dict[str, FindingDoc] = {doc.id: doc for doc in _DOCS}


def markdown() -> str:
    """The findings and their examples as Markdown (the text of FINDINGS.md)."""
    lines = [
        "# Loss doctor findings",
        "",
        "Generated from `advisor/doctor/findings.py` by `python -m advisor.doctor.findings`; do not edit.",
        "Runtime examples define `loss`, `outputs` and `targets` for `advisor.doctor.check(loss, outputs,",
        "targets)` (with `torch`, `nn`, `F` and `advisor` imported); static examples are script source for",
        "`advisor-cli doctor`. tests/test_doctor.py runs every one.",
        "",
        "| id | severity | checked | title |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{d.id}` | {d.severity} | {', '.join(d.kinds)} | {d.title} |" for d in _DOCS]
    for doc in _DOCS:
        lines += ["", f"## `{doc.id}` ({doc.severity})", "", doc.title + ".", "", f"Why: {doc.why}", ""]
        lines += [f"Fix: {doc.fix}"]
        for example in doc.examples:
            for label, code in (("triggers it", example.triggers), ("does not", example.clean)):
                lines += ["", f"{example.kind.capitalize()} example, {label}:", "", "```python", code + "```"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates FINDINGS.md
    sys.stdout.write(markdown())
