"""``zerorouter fit --from-logs``: logged calls + scores → a refined router, with a before/after report.

:func:`fit_from_logs` holds out a share of the scored calls (a stable hash of the call id), refines
the prior on the rest (:func:`~zerorouter_integrations.logfit.refine_artifact`), and compares prior
and refined router on the held-out logged traffic:

* **prediction** of the logged outcome (the model that actually answered, so no off-policy issue):
  log loss and Brier score, with bootstrap SDs of each and of the difference;
* **policy value** of each router's own choice, by the **direct method** (DM): the value of a policy
  ``π`` is ``V̂(π) = mean_i q̂(x_i, π(x_i))`` over held-out logged prompts, with ``q̂`` the *refined*
  predictor (the best reward model available: the only one fit on your traffic); its SD is the
  bootstrap SD over prompts. The logged policy is deterministic (one model per prompt, no
  exploration), so inverse-propensity weights are undefined for any choice that differs from the
  logged one; DM needs no propensities but inherits the reward model's bias, which the report shows
  as the gap between ``q̂`` and the observed scores on the logged choices (``dm_bias_on_logged``);
* **policy value by inverse propensity** (IPS), when the logged calls carry the logging policy's
  propensities (:attr:`LoggedCall.propensity`; a mixed calibration randomizes between two prices):
  ``V̂_IPS(π) = mean_i 1[π(x_i) = a_i] · y_i / p_i`` over the held-out scored calls, unbiased where
  the logger gives ``π``'s choice a positive probability, with its bootstrap SD (the variance of the
  weighted terms over ``n``); with a near-deterministic logger it only sees the prompts where ``π``
  agrees with it (the "match rate" row), so the DM figure is the one to read and IPS the check.

The returned artifact is then refit on *all* scored calls with the chosen settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zerorouter_integrations.artifact import RouterArtifact
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.importers.base import LoggedCall
from zerorouter_integrations.logfit import Observations, RefitInfo, log_losses, refine_artifact, stable_fold
from zerorouter_integrations.profiles import estimate_tokens

__all__ = ["LogFitReport", "fit_from_logs", "observations_from_calls"]


@dataclass
class LogFitReport:
    """Before/after figures on held-out logged traffic (see the module docstring)."""

    n_calls: int
    n_scored: int
    n_train: int
    n_holdout: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    refit: dict[str, Any] = field(default_factory=dict)
    estimator: str = "direct method (reward model: the refined predictor); SD by bootstrap over prompts"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_calls": self.n_calls,
            "n_scored": self.n_scored,
            "n_train": self.n_train,
            "n_holdout": self.n_holdout,
            "metrics": self.metrics,
            "estimator": self.estimator,
            "refit": self.refit,
        }

    def to_markdown(self) -> str:
        lines = [
            f"{self.n_calls} logged calls, {self.n_scored} scored: {self.n_train} to refine, "
            f"{self.n_holdout} held out",
            "",
            "| held-out metric | prior | refined | refined − prior (SD) |",
            "| --- | --- | --- | --- |",
        ]
        for name, m in self.metrics.items():
            lines.append(
                f"| {name} | {m['prior']:.4f} | {m['refined']:.4f} | {m['diff']:+.4f} ({m['diff_sd']:.4f}) |"
            )
        lines.append("")
        lines.append(f"Policy value: {self.estimator}.")
        return "\n".join(lines)


def observations_from_calls(
    calls: Sequence[LoggedCall], scores: Mapping[str, float], featurizer: Any
) -> tuple[Observations, list[LoggedCall]]:
    """Scored calls (by call id, else trace id) as :class:`Observations`, plus those calls."""
    scored, ys = [], []
    seen: set[str] = set()
    for c in calls:
        s = scores.get(c.call_id, scores.get(c.trace_id) if c.trace_id else None)
        if s is None or c.call_id in seen:
            continue
        seen.add(c.call_id)
        scored.append(c)
        ys.append(float(s))
    X = featurizer.transform([c.prompt for c in scored]) if scored else np.zeros((0, 1))
    return Observations([c.call_id for c in scored], X, [c.model for c in scored], np.asarray(ys)), scored


def _bootstrap_sd(values: np.ndarray, n_boot: int = 500, seed: int = 0) -> float:
    if len(values) < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    return float(values[idx].mean(axis=1).std(ddof=1))


def _pointwise(pred: Any, obs: Observations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-call P(good) of ``pred`` for the logged model, its log loss and its squared error."""
    Z = pred.transform(obs.X)
    p = np.array(
        [
            pred.predict(Z=Z[i : i + 1], models=[m]).quality[0, 0] if m in pred.profiles_ else np.nan
            for i, m in enumerate(obs.models)
        ]
    )
    return p, log_losses(p, obs.y), (p - obs.y) ** 2


def _metric(prior: np.ndarray, refined: np.ndarray, seed: int) -> dict[str, float]:
    ok = ~(np.isnan(prior) | np.isnan(refined))
    prior, refined = prior[ok], refined[ok]
    return {
        "prior": float(prior.mean()),
        "refined": float(refined.mean()),
        "prior_sd": _bootstrap_sd(prior, seed=seed),
        "refined_sd": _bootstrap_sd(refined, seed=seed),
        "diff": float((refined - prior).mean()),
        "diff_sd": _bootstrap_sd(refined - prior, seed=seed),
    }


def _policy_values(
    prior: RouterArtifact,
    refined: RouterArtifact,
    test: Observations,
    texts: list[str],
    featurizer: Any,
    pool: Sequence[str] | None,
    propensity: np.ndarray | None,
):
    """DM value, predicted cost and (with propensities) IPS terms of each router's default-policy choices."""
    from zerorouter_integrations.batch import decide

    out = {}
    X = featurizer.transform(texts)
    tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
    reward = refined.predictor
    known = [m for m in prior.predictor.profiles_ if m in reward.profiles_]
    pool = known if pool is None else [m for m in pool if m in set(known)]
    P = reward.predict(X, input_tokens=tokens, models=pool)
    for name, art in (("prior", prior), ("refined", refined)):
        choice = decide(art, X, tokens, keys=[str(i) for i in range(len(texts))], models=pool)
        col = np.array([pool.index(m) for m in choice["model"]])
        rows = np.arange(len(texts))
        match = np.array([a == b for a, b in zip(choice["model"], test.models)], dtype=float)
        ips = None if propensity is None else match * test.y / np.maximum(propensity, 1e-12)
        out[name] = (P.quality[rows, col], P.cost_usd[rows, col], ips, match)
    return out


def fit_from_logs(
    calls: Sequence[LoggedCall],
    scores: Mapping[str, float],
    *,
    prior: RouterArtifact,
    featurizer: Any,
    holdout: float = 0.2,
    seed: int = 0,
    pool: Sequence[str] | None = None,
    **refine_kwargs: Any,
) -> tuple[RouterArtifact, LogFitReport, RefitInfo]:
    """Refine ``prior`` with scored logged calls; report before/after on a held-out share of them.

    ``pool`` is the deployment's pool for the policy-value rows (default: every model both routers
    know).
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout!r}")
    obs, scored = observations_from_calls(calls, scores, featurizer)
    if len(obs) == 0:
        raise SchemaError(
            f"none of the {len(calls)} logged calls has a score; give --feedback, --judge or --store"
        )
    costs: dict[str, tuple[list[float], list[float]]] = {}
    out_tokens: dict[str, list[float]] = {}
    for c in calls:
        # The cost model's regressor is the token estimate the router computes when it predicts (it
        # has no tokenizer of the provider), not the provider's logged count: fit on what it will read.
        t = estimate_tokens(c.prompt)
        costs.setdefault(c.model, ([], []))
        costs[c.model][0].append(float(t))
        costs[c.model][1].append(math.nan if c.cost_usd is None else float(c.cost_usd))
        if c.output_tokens is not None:
            out_tokens.setdefault(c.model, []).append(float(c.output_tokens))
    mean_out = {m: float(np.mean(v)) for m, v in out_tokens.items()}
    texts = list(dict.fromkeys(c.prompt for c in calls))
    n_folds = max(2, round(1 / holdout)) if holdout > 0 else 0
    is_test = np.array([n_folds > 0 and stable_fold(i, n_folds, seed + 17) == 0 for i in obs.ids])
    report = LogFitReport(len(calls), len(obs), int((~is_test).sum()), int(is_test.sum()))
    common = dict(costs=costs, output_tokens=mean_out, featurizer=featurizer, seed=seed, **refine_kwargs)
    if is_test.any() and (~is_test).sum() >= 10:
        train, test = obs.take(np.flatnonzero(~is_test)), obs.take(np.flatnonzero(is_test))
        test_ids = set(test.ids)
        train_texts = [c.prompt for c in scored if c.call_id not in test_ids]
        held, _ = refine_artifact(prior, train, calibration_texts=train_texts, **common)
        _, ll0, se0 = _pointwise(prior.predictor, test)
        p1, ll1, se1 = _pointwise(held.predictor, test)
        report.metrics["log loss (logged model)"] = _metric(ll0, ll1, seed)
        report.metrics["Brier (logged model)"] = _metric(se0, se1, seed)
        test_calls = [c for c in scored if c.call_id in test_ids]
        props = [c.propensity for c in test_calls]
        propensity = None if any(p is None for p in props) else np.asarray(props, dtype=float)
        values = _policy_values(
            prior, held, test, [c.prompt for c in test_calls], featurizer, pool, propensity
        )
        report.metrics["DM value of own choice"] = _metric(values["prior"][0], values["refined"][0], seed)
        report.metrics["DM cost of own choice (USD)"] = _metric(
            values["prior"][1], values["refined"][1], seed
        )
        if propensity is not None:
            report.metrics["IPS value of own choice"] = _metric(
                values["prior"][2], values["refined"][2], seed
            )
            report.metrics["IPS match rate (choice = logged model)"] = _metric(
                values["prior"][3], values["refined"][3], seed
            )
        # The reward model's bias where the truth is known (the logged choices): prior column = 0.
        report.metrics["DM bias on logged choices (q̂ − observed)"] = _metric(0.0 * p1, p1 - test.y, seed)
    refined, info = refine_artifact(prior, obs, calibration_texts=texts, **common)
    report.refit = info.to_dict()
    return refined, report, info
