"""``zerorouter demo``: route held-out shared benchmark prompts on the shipped default, print what it saved.

The shipped artifact records which prompts of each table it was *not* fit on; the demo routes (a
seeded sample of) those, over each table's own models, with the router's default policy (the cheapest
choice keeping 95 % of the best model's predicted quality), and compares the realized quality and cost
with always calling the best single model. Nothing is trained or downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.extras import need

__all__ = ["find_data_dir", "run_demo"]


def run_demo(
    *,
    data_dir: Path | None = None,
    limit: int = 400,
    out: Path = Path("zerorouter-demo"),
    console: Any = None,
    seed: int = 0,
    encoder: Any = None,
    artifact_path: Path | None = None,
) -> dict[str, Any]:
    """Run the demo and return its figures per table.

    ``encoder`` replaces the router's default :class:`~zerorouter_integrations.encoder.QueryEncoder`
    (e.g. to compare encoder settings on the same prompts); ``artifact_path`` another artifact than
    the shipped default (it must record held-out prompts). Each result also lists the chosen model
    per routed prompt (``"choices"``).
    """
    from rich.console import Console
    from rich.table import Table

    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.evaluation import POOL_COVERAGE
    from zerorouter_integrations.features import PromptFeaturizer
    from zerorouter_integrations.metrics import (
        Curve,
        audc,
        curve_from_choices,
        references,
        sweep_choices,
        upper_hull,
    )
    from zerorouter_integrations.profiles import estimate_tokens
    from zerorouter_integrations.router import ZeroRouter
    from zerorouter_integrations.tables import load_table

    console = console or Console()
    if limit < 1:
        raise ValueError(f"--limit must be ≥ 1, got {limit!r}")
    data = find_data_dir(data_dir)
    artifact = RouterArtifact.load(artifact_path or DEFAULT_ARTIFACT)
    held_out: dict[str, list[str]] = artifact.build.get("held_out_prompt_ids", {})
    if not held_out:
        raise SchemaError(
            "the shipped artifact records no held-out prompts; rebuild it with "
            "scripts/build_default_artifact.py"
        )
    console.print(
        f"[bold]zerorouter demo[/bold]: shipped default ({len(artifact.predictor.profiles_)} model profiles, "
        f"built {artifact.build.get('built')}) on held-out prompts of {', '.join(held_out)}"
    )
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    curves = {}
    summary = Table(title="Routing held-out benchmark prompts with the shipped default")
    for col in (
        "table",
        "prompts",
        "models",
        "best single model",
        "quality",
        "$ / 1k",
        "router quality",
        "router $ / 1k",
        "saving",
        "quality kept",
    ):
        summary.add_column(
            col, justify="right" if col not in ("table", "best single model") else "left", no_wrap=True
        )
    router = None
    for name, ids in held_out.items():
        table = load_table(data / name)
        local = [pid.split("/", 1)[1] for pid in ids]
        rng = np.random.default_rng(seed)
        if len(local) > limit:
            local = sorted(rng.choice(local, size=limit, replace=False).tolist())
        models = [m for m in table.model_names if m in artifact.predictor.profiles_]
        S, C = table.scores(local, models), table.costs(local, models)
        have = ~np.isnan(S) & ~np.isnan(C)
        cols = [j for j in range(len(models)) if have[:, j].mean() >= POOL_COVERAGE]
        rows = have[:, cols].all(axis=1)
        pool = [models[j] for j in cols]
        ids_eval = [pid for pid, ok in zip(local, rows) if ok]
        Y, Cm = S[np.ix_(rows, cols)], C[np.ix_(rows, cols)]
        if len(pool) < 2 or not ids_eval:
            console.print(
                f"[yellow]{name}: fewer than 2 priced models on the held-out prompts; skipped[/yellow]"
            )
            continue
        router = ZeroRouter(
            artifact, models=pool, endpoints={}, encoder=router.encoder if router else encoder
        )
        texts = table.texts(ids_eval)
        X = PromptFeaturizer(router.encoder).transform(texts)
        tokens = np.array([estimate_tokens(t) for t in texts], dtype=float)
        pred = router.predictor.predict(X, input_tokens=tokens, models=pool)
        choice = router.policy.choose(pred.quality, pred.cost_usd)
        r = np.arange(len(ids_eval))
        q_router, c_router = float(Y[r, choice].mean()), float(Cm[r, choice].mean())
        refs = references(Y, Cm, pool)
        bs = refs["best_single"]
        pts = curve_from_choices(sweep_choices(pred.quality, pred.cost_usd), Y, Cm)
        curve = Curve(points=pts, hull=upper_hull(pts))
        single_costs = [v["cost"] for v in refs["single_models"].values()]
        curves[name] = (curve, refs, (q_router, c_router))
        results[name] = {
            "prompts": len(ids_eval),
            "models": len(pool),
            "best_single": bs,
            "router": {
                "quality": q_router,
                "cost": c_router,
                "models_used": {pool[j]: int((choice == j).sum()) for j in np.unique(choice)},
            },
            "saving": 1.0 - c_router / bs["cost"] if bs["cost"] > 0 else None,
            "quality_kept": q_router / bs["quality"] if bs["quality"] > 0 else None,
            "audc": audc(curve, min(single_costs), max(single_costs)),
            "policy": {
                "lam": float(getattr(router.policy, "lam_", float("nan"))),
                "reference": router.effective_reference_model,
            },
            "choices": dict(zip(ids_eval, (pool[j] for j in choice))),
        }
        summary.add_row(
            name,
            str(len(ids_eval)),
            str(len(pool)),
            bs["model"],
            f"{bs['quality']:.3f}",
            f"${1000 * bs['cost']:.3f}",
            f"{q_router:.3f}",
            f"${1000 * c_router:.3f}",
            f"{100 * results[name]['saving']:.0f} %",
            f"{100 * results[name]['quality_kept']:.1f} %",
        )
    console.print(summary)
    for name, res in results.items():
        used = sorted(res["router"]["models_used"].items(), key=lambda kv: -kv[1])[:5]
        console.print(f"  {name}: calls went to " + ", ".join(f"{m} ({n})" for m, n in used))
    if curves:
        path = _plot(curves, out / "demo.png")
        console.print(f"deferral curves written to {path}")
        results["plot"] = str(path)
    return results


def _plot(curves: dict[str, Any], path: Path) -> Path:
    import io

    need("plots", "the demo's plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zerorouter_integrations._io import atomic_write_bytes

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (name, (curve, refs, (q, c))) in zip(axes[0], curves.items()):
        h = curve.hull
        ax.plot(h[:, 0] * 1000, h[:, 1], marker=".", label="zerorouter (trade-off sweep)")
        for _m, s in refs["single_models"].items():
            ax.scatter([s["cost"] * 1000], [s["quality"]], s=10, color="grey", alpha=0.6)
        bs = refs["best_single"]
        ax.scatter(
            [bs["cost"] * 1000],
            [bs["quality"]],
            marker="*",
            s=140,
            color="red",
            label=f"best single: {bs['model']}",
        )
        ax.scatter([c * 1000], [q], marker="o", s=60, color="green", label="default policy")
        ax.set_xscale("log")
        ax.set_title(name)
        ax.set_xlabel("USD per 1k queries (log)")
        ax.set_ylabel("quality")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
