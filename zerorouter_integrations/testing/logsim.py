"""Simulated deployment logs from a routing table, and the held-out AUDC of a router artifact.

What ``benchmarks/log_fit.py`` and the log-fit tests use to check that learning from your own
traffic helps: a deployment of a router (e.g. the shipped default) routes each logged prompt to one
model (its default policy), the call is logged with that model's cost and tokens from the table,
and a share of the calls gets feedback (the table's score). :func:`heldout_audc` then scores a
router on other prompts of the same table with the full outcome matrix, like ``zerorouter eval``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zerorouter_integrations.importers.base import LoggedCall
from zerorouter_integrations.metrics import Curve, audc, curve_from_choices, sweep_choices, upper_hull
from zerorouter_integrations.profiles import estimate_tokens
from zerorouter_integrations.tables import RoutingTable, question_groups

__all__ = ["HeldOutCurves", "complete_pool", "heldout_audc", "simulate_deployment", "split_log_eval"]


def complete_pool(
    table: RoutingTable, prompt_ids: Sequence[str], known: Sequence[str], *, coverage: float = 0.99
) -> tuple[list[str], list[str]]:
    """``(pool, prompts)``: models of ``known`` scored and priced on ≥ ``coverage`` of ``prompt_ids``
    (as the evaluation's pool), and the prompts that have an outcome of every pool model."""
    models = [m for m in table.model_names if m in set(known)]
    S, C = table.scores(prompt_ids, models), table.costs(prompt_ids, models)
    have = ~np.isnan(S) & ~np.isnan(C)
    cols = [j for j in range(len(models)) if have[:, j].mean() >= coverage]
    rows = have[:, cols].all(axis=1)
    return [models[j] for j in cols], [p for p, ok in zip(prompt_ids, rows) if ok]


def split_log_eval(
    table: RoutingTable, prompt_ids: Sequence[str], *, seed: int, log_fraction: float = 0.5
) -> tuple[list[str], list[str]]:
    """Split prompts into logged traffic and evaluation prompts, identical questions on one side."""
    sub = table.subset(prompt_ids=list(prompt_ids))
    groups = question_groups(sub)
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    logged = set(uniq[rng.random(len(uniq)) < log_fraction].tolist())
    ids = sub.prompt_ids
    return [p for p, g in zip(ids, groups) if g in logged], [
        p for p, g in zip(ids, groups) if g not in logged
    ]


def simulate_deployment(
    table: RoutingTable,
    artifact: Any,
    prompt_ids: Sequence[str],
    pool: Sequence[str],
    featurizer: Any,
    *,
    feedback_fraction: float = 0.3,
    seed: int = 0,
) -> tuple[list[LoggedCall], dict[str, float]]:
    """Logs of ``artifact``'s default policy serving ``prompt_ids`` over ``pool``, and feedback scores.

    One call per prompt (the chosen model's cost and tokens from the table); a seeded
    ``feedback_fraction`` of the calls gets the table's score as feedback.
    """
    from zerorouter_integrations.batch import decide

    texts = table.texts(prompt_ids)
    X = featurizer.transform(texts)
    tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
    out = decide(artifact, X, tokens, keys=list(prompt_ids), models=list(pool))
    S, C = table.scores(prompt_ids, list(pool)), table.costs(prompt_ids, list(pool))
    o = table.outcomes.set_index(["prompt_id", "model"])
    rng = np.random.default_rng(seed)
    calls, scores = [], {}
    for i, (pid, model) in enumerate(zip(prompt_ids, out["model"])):
        j = list(pool).index(model)
        row = o.loc[(pid, model)]
        call = LoggedCall(
            call_id=f"call-{pid}",
            prompt=texts[i],
            model=model,
            cost_usd=float(C[i, j]),
            input_tokens=None if np.isnan(row["input_tokens"]) else int(row["input_tokens"]),
            output_tokens=None if np.isnan(row["output_tokens"]) else int(row["output_tokens"]),
            source=f"simulated:{i + 1}",
            propensity=float(out["propensity"][i]),
        )
        calls.append(call)
        if rng.random() < feedback_fraction:
            scores[call.call_id] = float(S[i, j])
    return calls, scores


@dataclass
class HeldOutCurves:
    """Deferral curves of one router on evaluation prompts (choices per λ kept for the bootstrap)."""

    choices: np.ndarray  # (λ, n) model indices
    Y: np.ndarray
    C: np.ndarray
    c_range: tuple[float, float]

    def audc(self, rows: np.ndarray | None = None) -> float:
        rows = np.arange(self.Y.shape[0]) if rows is None else rows
        pts = curve_from_choices(self.choices[:, rows], self.Y[rows], self.C[rows])
        return audc(Curve(points=pts, hull=upper_hull(pts)), *self.c_range)


def heldout_audc(
    artifact: Any, table: RoutingTable, prompt_ids: Sequence[str], pool: Sequence[str], featurizer: Any
) -> HeldOutCurves:
    """The router's deferral curve (λ sweep of ``argmax Q̂ − λ Ĉ``) on ``prompt_ids`` with true outcomes.

    The cost range is the cheapest to the dearest single model of ``pool`` on those prompts, as in
    :mod:`zerorouter_integrations.evaluation`.
    """
    texts = table.texts(prompt_ids)
    X = featurizer.transform(texts)
    tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
    pred = artifact.predictor.predict(X, input_tokens=tokens, models=list(pool))
    Y, C = table.scores(prompt_ids, list(pool)), table.costs(prompt_ids, list(pool))
    means = C.mean(axis=0)
    return HeldOutCurves(
        sweep_choices(pred.quality, pred.cost_usd), Y, C, (float(means.min()), float(means.max()))
    )
