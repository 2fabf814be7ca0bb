"""Helpers for AutoML systems that embed the advisor: its top specs as a search space.

The advisor narrows the loss search to a few configured candidates; a hyper-parameter search (Optuna here)
then picks among them together with the rest of the model's settings::

    import advisor
    import optuna
    from advisor.integrations import build_chosen_loss, optuna_loss_choice

    result = advisor.recommend("data.csv", target="y")  # once, outside the objective

    def objective(trial):
        choice = optuna_loss_choice(trial, result, top_k=3)  # a categorical choice among the top 3
        loss = choice.build_loss()
        lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        ...  # train with `loss`; predict with advisor.apply_recipe(choice.recipe, logits) when it has one
        ...  # return the validation metric

    study = optuna.create_study(direction="maximize")
    study.optimize(objective, n_trials=20)
    best = chosen_loss(study.best_trial)  # the winning trial's spec and recipe
    best_loss = build_chosen_loss(study.best_trial)  # the winning trial's loss, ready to train with

Every choice is a :class:`~advisor.recommendation.LossChoice`: a spec and the prediction-time recipe its
evidence was measured with ("cross_entropy + logit adjustment" stays a choice of its own, not a plain
cross-entropy).

Optuna is optional: only :func:`optuna_loss_choice` needs it, and it is imported when called.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from torch import nn

from advisor.errors import AdvisorError, FieldViolation
from advisor.losses import normalize_spec
from advisor.recipes import parse_recipe
from advisor.recommendation import LossChoice, RankedCandidate, Recommendation
from advisor.rules.engine import MULTI_TASK_HEAD
from advisor.spec import LossSpec, loads_json
from advisor.task import Head
from advisor.trials.adapters import Adapter, adapter_for

__all__ = [
    "IntegrationError",
    "MissingDependencyError",
    "build_chosen_loss",
    "choice_label",
    "chosen_loss",
    "loss_choices",
    "optuna_loss_choice",
    "output_adapter",
    "spec_label",
    "top_candidates",
    "top_choices",
]

CHOICE_ATTR = "{name}_choice"  # the trial user attribute holding the chosen spec and recipe as JSON data


class IntegrationError(AdvisorError):
    """A request the helpers cannot serve: an unknown head, a label no recommendation offers, ..."""


class MissingDependencyError(ImportError):
    """An optional dependency (Optuna) is not installed."""


def _require_optuna() -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependencyError(
            "advisor.integrations.optuna_loss_choice needs Optuna, which is optional: pip install optuna"
        ) from exc
    return optuna


def _candidates_of(recommendation: Recommendation, head: str | None) -> list[RankedCandidate]:
    """The ranked candidates a choice is made among: one head's, or the multi_task specs ('*')."""
    names = [h.head for h in recommendation.heads]
    if head is None:
        if recommendation.multi_task:
            return list(recommendation.multi_task)
        if len(names) == 1:
            return list(recommendation.heads[0].candidates)
        raise IntegrationError(
            FieldViolation(
                "head", f"the recommendation has several heads {names} and no multi_task spec; name one"
            )
        )
    if head == MULTI_TASK_HEAD:
        if not recommendation.multi_task:
            raise IntegrationError(
                FieldViolation("head", "'*' asks for multi_task specs; this recommendation has none")
            )
        return list(recommendation.multi_task)
    if head not in names:
        allowed = ", ".join(
            repr(n) for n in [*names, *([MULTI_TASK_HEAD] if recommendation.multi_task else [])]
        )
        raise IntegrationError(FieldViolation("head", f"no head named {head!r}; allowed: {allowed}"))
    return list(recommendation.head(head).candidates)


def top_candidates(
    recommendation: Recommendation, head: str | None = None, k: int = 3
) -> list[RankedCandidate]:
    """The best ``k`` candidates with distinct (spec, recipe) pairs, in rank order.

    A loss with a prediction-time recipe and the same loss without it are two candidates (their evidence
    differs); candidates whose every seed diverged are left out.

    Parameters
    ----------
    recommendation : Recommendation
        What :func:`advisor.recommend` returned.
    head : str, optional
        A head name, or ``"*"`` for the multi_task specs. Default: the multi_task specs when there are several
        heads, else the only head.
    k : int
        How many to return at most (at least 1).

    Returns
    -------
    list of RankedCandidate
    """
    if not isinstance(k, int) or k < 1:
        raise IntegrationError(FieldViolation("k", f"got {k!r}; a positive integer"))
    seen: set[str] = set()
    chosen = []
    for candidate in _candidates_of(recommendation, head):
        evidence = candidate.evidence
        if evidence is not None and evidence.mean is None:  # every seed diverged
            continue
        key = candidate.choice().model_dump_json()
        if key in seen:
            continue
        seen.add(key)
        chosen.append(candidate)
        if len(chosen) == k:
            break
    return chosen


def top_choices(recommendation: Recommendation, head: str | None = None, k: int = 3) -> list[LossChoice]:
    """The :func:`top_candidates` as choices: up to ``k`` (spec, recipe) pairs, best first.

    Example
    -------
    >>> result = advisor.recommend("client_examples/data/churn.csv", target="churned")  # doctest: +SKIP
    >>> [choice.build_loss() for choice in top_choices(result, k=3)]  # doctest: +SKIP
    """
    return [candidate.choice() for candidate in top_candidates(recommendation, head, k)]


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def spec_label(spec: LossSpec | Mapping[str, Any] | str) -> str:
    """A short label that names a spec and stays the same for the same spec: ``"focal-1a2b3c4d"``.

    The suffix is a hash of the spec with every default filled in, so a study that runs again on the same
    recommendation offers the same choices.
    """
    normalized = normalize_spec(spec)
    name = normalized.loss
    if name == "multi_task":  # multi_task-uncertainty-...: the scheme is what tells them apart
        name += "-" + str(normalized.params.get("weighting", {}).get("scheme", "static"))
    return f"{name}-{_digest(normalized.model_dump(mode='json'))}"


def choice_label(choice: LossChoice) -> str:
    """:func:`spec_label`, with the recipe's kind and values in the name and hash when there is one:
    ``"cross_entropy+logit_adjustment-5e6f7a8b"``."""
    if choice.recipe is None:
        return spec_label(choice.spec)
    return f"{choice.spec.loss}+{choice.recipe.kind}-{_digest(choice.model_dump(mode='json'))}"


def loss_choices(
    recommendation: Recommendation, *, head: str | None = None, top_k: int = 3, labels: str = "short"
) -> dict[str, LossChoice]:
    """The top-k choices keyed by the primitive value a search space offers for each, best first.

    Parameters
    ----------
    recommendation, head, top_k
        As for :func:`top_candidates` (``top_k`` is its ``k``).
    labels : {"short", "json"}
        ``"short"``: :func:`choice_label` labels (readable in dashboards); ``"json"``: the choice's JSON
        text (``{"spec": ..., "recipe": ...}``), so that ``study.best_params`` alone rebuilds it.
    """
    if labels not in ("short", "json"):
        raise IntegrationError(FieldViolation("labels", f"got {labels!r}; one of 'short', 'json'"))
    choices = top_choices(recommendation, head, top_k)
    if not choices:
        raise IntegrationError(FieldViolation("head", "no candidate to choose from (every one diverged?)"))
    return {(choice_label(c) if labels == "short" else c.model_dump_json()): c for c in choices}


def optuna_loss_choice(
    trial: Any,
    recommendation: Recommendation,
    *,
    head: str | None = None,
    top_k: int = 3,
    name: str = "loss",
    labels: str = "short",
) -> LossChoice:
    """Let an Optuna trial choose the loss among the recommendation's top-k choices; return the choice.

    The choice is a categorical parameter ``name`` whose choices are primitive strings (Optuna needs
    primitives): short stable labels (``"binary_focal-1a2b3c4d"``) or the choices' JSON text. The chosen spec
    and recipe are also stored as the trial's user attribute ``"<name>_choice"``, so
    ``chosen_loss(study.best_trial)`` gives them back later without the recommendation. Compute the recommendation once, outside the objective:
    Optuna requires the same choices in every trial of a study.

    Parameters
    ----------
    trial : optuna.trial.Trial
        The trial of the running objective.
    recommendation : Recommendation
        What :func:`advisor.recommend` returned.
    head : str, optional
        A head name, or ``"*"`` for multi_task specs; default as for :func:`top_candidates`.
    top_k : int
        How many of the best distinct specs to offer.
    name : str
        The parameter's name in the study.
    labels : {"short", "json"}
        How choices are written (see :func:`loss_choices`).

    Returns
    -------
    LossChoice
        The chosen spec and recipe; ``choice.build_loss()`` is the loss module, and
        ``advisor.apply_recipe(choice.recipe, logits)`` the predictions when ``choice.recipe`` is set.

    Raises
    ------
    MissingDependencyError
        Optuna is not installed (an ``ImportError``).
    IntegrationError
        An unknown head, or nothing to choose from.

    Example
    -------
    >>> def objective(trial):  # doctest: +SKIP
    ...     choice = optuna_loss_choice(trial, result, top_k=3)
    ...     return train_and_validate(choice, lr=trial.suggest_float("lr", 1e-4, 1e-2, log=True))
    """
    optuna = _require_optuna()
    if not isinstance(trial, optuna.trial.BaseTrial):
        raise IntegrationError(
            FieldViolation("trial", f"expected an optuna trial, got {type(trial).__name__}")
        )
    choices = loss_choices(recommendation, head=head, top_k=top_k, labels=labels)
    picked = trial.suggest_categorical(name, list(choices))
    choice = choices[picked]
    if not isinstance(trial, optuna.trial.FrozenTrial):  # a finished trial keeps what it chose
        trial.set_user_attr(CHOICE_ATTR.format(name=name), choice.model_dump(mode="json"))
    return choice


def _is_live_trial(trial: Any) -> bool:
    """A trial that can still suggest parameters (optuna's Trial or FixedTrial, not a FrozenTrial)."""
    optuna = _require_optuna()  # installed: we were handed one of its trials
    return isinstance(trial, optuna.trial.BaseTrial) and not isinstance(trial, optuna.trial.FrozenTrial)


def chosen_loss(
    trial_or_params: Any,
    recommendation: Recommendation | None = None,
    *,
    head: str | None = None,
    top_k: int = 3,
    name: str = "loss",
    labels: str = "short",
) -> LossChoice:
    """The spec and recipe a trial chose (or chooses now), from a live trial, a finished trial or a params
    mapping.

    * a live ``optuna.trial.Trial`` with a ``recommendation``: makes (or repeats) the choice as
      :func:`optuna_loss_choice` does;
    * a finished trial (``study.best_trial``): its stored ``"<name>_choice"`` attribute, else its parameter;
    * a mapping (``study.best_params``): the parameter ``name``; JSON text is a choice in itself, a short
      label is looked up among the ``recommendation``'s candidates.
    """
    is_trial = hasattr(trial_or_params, "params") and hasattr(trial_or_params, "user_attrs")
    if is_trial and recommendation is not None and _is_live_trial(trial_or_params):
        return optuna_loss_choice(
            trial_or_params, recommendation, head=head, top_k=top_k, name=name, labels=labels
        )
    if is_trial:
        stored = trial_or_params.user_attrs.get(CHOICE_ATTR.format(name=name))
        if stored is not None:
            return _parse_choice(stored, name)
        params = trial_or_params.params
    elif isinstance(trial_or_params, Mapping):
        params = trial_or_params
    else:
        raise IntegrationError(
            FieldViolation(
                "trial_or_params",
                f"expected an optuna trial or a mapping, got {type(trial_or_params).__name__}",
            )
        )
    if name not in params:
        raise IntegrationError(FieldViolation(name, f"no parameter {name!r}; parameters: {sorted(params)}"))
    value = params[name]
    if isinstance(value, str) and value.lstrip().startswith("{"):
        return _parse_choice(loads_json(value, field=name, error=IntegrationError), name)
    if recommendation is None:
        raise IntegrationError(
            FieldViolation(name, f"{value!r} is a short label; pass the recommendation it was chosen from")
        )
    offered = {
        choice_label(choice): choice
        for choice in (
            c.choice()
            for c in [*recommendation.multi_task, *(c for h in recommendation.heads for c in h.candidates)]
        )
    }
    if value not in offered:
        raise IntegrationError(FieldViolation(name, f"{value!r} names no choice of this recommendation"))
    return offered[value]


def _parse_choice(data: Any, field: str) -> LossChoice:
    """A stored ``{"spec": ..., "recipe": ...}`` choice, validated (the spec with its defaults filled in)."""
    if not isinstance(data, Mapping) or set(data) - {"spec", "recipe"} or "spec" not in data:
        raise IntegrationError(FieldViolation(field, 'expected {"spec": ..., "recipe": ...}'))
    recipe = data.get("recipe")
    return LossChoice(
        spec=normalize_spec(data["spec"]), recipe=None if recipe is None else parse_recipe(recipe)
    )


def build_chosen_loss(
    trial_or_params: Any,
    recommendation: Recommendation | None = None,
    *,
    head: str | None = None,
    top_k: int = 3,
    name: str = "loss",
    labels: str = "short",
) -> nn.Module:
    """The chosen loss as a module: ``advisor.build_loss(chosen_spec(...))`` (same parameters).

    Inside an objective, ``build_chosen_loss(trial, result)`` makes the choice and builds it in one call;
    afterwards, ``build_chosen_loss(study.best_trial)`` rebuilds the winner.

    Example
    -------
    >>> def objective(trial):  # doctest: +SKIP
    ...     loss = build_chosen_loss(trial, result, top_k=3)
    ...     return train_and_validate(loss)
    >>> loss = build_chosen_loss(study.best_trial)  # doctest: +SKIP
    """
    return chosen_loss(
        trial_or_params, recommendation, head=head, top_k=top_k, name=name, labels=labels
    ).build_loss()


def output_adapter(head: Head, spec: LossSpec | Mapping[str, Any] | str) -> Adapter:
    """How a model's output for ``head`` must look to train with ``spec``, and how to read predictions.

    ``adapter.out_dim`` is the number of output units (1 for a sigmoid loss on a binary head, the class count
    for softmax losses, 2 for Gaussian NLL, one per quantile, ...); ``adapter.loss_input(output)`` and
    ``adapter.loss_target(target)`` turn a raw ``(N, out_dim)`` output and the stored target (class indices
    or values) into what the loss expects; ``adapter.predict(output)`` gives ``{"proba": ...}`` or
    ``{"value": ...}``.

    Example
    -------
    >>> head = result.task.heads[0]  # doctest: +SKIP
    >>> adapter = output_adapter(head, spec)  # doctest: +SKIP
    >>> model = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.ReLU(), torch.nn.Linear(64, adapter.out_dim))
    >>> value = loss(adapter.loss_input(model(x)), adapter.loss_target(y))  # doctest: +SKIP
    """
    return adapter_for(head, normalize_spec(spec))
