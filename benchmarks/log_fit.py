"""Learning from your own traffic (issue 18's acceptance): does ``fit --from-logs`` beat the shipped prior?

Protocol, per table and split seed ``s`` (3 splits by default):

1. The prompts of the table that the shipped default was *not* fit on (``build.held_out_prompt_ids``)
   are split 50/50 by question group (seed ``s``) into *logged traffic* and *evaluation prompts*.
2. A deployment of today's default (the shipped artifact, its default policy: the cheapest model
   keeping 95 % of the reference's predicted quality, over the table's models) serves the logged
   prompts: one model per prompt, logged with the table's cost and tokens; 30 % of the calls get
   feedback (the table's score for that call).
3. ``fit_from_logs`` (what ``zerorouter fit --from-logs`` runs) refines the prior with those logs.
4. Prior and refined router are scored on the evaluation prompts over the table's full pool with the
   true outcomes: AUDC of the deferral curve (as ``zerorouter eval``). ``Δ`` is refined − prior, its
   SD the paired bootstrap SD over evaluation prompts (200 resamples, per-λ choices held fixed).

Also printed: what cross-validation chose (map penalty λ; κ: prior widening, or ``eb`` for the
empirical-Bayes bias offsets, with their ``τ̂``), the held-out log loss of the logged outcomes and
the inverse-propensity (IPS) estimate of refined − prior policy value with its SD (the report ``fit
--from-logs`` prints, on 20 % of the scored calls; the deployment logs its mix's propensities).

``--traffic task`` builds the case where the deployment's traffic is *not* the prior's training
mix: split ``s`` serves only the held-out prompts of the table's ``s``-th task (tasks in name order),
logged and evaluated within that task; ``--traffic all`` (default) serves the held-out prompts as
they come (the same mix as the prior's training prompts).

    python benchmarks/log_fit.py [--tables routerbench_subset,zeroeval,llmrouter_ulab] [--splits 3] [--traffic all|task]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact  # noqa: E402
from zerorouter_integrations.data import find_data_dir  # noqa: E402
from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir  # noqa: E402
from zerorouter_integrations.features import PromptFeaturizer  # noqa: E402
from zerorouter_integrations.fromlogs import fit_from_logs  # noqa: E402
from zerorouter_integrations.tables import load_table  # noqa: E402
from zerorouter_integrations.testing.logsim import (  # noqa: E402
    complete_pool,
    heldout_audc,
    simulate_deployment,
    split_log_eval,
)


def traffic_prompts(table, held_out: list[str], traffic: str, seed: int) -> tuple[list[str], str]:
    """The held-out prompts the deployment serves, and a label: all, or one task's (split ``seed``)."""
    if traffic == "all":
        return held_out, "all"
    task = table.prompts.set_index("prompt_id").loc[held_out, "task"]
    names = sorted(task.unique())
    name = names[seed % len(names)]
    return [p for p, t in zip(held_out, task) if t == name], name


def run_split(table, prior, featurizer, held_out, seed: int, feedback: float, traffic: str) -> dict:
    prompts, label = traffic_prompts(table, held_out, traffic, seed)
    pool, usable = complete_pool(table, prompts, list(prior.predictor.profiles_))
    logged, evaluated = split_log_eval(table, usable, seed=seed)
    calls, scores = simulate_deployment(
        table, prior, logged, pool, featurizer, feedback_fraction=feedback, seed=seed
    )
    t0 = time.perf_counter()
    refined, report, info = fit_from_logs(
        calls, scores, prior=prior, featurizer=featurizer, seed=seed, pool=pool
    )
    fit_s = time.perf_counter() - t0
    before = heldout_audc(prior, table, evaluated, pool, featurizer)
    after = heldout_audc(refined, table, evaluated, pool, featurizer)
    rng = np.random.default_rng(seed)
    n = len(evaluated)
    diffs = [after.audc(r) - before.audc(r) for r in (rng.integers(0, n, n) for _ in range(200))]
    ll = report.metrics.get("log loss (logged model)", {})
    ips = report.metrics.get("IPS value of own choice", {})
    return {
        "traffic": label,
        "ips": (ips.get("diff", math.nan), ips.get("diff_sd", math.nan)),
        "tau": info.eb_tau,
        "n_logged": len(calls),
        "n_feedback": len(scores),
        "n_eval": n,
        "pool": len(pool),
        "prior": before.audc(),
        "refined": after.audc(),
        "sd": float(np.std(diffs, ddof=1)),
        "lam": info.map_penalty,
        "kappa": info.prior_widening,
        "ll_prior": ll.get("prior", math.nan),
        "ll_refined": ll.get("refined", math.nan),
        "fit_s": fit_s,
        "logged_models": len({c.model for c in calls}),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data")
    ap.add_argument("--tables", default="routerbench_subset")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--feedback", type=float, default=0.3, help="share of calls with feedback")
    ap.add_argument("--traffic", choices=("all", "task"), default="all")
    args = ap.parse_args(argv)

    prior = RouterArtifact.load(DEFAULT_ARTIFACT)
    settings = {k: v for k, v in prior.encoder.items() if k in ("max_seq_length", "precision")}
    featurizer = PromptFeaturizer(
        QueryEncoder(**settings, cache_dir=default_cache_dir() / "embeddings", show_progress=False)
    )
    held = prior.build.get("held_out_prompt_ids", {})
    print(
        "| table | split | traffic | logged (feedback) | models used | eval prompts | pool | AUDC prior | "
        "AUDC refined | Δ (SD) | λ_W/λ_c | κ (τ̂) | held-out log loss prior → refined | IPS Δ value (SD) | fit (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.tables.split(","):
        table = load_table(find_data_dir(args.data, table=name))
        ids = [p.split("/", 1)[1] for p in held.get(name, [])]
        if not ids:
            print(
                f"| {name} | – | the shipped default holds out no prompts of this table | | | | | | | | | | | | |"
            )
            continue
        rows = []
        for s in range(args.first_seed, args.first_seed + args.splits):
            r = run_split(table, prior, featurizer, ids, s, args.feedback, args.traffic)
            rows.append(r)
            lam = "/".join("∞" if math.isinf(v) else f"{v:g}" for v in r["lam"])
            kappa = r["kappa"] if isinstance(r["kappa"], str) else f"{r['kappa']:g}"
            if r["tau"] is not None:
                kappa += f" ({r['tau']:.2f})"
            print(
                f"| {name} | {s} | {r['traffic']} | {r['n_logged']} ({r['n_feedback']}) | {r['logged_models']} | "
                f"{r['n_eval']} | {r['pool']} | {100 * r['prior']:.2f} | {100 * r['refined']:.2f} | "
                f"{100 * (r['refined'] - r['prior']):+.2f} ({100 * r['sd']:.2f}) | {lam} | {kappa} | "
                f"{r['ll_prior']:.4f} → {r['ll_refined']:.4f} | "
                f"{100 * r['ips'][0]:+.2f} ({100 * r['ips'][1]:.2f}) | {r['fit_s']:.1f} |",
                flush=True,
            )
        d = np.array([r["refined"] - r["prior"] for r in rows])
        sd = math.sqrt(sum(r["sd"] ** 2 for r in rows)) / len(rows)
        wins = int((d > 0).sum())
        print(
            f"| {name} | mean | {args.traffic} | | | | | {100 * np.mean([r['prior'] for r in rows]):.2f} | "
            f"{100 * np.mean([r['refined'] for r in rows]):.2f} | {100 * d.mean():+.2f} ({100 * sd:.2f}) "
            f"[{wins}/{len(rows)} splits up] | | | | | |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
