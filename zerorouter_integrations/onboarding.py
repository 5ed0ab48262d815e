"""Zero-shot onboarding: add a model to the pool from ~100 scored anchor prompts, with no retraining.

* :func:`select_anchors`: the most informative ``k`` prompts of a caller's labelled pool (the latent
  space's own strategy: information-maximizing for the IRT space, cluster-stratified for K-means).
* :func:`onboard`: a new profile from scores on anchor prompts. Only the new profile is created: the
  latent space and every other profile stay byte-identical.
* :func:`onboard_live`: run the shipped anchor set (:mod:`zerorouter_integrations.anchorset`) through
  the model via LiteLLM, grade each answer (open-ended ones by a judge model), then onboard.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zerorouter_integrations.profiles import ModelProfile, estimate_tokens

if TYPE_CHECKING:  # pragma: no cover
    from zerorouter_integrations.router import ZeroRouter

__all__ = ["onboard", "onboard_live", "select_anchors"]


def _coordinates(router: ZeroRouter, prompts: Sequence[str]) -> np.ndarray:
    """Latent coordinates; the router's own anchors use their fitted (exact) coordinates."""
    texts = [str(p) for p in prompts]
    anchors = router.artifact.anchors
    known = {t: i for i, t in enumerate(anchors.texts)} if anchors is not None else {}
    missing = [i for i, t in enumerate(texts) if t not in known]
    out: list[np.ndarray | None] = [None] * len(texts)
    for i, t in enumerate(texts):
        if t in known:
            out[i] = anchors.Z[known[t]]  # type: ignore[union-attr]  # known is empty without anchors
    if missing:
        X = router.featurizer.transform([texts[i] for i in missing])
        Zm = router.predictor.transform(X)
        for j, i in enumerate(missing):
            out[i] = Zm[j]
    return np.vstack([z for z in out if z is not None]) if out else np.zeros((0, 0))


def select_anchors(router: ZeroRouter, prompts: Sequence[str], k: int = 100, *, seed: int = 0) -> list[int]:
    """Indices (into ``prompts``) of the ``k`` most informative anchors."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k!r}")
    if not prompts:
        raise ValueError("prompts is empty; give the labelled pool to choose anchors from")
    Z = _coordinates(router, prompts)
    return [int(i) for i in router.predictor.space_.select_anchors(Z, min(k, len(prompts)), seed=seed)]


def onboard(
    router: ZeroRouter,
    model: str,
    anchor_prompts: Sequence[str],
    scores: Sequence[float],
    *,
    costs: Sequence[float | None] | None = None,
    input_usd_per_token: float | None = None,
    output_usd_per_token: float | None = None,
    expected_output_tokens: float | None = None,
    litellm_model: str | None = None,
    endpoint: Any = None,
    capabilities: dict | None = None,
    latency_prior: dict | None = None,
) -> ModelProfile:
    """Fit ``model``'s profile from its ``scores`` (in [0, 1]) on ``anchor_prompts`` and add it to the pool.

    Cost: from ``costs`` observed on the anchors when given (``None`` entries are unknown), else from the
    prices and ``expected_output_tokens`` (default 200), else the endpoint's custom prices, else LiteLLM's
    price map for ``litellm_model``. Without any of them the model is "price unknown" and the router
    leaves it out of routing (with that reason) until prices are given.

    Atomic: every argument is checked and the profile is built before anything changes; when adding it
    fails (e.g. it would predict non-finite figures) the router is left exactly as it was.
    """
    from zerorouter_integrations.predictor import fit_cost
    from zerorouter_integrations.profiles import CostModel, check_money

    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    prompts = list(anchor_prompts)
    for i, p in enumerate(prompts):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"anchor_prompts[{i}] must be a non-empty string, got {p!r:.80}")
    try:
        y = np.asarray(list(scores), dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores must be numbers in [0, 1]: {exc}") from None
    if y.ndim != 1:
        raise ValueError(f"scores must be a flat sequence of numbers, got shape {y.shape}")
    if len(prompts) != len(y):
        raise ValueError(f"got {len(prompts)} anchor prompts but {len(y)} scores")
    if len(y) == 0:
        raise ValueError("onboarding needs at least one scored anchor prompt")
    if not np.isfinite(y).all() or ((y < 0) | (y > 1)).any():
        bad = int(np.flatnonzero(~np.isfinite(y) | (y < 0) | (y > 1))[0])
        raise ValueError(f"scores must be in [0, 1]; score {bad} is {y[bad]!r}")
    cost_arr = None
    if costs is not None:
        costs = list(costs)
        if len(costs) != len(y):
            raise ValueError(f"got {len(costs)} costs for {len(y)} anchors")
        cost_arr = np.array(
            [np.nan if c is None else check_money(f"costs[{i}]", c) for i, c in enumerate(costs)], dtype=float
        )
        if np.isnan(cost_arr).all():
            cost_arr = None
    input_usd_per_token = check_money("input_usd_per_token", input_usd_per_token)
    output_usd_per_token = check_money("output_usd_per_token", output_usd_per_token)
    expected_output_tokens = check_money("expected_output_tokens", expected_output_tokens)
    if endpoint is not None:
        litellm_model = litellm_model or getattr(endpoint, "litellm_model", None)
        if (
            input_usd_per_token is None
            and output_usd_per_token is None
            and getattr(endpoint, "has_custom_prices", False)
        ):
            input_usd_per_token = float(getattr(endpoint, "input_cost_per_token", None) or 0.0)
            output_usd_per_token = float(getattr(endpoint, "output_cost_per_token", None) or 0.0)
    if (input_usd_per_token is None or output_usd_per_token is None) and litellm_model:
        pin, pout = _litellm_prices(litellm_model)
        input_usd_per_token = input_usd_per_token if input_usd_per_token is not None else pin
        output_usd_per_token = output_usd_per_token if output_usd_per_token is not None else pout
    Z = _coordinates(router, prompts)
    if not np.isfinite(Z).all():
        raise ValueError(f"the latent coordinates of {model!r}'s anchors are not finite")
    tokens = np.array([estimate_tokens(p) for p in prompts], dtype=float)
    prices = (input_usd_per_token, output_usd_per_token)
    ability = router.predictor.space_.fit_ability(Z, y)
    if cost_arr is None and prices[0] is not None and prices[1] is not None:
        cost = CostModel.from_prices(prices[0], prices[1], expected_output_tokens or 200.0)
    else:
        cost = fit_cost(cost_arr, tokens, prices)
    profile = ModelProfile(
        name=model,
        ability=ability,
        cost=cost,
        litellm_model=litellm_model,
        input_usd_per_token=prices[0],
        output_usd_per_token=prices[1],
        expected_output_tokens=expected_output_tokens,
        capabilities=dict(capabilities or {}),
        source=f"onboard:{len(y)} anchors",
    )
    if latency_prior:
        profile.latency_prior = dict(latency_prior)
        profile.__post_init__()  # the prior's numbers are checked like the constructor's
    router.add_profile(profile, endpoint)
    return profile


def _litellm_prices(litellm_model: str) -> tuple[float | None, float | None]:
    from zerorouter_integrations._env import import_litellm

    litellm = import_litellm()
    try:
        info = litellm.get_model_info(litellm_model)
    except Exception:  # unknown to LiteLLM's local map
        return None, None
    return info.get("input_cost_per_token"), info.get("output_cost_per_token")


def onboard_live(
    router: ZeroRouter,
    model: str,
    endpoint: Any,
    *,
    k: int | None = None,
    anchors: Sequence[Any] | None = None,
    judge: Any = None,
    reference: Any = None,
    concurrency: int = 8,
    run_code: bool = True,
    max_tokens: int = 512,
    stop_after: int = 8,
    show_progress: bool | None = None,
    on_run: Callable[[Any], None] | None = None,
    **onboard_kwargs: Any,
) -> ModelProfile:
    """Run the shipped anchor set (or ``anchors``) through ``endpoint``, grade the answers, and onboard.

    See :func:`zerorouter_integrations.live_onboarding.run_anchors` for ``judge``, ``reference``,
    ``concurrency``, ``run_code`` and ``stop_after``; ``k`` keeps ``k`` anchors evenly spread over
    the set (so over its domains). Observed
    costs feed the new profile's cost model; prices given in ``onboard_kwargs`` or on the endpoint
    win over LiteLLM's map. ``on_run`` gets the run's
    :class:`~zerorouter_integrations.live_onboarding.AnchorRun` (what was graded, skipped, failed).

    Raises
    ------
    OnboardingError
        The first calls all failed alike, or no anchor could be graded; the first failure's cause is
        quoted verbatim.
    """
    from zerorouter_integrations.anchorset import load_anchor_set
    from zerorouter_integrations.errors import OnboardingError
    from zerorouter_integrations.live_onboarding import run_anchors

    items = list(anchors) if anchors is not None else load_anchor_set()
    if k is not None:
        if k < 1:
            raise ValueError(f"k={k!r}; expected a number of anchors >= 1")
        step = len(items) / min(k, len(items))  # spread over the file, so over every domain
        items = [items[int(i * step)] for i in range(min(k, len(items)))]
    run = run_anchors(
        model,
        endpoint,
        items,
        judge=judge,
        reference=reference,
        concurrency=concurrency,
        run_code=run_code,
        max_tokens=max_tokens,
        stop_after=stop_after,
        show_progress=show_progress,
    )
    if on_run is not None:
        on_run(run)
    if not run.scores:
        raise OnboardingError(
            f"no anchor could be run and graded on {model!r} ({run.failures} call(s) failed"
            + (f"; the first failure: {run.first_error})" if run.first_error else ")")
        )
    costs = (
        None if all(math.isnan(c) for c in run.costs) else [None if math.isnan(c) else c for c in run.costs]
    )
    for attr in ("input_usd_per_token", "output_usd_per_token"):
        price = getattr(endpoint, attr.replace("usd_per", "cost_per"), None)
        if price is not None:
            onboard_kwargs.setdefault(attr, price)
    return onboard(router, model, run.prompts, run.scores, costs=costs, endpoint=endpoint, **onboard_kwargs)
