"""The ``zerorouter`` commands of learning from logs and batch routing: ``fit --from-logs``, ``route-batch``.

Kept apart from :mod:`zerorouter_integrations.cli` (which wires them into the parser); thin over
:mod:`~zerorouter_integrations.importers`, :mod:`~zerorouter_integrations.fromlogs` and
:mod:`~zerorouter_integrations.batch`. Bad input raises :class:`~zerorouter_integrations.errors.SchemaError`,
which the command line prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zerorouter_integrations.errors import SchemaError

__all__ = [
    "add_from_logs_arguments",
    "add_route_batch_parser",
    "cmd_fit_from_logs",
    "cmd_route_batch",
    "log_scores",
    "model_map_arg",
]


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, width=160)


def _print_markdown(text: str) -> None:
    from rich.markdown import Markdown

    _console().print(Markdown(text))


def _csv_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def model_map_arg(value: str | None) -> dict[str, str] | None:
    """``--model-map``: a JSON file ``{"logged": "pool name"}`` or ``logged=pool,logged2=pool2``."""
    if not value:
        return None
    f = Path(value)
    if f.is_file():
        data = json.loads(f.read_text())
        if not isinstance(data, dict):
            raise SchemaError(f"--model-map {f}: expected a JSON object of logged name → pool name")
        return {str(k): str(v) for k, v in data.items()}
    pairs = [p.split("=", 1) for p in _csv_list(value) or []]
    if any(len(p) != 2 for p in pairs):
        raise SchemaError(
            f"--model-map {value!r}: expected a JSON file or logged=pool pairs separated by commas"
        )
    return {k: v for k, v in pairs}


def log_scores(args: argparse.Namespace, calls: list[Any]) -> dict[str, float]:
    from zerorouter_integrations.importers.feedback import read_feedback
    from zerorouter_integrations.importers.judge import judge_calls

    scores: dict[str, float] = {}
    if args.feedback:
        fb, report = read_feedback(args.feedback)
        _console(stderr=True).print(f"feedback: {len(fb)} scores; " + report.summary(max_lines=5))
        scores.update(fb)
    if args.judge:
        todo = [c for c in calls if c.call_id not in scores]
        judged, report = judge_calls(
            todo, args.judge, max_calls=args.judge_max, cache=args.judge_cache, api_base=args.judge_api_base
        )
        _console(stderr=True).print(
            f"judge {args.judge}: {len(judged)} scores; " + report.summary(max_lines=5)
        )
        scores.update(judged)
    return scores


def cmd_fit_from_logs(args: argparse.Namespace) -> int:
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.features import PromptFeaturizer
    from zerorouter_integrations.fromlogs import fit_from_logs
    from zerorouter_integrations.importers import read_logs

    prior = RouterArtifact.load(DEFAULT_ARTIFACT if args.prior == "default" else args.prior)
    logs = read_logs(args.from_logs, format=args.format, model_map=model_map_arg(args.model_map))
    _console(stderr=True).print("logs: " + logs.summary())
    if not logs.calls:
        raise SchemaError(f"no usable call in {len(args.from_logs)} log file(s); see the issues above")
    scores = log_scores(args, logs.calls)
    settings = {k: v for k, v in prior.encoder.items() if k in ("max_seq_length", "precision")}
    from zerorouter_integrations.encoder import QueryEncoder, default_cache_dir

    encoder = QueryEncoder(**settings, cache_dir=default_cache_dir() / "embeddings")
    featurizer = PromptFeaturizer(
        encoder, **{k: v for k, v in prior.features.items() if k == "use_text_features"}
    )
    refined, report, _ = fit_from_logs(
        logs.calls, scores, prior=prior, featurizer=featurizer, holdout=args.holdout, seed=args.seed
    )
    path = refined.save(args.out)
    if args.json:
        sys.stdout.write(json.dumps({"out": str(path), **report.to_dict()}) + "\n")
    else:
        _print_markdown(report.to_markdown())
        _console().print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------- route-batch
def cmd_route_batch(args: argparse.Namespace) -> int:
    from zerorouter_integrations.batch import route_parquet

    policy = None
    if args.budget is not None:
        policy = {"budget_usd_per_1k": args.budget}
    elif args.quality_target is not None:
        policy = {"quality_target": args.quality_target, "reference": args.reference}
    stats = route_parquet(
        args.input,
        args.out,
        engine=args.engine,
        artifact=args.artifact,
        models=_csv_list(args.models),
        policy=policy,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        show_progress=False if args.json else None,
    )
    summary = {
        "rows": stats.rows,
        "seconds": round(stats.seconds, 3),
        "rows_per_s": round(stats.rows_per_s, 1),
    }
    if args.json:
        sys.stdout.write(json.dumps({"out": str(stats.out), "engine": stats.engine, **summary}) + "\n")
    else:
        _console().print(
            f"routed {stats.rows} rows in {stats.seconds:.1f} s ({stats.rows_per_s:.0f} rows/s, {stats.engine}); wrote {stats.out}"
        )
    return 0


def add_from_logs_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from-logs",
        nargs="+",
        metavar="LOGS",
        help="refine a prior with logged calls (LiteLLM, LangSmith, OTLP)",
    )
    p.add_argument("--prior", default="default", help="artifact to refine (default: the shipped default)")
    p.add_argument("--format", default="auto", help="log format: auto, litellm, langsmith or otlp")
    p.add_argument("--feedback", nargs="+", help="feedback files (JSONL/CSV: id, score)")
    p.add_argument("--judge", help="LiteLLM model that grades logged answers without feedback")
    p.add_argument("--judge-max", type=int, default=200, help="most judge calls (default 200)")
    p.add_argument("--judge-cache", help="SQLite file caching judge grades")
    p.add_argument("--judge-api-base")
    p.add_argument(
        "--model-map", help="JSON file or logged=pool pairs mapping logged model names to pool names"
    )
    p.add_argument("--holdout", type=float, default=0.2, help="share of scored calls held out for the report")
    p.add_argument("--json", action="store_true")


def add_route_batch_parser(sub: Any) -> None:
    p = sub.add_parser("route-batch", help="route every prompt of a Parquet file (local or Ray)")
    p.add_argument("input", help="Parquet with prompt_id and prompt (text) or messages (JSON chat)")
    p.add_argument(
        "--out", required=True, help="output Parquet: prompt_id, model, predicted quality/cost, policy"
    )
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--artifact")
    p.add_argument("--models", help="comma-separated pool")
    p.add_argument("--budget", type=float, help="USD per 1k requests")
    p.add_argument("--quality-target", type=float)
    p.add_argument("--reference")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--concurrency", type=int, default=2, help="Ray actors (each holds one encoder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route_batch)
