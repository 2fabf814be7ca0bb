"""What a head's ranking says, in words: the verdict (one sentence, first), the caveats that limit the
evidence, and the longer explanation.

The verdict never claims more than the evidence: a candidate "beats" another only when the paired 95%
t-interval of their difference excludes 0 (the tie-group test); otherwise the candidates tie, and the
sentence says whether the head type's default loss is among them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from advisor.ranking import RepeatValues, paired_interval
from advisor.recommendation import HeadShare, RankedCandidate
from advisor.trials.evidence import HeadEvidence

MAX_NAMED = 5  # tied candidates named in the verdict; the rest are counted


def is_default(candidate: RankedCandidate) -> bool:
    """The head type's default loss: the baseline rule's plain loss (no recipe), also when a rule with a higher
    prior proposed the same loss (segmentation-dice-ce-nnunet repeats the baseline's Dice + CE)."""
    rules = (candidate.rule_id, *candidate.also_proposed_by)
    return any("baseline" in rule for rule in rules) and candidate.post_hoc is None


def decimals(spreads: Sequence[float | None], means: Sequence[float | None]) -> int:
    """Decimal places that show the smallest spread with two significant digits (so every number of one
    head reads with the same digits); 4 significant digits of the largest mean when nothing spreads."""
    finite = [abs(s) for s in spreads if s is not None and math.isfinite(s) and s > 0]
    if finite:
        return int(min(max(1 - math.floor(math.log10(min(finite))), 0), 8))
    values = [abs(m) for m in means if m is not None and math.isfinite(m) and m != 0]
    return int(min(max(3 - math.floor(math.log10(max(values))), 0), 8)) if values else 4


def head_decimals(ranked: Sequence[RankedCandidate]) -> int:
    evidence = [c.evidence for c in ranked if c.evidence is not None]
    return decimals([e.std for e in evidence], [e.mean for e in evidence])


def _values(candidate: RankedCandidate, higher: bool) -> RepeatValues:
    e = candidate.evidence
    assert e is not None
    return RepeatValues(tuple(math.nan if v is None else v for v in e.per_repeat), higher)


def _names(candidates: Sequence[RankedCandidate]) -> str:
    names = [c.name for c in candidates[:MAX_NAMED]]
    more = len(candidates) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


def _difference(
    winner: RankedCandidate, other: RankedCandidate, metric: str, higher: bool, digits: int
) -> str:
    found = paired_interval(_values(winner, higher), _values(other, higher))
    if found is None:
        return "(one shared repeat: no interval)"
    mean, low, high, repeats = found
    return f"by {mean:.{digits}f} {metric} (95% CI {low:.{digits}f} to {high:.{digits}f}, {repeats} paired repeats)"


def verdict(ranked: Sequence[RankedCandidate], metric: str, higher: bool) -> str:
    """The answer in one sentence, e.g. '3 losses tie at the top on dice (...); the default dice is among
    them.' or 'focal beats the default cross_entropy by 0.041 accuracy (95% CI 0.012 to 0.070, ...)'."""
    top = ranked[0]
    if top.evidence is None:
        return (
            f"Ranked by the rules alone (no trial fits): {top.name} is the first choice for this task; "
            "nothing was measured."
        )
    if top.evidence.mean is None:
        return f"Every candidate diverged on {metric}: this evidence supports no loss."
    digits = head_decimals(ranked)
    default = next((c for c in ranked if is_default(c)), None)
    tied = [c for c in ranked if c.tie_group == 1]
    if len(tied) > 1:
        if len(tied) == len(ranked):
            opening = f"All {len(tied)} candidates tie on {metric}: the evidence cannot tell them apart"
        else:
            opening = f"{len(tied)} losses tie at the top on {metric} ({_names(tied)})"
        if default is None:
            return opening + "; no default loss was among the candidates."
        if default.tie_group == 1:
            return opening + f"; the default {default.name} is among them."
        behind = _difference(top, default, metric, higher, digits)
        return opening + f"; the default {default.name} is behind {top.name} {behind}."
    runner_up = next((c for c in ranked[1:] if c.evidence is not None and c.evidence.mean is not None), None)
    if runner_up is None:
        return f"{top.name} is the only candidate that did not diverge on {metric}."
    if default is top:
        return (
            f"The default {top.name} is best on {metric}, ahead of the next best, {runner_up.name}, "
            f"{_difference(top, runner_up, metric, higher, digits)}."
        )
    if default is not None and default.evidence is not None and default.evidence.mean is not None:
        return f"{top.name} beats the default {default.name} {_difference(top, default, metric, higher, digits)}."
    return (
        f"{top.name} is best on {metric}, ahead of the next best, {runner_up.name}, "
        f"{_difference(top, runner_up, metric, higher, digits)}; no default loss was among the candidates."
    )


def caveats(source: str, trials: HeadEvidence | None, planned_epochs: int) -> list[str]:
    """What limits the evidence, each as a sentence: the banner lines above a ranking."""
    if source == "rules" or trials is None:
        return ["No trial fits ran: the order is the rules' priors, not a measurement."]
    found = []
    if source == "synthetic":
        found.append(
            "Synthetic evidence: the trials ran on generated data matching the description, not on your data."
        )
    if trials.stopped_by == "time" and trials.epochs_completed < planned_epochs:
        found.append(
            f"The time cap bound: trials stopped after {trials.epochs_completed} of {planned_epochs} epochs; "
            "raise budget_s for the full evidence."
        )
    if trials.cut_short:
        found.append(
            f"The time cap bound: {', '.join(trials.cut_short)} got fewer than the {trials.repeats} planned "
            "repeats; the ranking is less certain than it reads."
        )
    if trials.stopped_by == "cancelled":
        found.append("The trials were cancelled: the evidence is partial.")
    return found


def explanation(
    head_name: str, ranked: Sequence[RankedCandidate], source: str, trials: HeadEvidence | None
) -> str:
    """The longer account under the verdict: the winner's numbers, the ties, racing, and why it fits."""
    top = ranked[0]
    if top.evidence is None or trials is None:
        return (
            f"{top.name} leads for head '{head_name}' on the rules alone (prior {top.prior:.2f}, rule "
            f"'{top.rule_id}'): {top.rationale}"
        )
    e = top.evidence
    digits = head_decimals(ranked)

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    ties = [c for c in ranked[1:] if c.tie_group == 1]
    protocols = "; ".join(p.description for p in e.protocols)
    aggregate = "the worse of the protocols" if len(e.protocols) > 1 else "that protocol"
    parts = [
        f"{top.name} is listed first for head '{head_name}' on {e.metric}: {show(e.mean)} +/- {show(e.std)} "
        f"over {e.repeats} repeats (95% CI {show(e.ci_low)} to {show(e.ci_high)}), each a fresh split and "
        f"initialisation, so the spread covers split noise. Each repeat counts {aggregate} ({protocols})."
    ]
    if (by_class := e.per_class_mean) is not None:
        parts.append(f"Per class (mean over repeats): {', '.join(show(v) for v in by_class)}.")
    if ties:
        parts.append(
            f"Tied with it at these repeats ({len(ties)}): {', '.join(c.name for c in ties)}; inside the tie the "
            "rule prior decided the order, not the data."
        )
    else:
        parts.append("No other candidate ties with it at these repeats.")
    dropped = [
        f"{c.name} after {c.evidence.dropped_after}"
        for c in ranked
        if c.evidence and c.evidence.dropped_after
    ]
    if dropped:
        parts.append(f"Racing stopped {', '.join(dropped)} repeats: clearly behind the leader of that round.")
    if top.post_hoc is not None:
        parts.append(f"At prediction time: {top.post_hoc.describe()} (advisor.apply_recipe).")
    parts.append(f"Why it fits: {top.rationale}")
    where = "synthetic data matching the description, not yours," if source == "synthetic" else "your data"
    parts.append(f"Evidence: quick trial fits on {where} ({trials.train_rows} training rows a repeat).")
    return " ".join(parts)


def _head_values(share: HeadShare) -> RepeatValues:
    return RepeatValues(tuple(math.nan if v is None else v for v in share.per_repeat), share.higher_is_better)


def _baseline_summary(label: str, shares: Sequence[HeadShare]) -> str:
    """What the baseline keeps of each head's single-head gain over chance, and the head it keeps most of."""
    kept = [s for s in shares if s.share is not None]
    if not kept:
        return f"{label}: nothing was measured on the heads of the combined score."
    parts = " and ".join(f"{s.share:.0%} ('{s.head}')" for s in kept)
    favoured = max(kept, key=lambda s: s.share or 0.0)
    return f"{label} keeps {parts} of each head's single-head gain over chance: it favours '{favoured.head}'."


def multi_task_summary(
    label: str, candidate: RankedCandidate, baseline_label: str, baseline: RankedCandidate | None
) -> str:
    """Which head a multi_task weighting favours, from its joint-trial evidence.

    Against the baseline (static equal weights) a scheme favours the head whose metric it moves most in the
    good direction, in paired repeats, and costs the head it moves most in the bad one, e.g. "uncertainty
    favours 'price' (rmse -0.021 over static equal) at the cost of 'churn' (roc_auc -0.010, within noise)";
    "within noise" when the paired 95% t-interval includes 0. The baseline itself (or any scheme without one)
    favours the head whose single-head gain over chance it keeps the largest share of.
    """
    e = candidate.evidence
    assert e is not None and e.per_head is not None
    if (
        baseline is None
        or baseline is candidate
        or baseline.evidence is None
        or not baseline.evidence.per_head
    ):
        return _baseline_summary(label, e.per_head)
    moves = []  # (oriented mean paired difference, head, its change in words)
    for mine, theirs in zip(e.per_head, baseline.evidence.per_head, strict=True):
        a, b = _head_values(mine), _head_values(theirs)
        found = paired_interval(a, b)
        if found is None:
            continue
        mean, low, high, _ = found
        raw = mean if mine.higher_is_better else -mean  # the change in the metric's own direction
        digits = decimals([abs(raw), a.std, b.std], [a.mean, b.mean])  # the change itself gets 2 digits
        noise = ", within noise" if low <= 0 <= high else ""
        moves.append((mean, mine.head, f"{mine.metric} {raw:+.{digits}f}", noise))
    if not moves:
        return f"{label}: fewer than 2 repeats shared with {baseline_label}, so no head comparison."
    moves.sort(key=lambda m: -m[0])
    best, worst = moves[0], moves[-1]
    if best[0] <= 0:
        listed = ", ".join(f"'{head}' {change}{noise}" for _, head, change, noise in moves)
        return f"{label} favours no head over {baseline_label}: {listed}."
    text = f"{label} favours '{best[1]}' ({best[2]} over {baseline_label}{best[3]})"
    if worst[0] < 0:
        text += f" at the cost of '{worst[1]}' ({worst[2]}{worst[3]})"
    return text + "."


def multi_task_verdict(
    ranked: Sequence[RankedCandidate], labels: Mapping[str, str], baseline: RankedCandidate | None
) -> str:
    """The joint trials' answer in one sentence (``labels``: each candidate's scheme label by rule id), with
    the same claims as :func:`verdict`: a scheme beats another only when their paired interval excludes 0."""
    metric, top = "combined_score", ranked[0]
    if top.evidence is None or top.evidence.mean is None:
        return f"Every weighting diverged or was stopped before an epoch on {metric}: this evidence supports none."
    digits = head_decimals(ranked)
    name = labels[top.rule_id]
    tied = [c for c in ranked if c.tie_group == 1]
    if len(tied) > 1:
        opening = f"{len(tied)} weightings tie at the top on {metric} ({', '.join(labels[c.rule_id] for c in tied)})"
        if baseline is None or baseline.tie_group == 1:
            return opening + (f"; {labels[baseline.rule_id]} is among them." if baseline else ".")
        return (
            opening
            + f"; {labels[baseline.rule_id]} is behind {name} {_difference(top, baseline, metric, True, digits)}."
        )
    runner_up = next((c for c in ranked[1:] if c.evidence is not None and c.evidence.mean is not None), None)
    if runner_up is None:
        return f"{name} is the only weighting that did not diverge on {metric}."
    if baseline is None or baseline is top:
        return (
            f"{name} is best on {metric}, ahead of {labels[runner_up.rule_id]} "
            f"{_difference(top, runner_up, metric, True, digits)}."
        )
    return f"{name} beats {labels[baseline.rule_id]} on {metric} {_difference(top, baseline, metric, True, digits)}."
