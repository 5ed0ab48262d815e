"""Routing quality benchmark (issue 3's acceptance): leave-models-out deferral curves of every router.

Protocol (the evaluation contract of :mod:`zerorouter_integrations.evaluation`, run several times):
for each table and each split seed ``s`` the test prompts are ``split_by_prompt(table, seed=s)``
(20 %, identical questions on one side) and the new models are ``split_by_model(table, n_new,
seed=s)`` drawn among the *pool-eligible* models (a score and a cost on ≥ 99 % of the prompts; a
held-out model outside the evaluated pool would test nothing). Every router is fit on the training
prompts of the known models only, picks ``--anchors`` (100) anchor prompts before seeing any new
model, onboards each new model from its scores on those anchors, and is scored on the test prompts
over the full pool. Numbers are means over the splits. Embeddings come from
:class:`~zerorouter_integrations.encoder.QueryEncoder` with the shipped router's settings
(``ROUTING_ENCODER``: int8 MiniLM, first 64 tokens; ``--max-seq-length`` / ``--precision`` change them) with a disk cache in
``~/.cache/zerorouter/embeddings`` (reruns skip the encoder).

Columns
-------
Main table (one per routing table)

* ``AUDC (%)``: area under the deferral curve (upper hull of the router's (mean cost, mean quality)
  operating points as λ in ``argmax Q̂ − λ Ĉ`` sweeps), divided by the cost range from the cheapest
  to the dearest single model of the pool; the mean quality the router offers over that cost range.
  Higher is better.
* ``± per split``: the AUDC of each split, so the spread across splits is visible.
* ``Δ vs zerorouter (pp)``: mean over splits of ``AUDC(router) − AUDC(zerorouter)`` in percentage
  points, ``± SD``: its paired bootstrap standard deviation over test prompts (200 resamples of each
  split's test prompts; both curves are recomputed from the same resample, the per-λ choices held
  fixed). A difference within one SD is a tie.
* ``QNC``: least cost at which the curve reaches the best single model's quality, as a fraction of
  that model's cost (lower is better; ``never`` when it does not get there). ``[k/n]`` says it was
  reached on k of n splits, and the value is the mean over those k.
* ``cost @95 %``: the same for 95 % of the best single model's quality.
* ``best q (%)``: the best mean quality anywhere on the curve.
* ``APGR``: RouteLLM's average performance gap recovered between the cheapest and the best single
  model (0.5 = random mixing, 1 = the best model's quality at every cost).
* ``fit (s)``: wall time to fit the router and onboard the new models (one split).

Reference rows: ``random mix`` (per-query random choice between the cheapest and the best single
model), ``oracle`` (per prompt, the cheapest model with the top score), and the best single model.

Anchor-efficiency table: each router's AUDC when the new models are onboarded from 10, 20, 50 or 100
anchors (the router's own anchor selection), or from ``full data``: every training prompt the new
model has a score on (the space itself is the same fitted one). ``mean ± sd`` is over anchor seeds
(each seed's value is the mean over splits); ``Δ vs full (%)`` is the relative AUDC change of
zerorouter against its full-data AUDC.

Anchor-selection table: zerorouter's AUDC, on the same fitted spaces, when the new models' anchors
are picked by each of the IRT space's methods (``dopt``: greedy D-optimal design; ``vopt``: greedy
V-optimal design for the serve-time logit; ``kcenter``: farthest-point cover; ``random``: uniform),
mean ± sd over anchor seeds (only ``random`` and tie-breaking depend on the seed).

Feature table: every router's AUDC on the first split with the prompt features switched: the
embedding alone; the default (embedding + cheap text features,
:func:`~zerorouter_integrations.features.text_features`); and the default plus an embedding of the
prompt's last 400 characters (MiniLM reads only the first 64 tokens, and a few-shot prompt puts its
question at the end).

Figures (``benchmarks/out/``): ``quality_<table>.png`` (deferral curves, split 0) and
``anchors.png`` (AUDC against the number of anchors).

Run: ``.venv/bin/python benchmarks/quality.py [--quick] [--tables zeroeval,routerbench_subset] [--first-seed 0]``
(``--first-seed 10`` evaluates on fresh splits 10–12; ``--tables llmrouter_ulab`` adds a third table.)
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import zerorouter_integrations  # noqa: F401  (offline environment first)
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.encoder import ROUTING_ENCODER
from zerorouter_integrations.evaluation import (
    POOL_COVERAGE,
    ROUTERS,
    EvalContext,
    EvaluationReport,
    evaluate,
    fit_and_onboard,
)
from zerorouter_integrations.features import PromptFeaturizer
from zerorouter_integrations.latent.base import LatentSpace
from zerorouter_integrations.latent.stacking import cross_entropy
from zerorouter_integrations.metrics import Curve, audc, curve_from_choices, sweep_choices, upper_hull
from zerorouter_integrations.predictor import QualityPredictor
from zerorouter_integrations.tables import RoutingTable, Split, load_table, split_by_model, split_by_prompt

__all__ = [
    "SplitRun",
    "anchor_efficiency",
    "anchor_methods",
    "bootstrap_differences",
    "main",
    "make_features",
    "make_splits",
    "onboard_variant",
    "run_split",
    "table_embeddings",
]

DATA = find_data_dir()
OUT = Path(__file__).resolve().parent / "out"
#: Held-out ("new") models per split, by table.
N_NEW = {
    "zeroeval": 3,
    "routerbench_subset": 2,
    "llmrouter_ulab": 2,
    "alpacaeval": 3,
    "routellm_evals:mtbench": 1,
    "routellm_evals:gsm8k": 1,
    "routerdc_7models": 2,
}
#: Every shared table (``folder:task`` selects one task of a folder), in the order they are reported.
ALL_TABLES = (
    "zeroeval",
    "routerbench_subset",
    "llmrouter_ulab",
    "alpacaeval",
    "routellm_evals:mtbench",
    "routellm_evals:gsm8k",
    "routerdc_7models",
)
#: Tables without usable costs: only the quality of the predictions is evaluated (quality table).
QUALITY_ONLY = ("routerdc_7models",)
BASELINES = ("unirouter-kmeans", "unirouter-learned-map", "knn", "logreg")
FEATURE_VARIANTS = ("embedding", "default", "head+tail")
ROUTER_NAMES = ("zerorouter", "unirouter-kmeans", "unirouter-learned-map", "knn", "logreg")
REFERENCE = "zerorouter"
_PREFIX = "bench:"

Factory = Callable[[int], LatentSpace]


# ---------------------------------------------------------------------------------------------- data
def load_named(name: str) -> RoutingTable:
    """A shared table by name; ``folder:task`` keeps one task of the folder (e.g. ``routellm_evals:mtbench``)."""
    folder, _, task = name.partition(":")
    table = load_table(DATA / folder)
    if task:
        ids = table.prompts.loc[table.prompts["task"] == task, "prompt_id"].tolist()
        if not ids:
            raise ValueError(f"table {folder!r} has no task {task!r}")
        table = table.subset(prompt_ids=ids)
        table.name = name
    return table


def no_router_audc(report: EvaluationReport) -> float:
    """AUDC of the no-router frontier: the upper hull of the single models (random mixes of any two)."""
    pts = np.array([[v["cost"], v["quality"]] for v in report.references["single_models"].values()])
    return audc(Curve(points=pts, hull=upper_hull(pts)), *report.cost_range)


def table_embeddings(table: RoutingTable, encoder: Any, texts: Sequence[str] | None = None) -> np.ndarray:
    """Embeddings of the table's prompts (or of ``texts``) from ``encoder`` (disk-cached by the encoder)."""
    return np.asarray(encoder.encode(list(table.texts() if texts is None else texts), show_progress=False))


def make_features(
    table: RoutingTable, encoder: Any, *, variant: str = "default", tail_chars: int = 400
) -> np.ndarray:
    """Feature matrix of every prompt in table order.

    ``variant``: ``"default"`` (the package's :class:`PromptFeaturizer`: embedding of the prompt's
    first 128 tokens + cheap text features), ``"embedding"`` (embedding only), ``"head+tail"`` (the
    default plus the embedding of the last ``tail_chars`` characters, which hold the question of a
    long few-shot prompt).
    """
    texts = table.texts()
    if variant == "default":
        return PromptFeaturizer(encoder).transform(texts)
    emb = table_embeddings(table, encoder)
    if variant == "embedding":
        return PromptFeaturizer(encoder, use_text_features=False).transform(texts, emb)
    if variant == "head+tail":
        tail = table_embeddings(table, encoder, [t[-tail_chars:] for t in texts])
        X = PromptFeaturizer(encoder).transform(texts, emb)
        return np.hstack([X[:, : emb.shape[1]], tail, X[:, emb.shape[1] :]])
    raise ValueError(f"unknown feature variant {variant!r}; expected 'default', 'embedding' or 'head+tail'")


def pool_eligible(table: RoutingTable) -> list[str]:
    """Models with a score and a cost on ≥ POOL_COVERAGE of all prompts (candidates for holding out)."""
    S, C = table.scores(), table.costs()
    have = (~np.isnan(S) & ~np.isnan(C)).mean(axis=0)
    return [m for m, h in zip(table.model_names, have) if h >= POOL_COVERAGE]


def make_splits(table: RoutingTable, n_splits: int, n_new: int, *, first_seed: int = 0) -> list[Split]:
    """``n_splits`` leave-models-out splits: prompt split and held-out models both drawn with seed ``s``."""
    candidates = pool_eligible(table)
    out = []
    for s in range(first_seed, first_seed + n_splits):
        test = split_by_prompt(table, seed=s).test_prompt_ids
        out.append(Split(test, split_by_model(table, n_new=n_new, seed=s, candidates=candidates)))
    return out


def make_quality_splits(
    table: RoutingTable, n_splits: int, n_new: int, *, first_seed: int = 0
) -> list[Split]:
    """Like :func:`make_splits` for a table without costs: new models drawn among all models."""
    out = []
    for s in range(first_seed, first_seed + n_splits):
        test = split_by_prompt(table, seed=s).test_prompt_ids
        out.append(Split(test, split_by_model(table, n_new=n_new, seed=s)))
    return out


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class SplitRun:
    """One evaluated split: the report plus what the bootstrap and the anchor study need."""

    seed: int
    report: EvaluationReport
    Y: np.ndarray  # (n_eval × pool) true scores on the evaluated test prompts
    C: np.ndarray  # (n_eval × pool) true costs
    choices: dict[str, np.ndarray] = field(default_factory=dict)  # router → (s × n_eval) choices
    preds: dict[str, QualityPredictor] = field(default_factory=dict)
    ctx: EvalContext | None = None


def _curve(choices: np.ndarray, Y: np.ndarray, C: np.ndarray) -> Curve:
    pts = curve_from_choices(choices, Y, C)
    return Curve(points=pts, hull=upper_hull(pts))


def _choices(pred: QualityPredictor, ctx: EvalContext) -> np.ndarray:
    P = pred.predict(ctx.features[ctx.eval_idx], input_tokens=ctx.tokens_all[ctx.eval_idx], models=ctx.pool)
    return sweep_choices(P.quality, P.cost_usd)


def run_split(
    table: RoutingTable,
    split: Split,
    X: np.ndarray,
    routers: Mapping[str, Factory],
    *,
    seed: int,
    anchors: int = 100,
    keep_preds: bool = True,
) -> SplitRun:
    """Evaluate ``routers`` (name → space factory) on one split through :func:`evaluation.evaluate`.

    Each router runs as an ``extra_routers`` entry that does exactly what the built-in path does
    (``fit_and_onboard`` then the λ sweep), and also keeps its per-λ choices and fitted predictor.
    """
    state: dict[str, Any] = {"choices": {}, "preds": {}, "ctx": None, "Y": None, "C": None}

    def wrap(name: str, factory: Factory) -> Callable[..., Any]:
        def fn(ctx: EvalContext, *, Y: np.ndarray, C: np.ndarray) -> tuple[Curve, dict]:
            pred = fit_and_onboard(ctx, factory(ctx.seed))
            ch = _choices(pred, ctx)
            state["choices"][name] = ch
            if keep_preds:
                state["preds"][name] = pred
            state.update(ctx=ctx, Y=Y, C=C)
            return _curve(ch, Y, C), {}

        return fn

    extra = {_PREFIX + name: wrap(name, f) for name, f in routers.items()}
    report = evaluate(
        table, split, routers=list(extra), anchors=anchors, seed=seed, features=X, extra_routers=extra
    )
    report.routers = {name[len(_PREFIX) :]: r for name, r in report.routers.items()}
    for r in report.routers.values():
        r.name = r.name[len(_PREFIX) :] if r.name.startswith(_PREFIX) else r.name
    return SplitRun(
        seed=seed,
        report=report,
        Y=state["Y"],
        C=state["C"],
        choices=state["choices"],
        preds=state["preds"],
        ctx=state["ctx"],
    )


def _audc_weighted(choices: np.ndarray, Y: np.ndarray, C: np.ndarray, W: np.ndarray) -> np.ndarray:
    """AUDC of fixed per-λ ``choices`` under each column of prompt weights ``W`` (n × B)."""
    rows = np.arange(Y.shape[0])
    Yq = np.stack([Y[rows, ch] for ch in choices])  # (s, n)
    Cq = np.stack([C[rows, ch] for ch in choices])
    qs, cs = Yq @ W, Cq @ W  # (s, B)
    single_c = C.T @ W  # (m, B)
    out = np.empty(W.shape[1])
    for b in range(W.shape[1]):
        pts = np.column_stack([cs[:, b], qs[:, b]])
        out[b] = audc(
            Curve(points=pts, hull=upper_hull(pts)),
            float(single_c[:, b].min()),
            float(single_c[:, b].max()),
            n_grid=801,
        )
    return out


def bootstrap_differences(
    runs: Sequence[SplitRun], *, reference: str = REFERENCE, n_boot: int = 200, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """Paired bootstrap of ``AUDC(router) − AUDC(reference)`` over test prompts, averaged over splits.

    Returns router → (mean difference over splits, bootstrap SD of that mean), in AUDC units.
    """
    rng = np.random.default_rng(seed)
    names = [n for n in runs[0].choices if n != reference]
    boot = {n: np.zeros(n_boot) for n in names}
    point = {n: 0.0 for n in names}
    for run in runs:
        n = run.Y.shape[0]
        W = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).T / n  # (n, B)
        ref = _audc_weighted(run.choices[reference], run.Y, run.C, W)
        for name in names:
            if name not in run.choices:
                continue
            boot[name] += (_audc_weighted(run.choices[name], run.Y, run.C, W) - ref) / len(runs)
            point[name] += (run.report.routers[name].audc - run.report.routers[reference].audc) / len(runs)
    return {n: (point[n], float(np.std(boot[n], ddof=1))) for n in names}


def onboard_variant(
    pred: QualityPredictor, ctx: EvalContext, anchors: int | None, anchor_seed: int
) -> QualityPredictor:
    """A copy of a fitted predictor whose new models are re-onboarded from ``anchors`` anchors.

    Mirrors the onboarding step of :func:`evaluation.fit_and_onboard` on the same fitted space;
    ``anchors=None`` onboards from every training prompt the new model has a score on (full data).
    """
    out = copy.copy(pred)
    out.profiles_ = dict(pred.profiles_)
    tr = ctx.train_idx
    Z_train = out.space_.training_coordinates()
    if anchors is None:
        chosen = np.arange(len(tr))
    else:
        chosen = out.space_.select_anchors(Z_train, anchors, seed=anchor_seed)
    rows = tr[chosen]
    for name in ctx.pool:
        if name in ctx.known:
            continue
        j = ctx.models.index(name)
        y = ctx.S_all[rows, j]
        ok = ~np.isnan(y)
        out.onboard(
            name,
            Z_train[chosen][ok],
            y[ok],
            costs=ctx.C_all[rows, j][ok],
            input_tokens=ctx.tokens_all[rows][ok],
            prices=ctx.prices.get(name),
        )
    return out


def anchor_efficiency(
    runs: Sequence[SplitRun],
    *,
    anchor_counts: Sequence[int] = (10, 20, 50, 100),
    anchor_seeds: Sequence[int] = (0, 1, 2),
    routers: Sequence[str] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """router → {"10": per-seed AUDC (mean over splits), ..., "full": AUDC}."""
    names = list(routers) if routers is not None else list(runs[0].preds)
    out: dict[str, dict[str, np.ndarray]] = {n: {} for n in names}
    for name in names:
        for k in anchor_counts:
            vals = np.zeros(len(anchor_seeds))
            for si, s in enumerate(anchor_seeds):
                for run in runs:
                    pred = onboard_variant(run.preds[name], run.ctx, k, anchor_seed=s)
                    ch = _choices(pred, run.ctx)
                    vals[si] += _audc_of(run, ch) / len(runs)
            out[name][str(k)] = vals
        full = 0.0
        for run in runs:
            ch = _choices(onboard_variant(run.preds[name], run.ctx, None, anchor_seed=0), run.ctx)
            full += _audc_of(run, ch) / len(runs)
        out[name]["full"] = np.array([full])
    return out


def anchor_methods(
    runs: Sequence[SplitRun],
    *,
    methods: Sequence[str] = ("dopt", "vopt", "kcenter", "random"),
    anchor_counts: Sequence[int] = (10, 20, 100),
    anchor_seeds: Sequence[int] = (0, 1, 2),
    router: str = REFERENCE,
) -> dict[str, dict[str, np.ndarray]]:
    """zerorouter's AUDC by anchor-selection method (same fitted space): method → {count: per-seed AUDC}."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        out[method] = {}
        for k in anchor_counts:
            vals = np.zeros(len(anchor_seeds))
            for si, s in enumerate(anchor_seeds):
                for run in runs:
                    base = run.preds[router]
                    pred = copy.copy(base)
                    pred.space_ = copy.copy(base.space_)
                    pred.space_.anchor_method = method
                    onboarded = onboard_variant(pred, run.ctx, k, anchor_seed=s)
                    vals[si] += _audc_of(run, _choices(onboarded, run.ctx)) / len(runs)
            out[method][str(k)] = vals
    return out


def _audc_of(run: SplitRun, choices: np.ndarray) -> float:
    return audc(_curve(choices, run.Y, run.C), *run.report.cost_range)


def quality_only_split(
    table: RoutingTable,
    split: Split,
    X: np.ndarray,
    routers: Mapping[str, Factory],
    *,
    seed: int,
    anchors: int,
) -> dict[str, dict[str, float]]:
    """Prediction quality on a table without usable costs (leave-models-out, as :func:`run_split`).

    Per router: held-out cross-entropy of the predicted scores over every observed (test prompt,
    model) pair (``ce``), and the mean true score of the model with the highest predicted score per
    test prompt (``top1``, what a router with free models would get). References: the best single
    model's mean (``best``) and the oracle (``oracle``) on the same prompts.
    """
    ids = table.prompt_ids
    pos = {p: i for i, p in enumerate(ids)}
    test = np.array(sorted(pos[p] for p in split.test_prompt_ids))
    train = np.setdiff1d(np.arange(len(ids)), test)
    models = table.model_names
    S = table.scores(ids, models)
    ctx = EvalContext(
        table=table,
        features=X,
        train_idx=train,
        eval_idx=test,
        models=models,
        known=[m for m in models if m not in set(split.new_models)],
        new_models=list(split.new_models),
        pool=models,
        S_all=S,
        C_all=np.full(S.shape, np.nan),
        tokens_all=np.ones(len(ids)),
        prices={m: (1.0, 1.0) for m in models},
        anchors=anchors,
        seed=seed,
    )
    Y = S[test]
    complete = ~np.isnan(Y).any(axis=1)
    out: dict[str, dict[str, float]] = {}
    for name, factory in routers.items():
        t0 = time.perf_counter()
        pred = fit_and_onboard(ctx, factory(seed))
        Q = pred.predict(X[test], input_tokens=ctx.tokens_all[test], models=models).quality
        obs = ~np.isnan(Y)
        rows = np.flatnonzero(complete)
        out[name] = {
            "ce": cross_entropy(Q[obs], Y[obs]),
            "top1": float(Y[rows, Q[rows].argmax(axis=1)].mean()),
            "fit_s": time.perf_counter() - t0,
        }
    Yc = Y[complete]
    out["references"] = {"best": float(Yc.mean(axis=0).max()), "oracle": float(Yc.max(axis=1).mean())}
    return out


def quality_only_table(
    name: str, runs: Sequence[dict[str, dict[str, float]]], splits: Sequence[Split]
) -> str:
    refs = [r["references"] for r in runs]
    lines = [
        f"### `{name}` (quality only: no usable costs): {len(runs)} split(s), "
        f"{np.mean([len(s.test_prompt_ids) for s in splits]):.0f} test prompts per split",
        "",
        "held-out models: "
        + "; ".join(f"split {i}: {', '.join(s.new_models)}" for i, s in enumerate(splits)),
        "",
        "| router | held-out cross-entropy | per split | top-1 quality (%) | per split | fit (s) |",
        "| --- | ---: | --- | ---: | --- | ---: |",
    ]
    for router in runs[0]:
        if router == "references":
            continue
        ce = [r[router]["ce"] for r in runs]
        t1 = [r[router]["top1"] for r in runs]
        lines.append(
            f"| {router} | {np.mean(ce):.4f} | {' / '.join(f'{v:.4f}' for v in ce)} | {100 * np.mean(t1):.1f} | "
            f"{' / '.join(f'{100 * v:.1f}' for v in t1)} | {np.mean([r[router]['fit_s'] for r in runs]):.1f} |"
        )
    best = [r["best"] for r in refs]
    lines += [
        f"| best single | | | {100 * np.mean(best):.1f} | {' / '.join(f'{100 * v:.1f}' for v in best)} | |",
        f"| oracle | | | {100 * np.mean([r['oracle'] for r in refs]):.1f} | | |",
        "",
    ]
    return "\n".join(lines)


def acceptance_rows(name: str, runs: Sequence[SplitRun], diffs: Mapping[str, tuple[float, float]]) -> str:
    """One row of the acceptance summary: zerorouter vs its best baseline, the no-router frontier, reach."""
    reps = [r.report for r in runs]
    zr = np.mean([r.routers[REFERENCE].audc for r in reps])
    base = [b for b in BASELINES if b in reps[0].routers]
    best_b = max(base, key=lambda b: np.mean([r.routers[b].audc for r in reps])) if base else None
    nr = np.mean([no_router_audc(r) for r in reps])
    rm = np.mean([r.references["random_mix_audc"] for r in reps])
    bsq = [r.references["best_single"]["quality"] for r in reps]
    reach = sum(r.routers[REFERENCE].best_quality >= q - 1e-9 for r, q in zip(reps, bsq))
    if best_b is None:
        cells = ["–", "–", "–"]
        ok = zr > nr
    else:
        d, sd = diffs[best_b]  # AUDC(best baseline) − AUDC(zerorouter)
        b_audc = np.mean([r.routers[best_b].audc for r in reps])
        cells = [
            f"{best_b} {100 * b_audc:.1f}",
            f"{-100 * d:+.2f} ± {100 * sd:.2f}",
            "yes" if -d >= -sd else "no",
        ]
        ok = -d >= -sd and zr > nr
    return (
        f"| {name} | {100 * zr:.1f} | {' | '.join(cells)} | {100 * nr:.1f} | {100 * rm:.1f} | "
        f"{100 * np.mean(bsq):.1f} | {reach}/{len(reps)} | {'yes' if ok else 'no'} |"
    )


ACCEPTANCE_HEAD = (
    "| table | zerorouter AUDC | best baseline AUDC | Δ zerorouter − baseline (pp) ± SD | within 1 SD | "
    "no-router frontier | random mix | best single q | reaches best single | holds |\n"
    "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | --- |"
)


# ---------------------------------------------------------------------------------------------- output
def _fmt(v: float | None, pct: bool = False, digits: int = 3) -> str:
    if v is None:
        return "never"
    return f"{100 * v:.1f}" if pct else f"{v:.{digits}f}"


def _mean_reached(values: Sequence[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "never"
    s = f"{np.mean(got):.3f}"
    return s if len(got) == len(values) else f"{s} [{len(got)}/{len(values)}]"


def main_table(name: str, runs: Sequence[SplitRun], diffs: Mapping[str, tuple[float, float]]) -> str:
    rep0 = runs[0].report
    lines = [
        f"### `{name}`: {len(runs)} split(s), {np.mean([r.report.n_test_prompts for r in runs]):.0f} test prompts "
        f"and {len(rep0.pool)} pool models per split, {len(rep0.new_models)} new models onboarded from "
        f"{rep0.anchors} anchors",
        "",
        "held-out models: " + "; ".join(f"split {r.seed}: {', '.join(r.report.new_models)}" for r in runs),
        "",
        "| router | AUDC (%) | per split | Δ vs zerorouter (pp) ± SD | QNC | cost @95 % | best q (%) | APGR | fit (s) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for router in runs[0].report.routers:
        rs = [r.report.routers[router] for r in runs]
        a = [x.audc for x in rs]
        d = "–" if router == REFERENCE else f"{100 * diffs[router][0]:+.2f} ± {100 * diffs[router][1]:.2f}"
        ap = [x.apgr for x in rs if x.apgr is not None]
        lines.append(
            f"| {router} | {100 * np.mean(a):.1f} | {' / '.join(f'{100 * v:.1f}' for v in a)} | {d} | "
            f"{_mean_reached([x.qnc for x in rs])} | {_mean_reached([x.cost_at_95 for x in rs])} | "
            f"{100 * np.mean([x.best_quality for x in rs]):.1f} | {np.mean(ap) if ap else float('nan'):.3f} | "
            f"{np.mean([x.fit_seconds for x in rs]):.1f} |"
        )
    rm = [r.report.references["random_mix_audc"] for r in runs]
    orc = [r.report.references["oracle_audc"] for r in runs]
    nr = [no_router_audc(r.report) for r in runs]
    bsq = [r.report.references["best_single"]["quality"] for r in runs]
    bs_names = sorted({r.report.references["best_single"]["model"] for r in runs})
    lines += [
        f"| random mix | {100 * np.mean(rm):.1f} | {' / '.join(f'{100 * v:.1f}' for v in rm)} | | 1.000 | | "
        f"{100 * np.mean(bsq):.1f} | 0.500 | |",
        f"| no-router frontier | {100 * np.mean(nr):.1f} | {' / '.join(f'{100 * v:.1f}' for v in nr)} | | | | | | |",
        f"| oracle | {100 * np.mean(orc):.1f} | {' / '.join(f'{100 * v:.1f}' for v in orc)} | | | | | | |",
        f"| best single ({', '.join(bs_names)}) | | | | 1.000 | | {100 * np.mean(bsq):.1f} | | |",
        "",
    ]
    return "\n".join(lines)


def anchor_table(results: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> str:
    """One row per anchor count, one column group per table."""
    tables = list(results)
    routers = list(next(iter(results.values())))
    head = (
        "| anchors | "
        + " | ".join(
            f"{t}: zerorouter AUDC (%) | Δ vs full (%) | "
            + " | ".join(f"{r}" for r in routers if r != REFERENCE)
            for t in tables
        )
        + " |"
    )
    ncol = 1 + sum(2 + len(routers) - 1 for _ in tables)
    lines = [head, "|" + " --- |" + " ---: |" * (ncol - 1)]
    keys = list(next(iter(results.values()))[REFERENCE])
    for key in keys:
        cells = [key if key != "full" else "full data"]
        for t in tables:
            zr = results[t][REFERENCE]
            v = zr[key]
            full = float(zr["full"][0])
            sd = f" ± {100 * np.std(v, ddof=1):.2f}" if len(v) > 1 else ""
            cells.append(f"{100 * np.mean(v):.2f}{sd}")
            cells.append(f"{100 * (np.mean(v) - full) / full:+.2f}" if key != "full" else "0")
            for r in routers:
                if r != REFERENCE:
                    cells.append(f"{100 * np.mean(results[t][r][key]):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def method_table(results: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]]) -> str:
    tables = list(results)
    methods = list(next(iter(results.values())))
    counts = list(next(iter(results.values()))[methods[0]])
    lines = [
        "| method | " + " | ".join(f"{t}: {c} anchors" for t in tables for c in counts) + " |",
        "| --- |" + " ---: |" * (len(tables) * len(counts)),
    ]
    for mth in methods:
        cells = []
        for t in tables:
            for c in counts:
                v = results[t][mth][c]
                cells.append(
                    f"{100 * np.mean(v):.2f}" + (f" ± {100 * np.std(v, ddof=1):.2f}" if len(v) > 1 else "")
                )
        lines.append(f"| {mth} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_anchors(results: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]], path: Path) -> Path:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zerorouter_integrations._io import atomic_write_bytes

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.2), squeeze=False)
    for ax, (tname, per_router) in zip(axes[0], results.items()):
        for _i, (router, vals) in enumerate(per_router.items()):
            ks = [k for k in vals if k != "full"]
            x = [int(k) for k in ks]
            m = [100 * np.mean(vals[k]) for k in ks]
            s = [100 * np.std(vals[k]) for k in ks]
            line = ax.errorbar(x, m, yerr=s, marker="o", ms=3, capsize=2, label=router)
            ax.axhline(100 * float(vals["full"][0]), ls=":", lw=1, color=line[0].get_color())
        ax.set_xscale("log")
        ax.set_xticks([10, 20, 50, 100])
        ax.set_xticklabels(["10", "20", "50", "100"])
        ax.set_xlabel("anchors per new model (dotted: full-data onboarding)")
        ax.set_ylabel("AUDC (%)")
        ax.set_title(tname)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------- main
def _encoder(max_seq_length: int, precision: str) -> Any:
    from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir

    return QueryEncoder(
        max_seq_length=max_seq_length, precision=precision, cache_dir=default_cache_dir() / "embeddings"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--tables", default=",".join(ALL_TABLES), help="comma-separated; folder:task keeps one task"
    )
    p.add_argument("--splits", type=int, default=3, help="number of prompt-split / held-out-model seeds")
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + splits - 1")
    p.add_argument("--anchors", type=int, default=100)
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--anchor-seeds", type=int, default=3)
    p.add_argument("--routers", default=",".join(ROUTER_NAMES))
    p.add_argument("--no-features-table", action="store_true")
    p.add_argument(
        "--no-anchor-tables", action="store_true", help="skip the anchor-efficiency and -method tables"
    )
    p.add_argument(
        "--quick", action="store_true", help="1 split, 50 resamples, 1 anchor seed, no feature table"
    )
    p.add_argument(
        "--max-seq-length",
        type=int,
        default=ROUTING_ENCODER["max_seq_length"],
        help="encoder truncation in tokens (default: the shipped router's)",
    )
    p.add_argument(
        "--precision",
        default=ROUTING_ENCODER["precision"],
        choices=["float32", "int8"],
        help="encoder precision (default: the shipped router's)",
    )
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)
    if args.quick:
        args.splits, args.bootstrap, args.anchor_seeds, args.no_features_table = 1, 50, 1, True
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # small BLAS calls: threads only add contention on a shared 2-core machine
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    routers = {n: ROUTERS[n] for n in args.routers.split(",")}
    enc = _encoder(args.max_seq_length, args.precision)
    t_start = time.perf_counter()
    anchor_results: dict[str, Any] = {}
    method_results: dict[str, Any] = {}
    feature_rows: dict[str, dict[str, dict[str, float]]] = {}
    acceptance: list[str] = []
    print("## Routing quality: leave-models-out\n")
    for tname in args.tables.split(","):
        table = load_named(tname)
        t0 = time.perf_counter()
        X = make_features(table, enc)
        t_feat = time.perf_counter() - t0
        if tname in QUALITY_ONLY:
            splits = make_quality_splits(table, args.splits, N_NEW.get(tname, 2), first_seed=args.first_seed)
            qruns = [
                quality_only_split(table, sp, X, routers, seed=s, anchors=args.anchors)
                for sp, s in zip(splits, range(args.first_seed, args.first_seed + args.splits))
            ]
            print(quality_only_table(tname, qruns, splits))
            print(f"(features {t_feat:.1f} s; table done in {time.perf_counter() - t0:.0f} s)\n", flush=True)
            continue
        runs = []
        seeds = range(args.first_seed, args.first_seed + args.splits)
        for split, s in zip(
            make_splits(table, args.splits, N_NEW.get(tname, 2), first_seed=args.first_seed), seeds
        ):
            runs.append(run_split(table, split, X, routers, seed=s, anchors=args.anchors))
        diffs = bootstrap_differences(runs, n_boot=args.bootstrap)
        print(main_table(tname, runs, diffs))
        print(f"(features {t_feat:.1f} s; table done in {time.perf_counter() - t0:.0f} s)\n", flush=True)
        runs[0].report.plot(out_dir / f"quality_{tname.replace(':', '_')}.png")
        if REFERENCE in routers:
            acceptance.append(acceptance_rows(tname, runs, diffs))
        if not args.no_anchor_tables:
            anchor_results[tname] = anchor_efficiency(runs, anchor_seeds=range(args.anchor_seeds))
            if REFERENCE in routers:
                method_results[tname] = anchor_methods(runs, anchor_seeds=range(args.anchor_seeds))
        if not args.no_features_table:
            feature_rows[tname] = {}
            for variant in FEATURE_VARIANTS:
                if variant == "default":  # the first split with the default features is runs[0]
                    run = runs[0]
                else:
                    run = run_split(
                        table,
                        make_splits(table, 1, N_NEW.get(tname, 2), first_seed=args.first_seed)[0],
                        make_features(table, enc, variant=variant),
                        routers,
                        seed=args.first_seed,
                        anchors=args.anchors,
                        keep_preds=False,
                    )
                feature_rows[tname][variant] = {r: v.audc for r, v in run.report.routers.items()}
        for run in runs:  # free the fitted predictors
            run.preds.clear()
    if acceptance:
        print(
            "## Acceptance (issue 15): zerorouter against its best simple baseline and the no-router frontier\n"
        )
        print(ACCEPTANCE_HEAD)
        print("\n".join(acceptance) + "\n")
    if anchor_results:
        print("## Anchor efficiency: AUDC (%) by anchors per new model (mean ± sd over anchor seeds)\n")
        print(anchor_table(anchor_results))
        plot_anchors(anchor_results, out_dir / "anchors.png")
    if method_results:
        print(
            "## Anchor selection: zerorouter AUDC (%) by method and anchors (mean ± sd over anchor seeds)\n"
        )
        print(method_table(method_results))
    if feature_rows:
        print(f"## Prompt features: AUDC (%) on split {args.first_seed}\n")
        heads = {
            "embedding": "embedding only",
            "default": "embedding + text features (default)",
            "head+tail": "+ embedding of the last 400 chars",
        }
        for tname, rows in feature_rows.items():
            print(f"`{tname}`\n")
            print("| router | " + " | ".join(heads[v] for v in FEATURE_VARIANTS) + " |")
            print("| --- |" + " ---: |" * len(FEATURE_VARIANTS))
            for r in rows["default"]:
                print(f"| {r} | " + " | ".join(f"{100 * rows[v][r]:.1f}" for v in FEATURE_VARIANTS) + " |")
            print()
    print(f"total {time.perf_counter() - t_start:.0f} s; figures in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
