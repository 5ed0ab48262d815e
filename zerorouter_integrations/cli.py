"""``zerorouter``: the command line, thin over the library.

Commands: ``demo``, ``fit`` (also ``fit --from-logs``), ``onboard``, ``route``, ``route-batch``, ``eval``,
``serve``, ``serve-replay``. Every command checks
its inputs and exits with status 2 and a one-line reason on bad input (missing file, wrong schema,
unknown model); the evaluation contract is::

    zerorouter eval TABLE_DIR --split SPLIT.json [--anchors 100] [--routers a,b,...] [--out DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zerorouter_integrations.extras import need

__all__ = ["main"]


class CLIError(Exception):
    """A bad input: printed as one line, exit status 2."""


def _console(stderr: bool = False) -> Any:
    import shutil

    from rich.console import Console

    width = shutil.get_terminal_size((160, 40)).columns if sys.stdout.isatty() else 160
    return Console(stderr=stderr, highlight=False, width=max(width, 100))


def _load_table(path: str) -> Any:
    from zerorouter_integrations.tables import load_table

    return load_table(path)


def _encoder(show_progress: bool | None = None) -> Any:
    from zerorouter_integrations.encoder import ROUTING_ENCODER, QueryEncoder, default_cache_dir

    return QueryEncoder(
        **ROUTING_ENCODER, cache_dir=default_cache_dir() / "embeddings", show_progress=show_progress
    )


def _csv_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


# ---------------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    need("fit", "zerorouter eval")
    from zerorouter_integrations.evaluation import evaluate
    from zerorouter_integrations.tables import Split

    table = _load_table(args.table_dir)
    split = Split.load(args.split)
    routers = _csv_list(args.routers) or [
        "zerorouter",
        "unirouter-kmeans",
        "unirouter-learned-map",
        "knn",
        "logreg",
        "zerorouter-cascade",
    ]
    features = None
    if args.engine == "ray":
        from zerorouter_integrations.batch_ray import table_features_ray

        features = table_features_ray(table, concurrency=args.concurrency)
    report = evaluate(
        table,
        split,
        routers=routers,
        anchors=args.anchors,
        seed=args.seed,
        features=features,
        encoder=_encoder(None if not args.json else False),
        show_progress=None if not args.json else False,
    )
    out = Path(args.out) if args.out else Path("zerorouter-eval") / table.name
    paths = report.save(out)
    if args.json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        _print_markdown(report.to_markdown())
        _console().print(f"wrote {paths['markdown']}, {paths['csv']}, {paths['json']} and {paths['plot']}")
    return 0


def _print_markdown(text: str) -> None:
    from rich.markdown import Markdown

    _console().print(Markdown(text))


# ---------------------------------------------------------------------- fit
def cmd_fit(args: argparse.Namespace) -> int:
    need("fit", "zerorouter fit")
    from zerorouter_integrations.evaluation import make_space
    from zerorouter_integrations.tables import Split
    from zerorouter_integrations.training import fit_artifact

    if args.from_logs:
        from zerorouter_integrations.cli_logs import cmd_fit_from_logs

        return cmd_fit_from_logs(args)
    if not args.table_dir:
        raise CLIError(
            "give a TABLE_DIR to fit on, or --from-logs LOGS... to refine a prior with your traffic"
        )
    table = _load_table(args.table_dir)
    split = Split.load(args.split) if args.split else Split()
    split.validate_against(table)
    if args.router not in ("zerorouter",):
        raise CLIError(
            f"--router {args.router!r}: only 'zerorouter' artifacts can be served; "
            "the other routers are for 'zerorouter eval'"
        )
    artifact = fit_artifact(
        table,
        exclude_prompt_ids=split.test_prompt_ids,
        exclude_models=split.new_models,
        space=make_space(args.router, args.seed),
        encoder=_encoder(),
        n_anchors=args.anchors,
        seed=args.seed,
        build_info={"command": "zerorouter fit"},
    )
    path = artifact.save(args.out)
    _console().print(
        f"wrote {path}: {len(artifact.predictor.profiles_)} model profiles, "
        f"{len(artifact.anchors or [])} anchors"
    )
    return 0


# ---------------------------------------------------------------------- onboard
def cmd_onboard(args: argparse.Namespace) -> int:
    from zerorouter_integrations.cli_onboard import run_onboard

    return run_onboard(args, _console)


# ---------------------------------------------------------------------- route
def router_from_config(config: str, **kwargs: Any) -> Any:
    """``ZeroRouter.from_litellm_config`` for the CLI: skipped deployments printed to stderr, one a line."""
    import warnings

    from zerorouter_integrations.router import ZeroRouter

    if not Path(config).is_file():
        raise CLIError(f"--config {config}: file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        router = ZeroRouter.from_litellm_config(config, **kwargs)
    for skipped in router.config_pool.skipped:
        sys.stderr.write(f"zerorouter: left out of routing: {skipped}\n")
    return router


def cmd_route(args: argparse.Namespace) -> int:
    from zerorouter_integrations.policy import Policy
    from zerorouter_integrations.router import ZeroRouter

    kwargs: dict[str, Any] = {}  # the default endpoints, as in Python: both route among dispatchable models
    if args.models:
        kwargs["models"] = _csv_list(args.models)
    if args.config:
        router = router_from_config(args.config, artifact=args.artifact)
    else:
        router = ZeroRouter.load(args.artifact, **kwargs) if args.artifact else ZeroRouter.default(**kwargs)
    policy = None
    if args.budget is not None:
        policy = Policy.for_budget(args.budget)
    elif args.quality_target is not None:
        policy = Policy.for_quality_target(args.quality_target, reference=args.reference)
    decision = router.route(args.prompt, policy=policy, max_tokens=args.max_tokens)
    if args.json:
        sys.stdout.write(json.dumps(decision.to_dict()) + "\n")
    else:
        _console().print(decision)
    return 0


# ---------------------------------------------------------------------- demo
def cmd_demo(args: argparse.Namespace) -> int:
    need("demo", "zerorouter demo")
    from zerorouter_integrations.demo import run_demo

    run_demo(
        data_dir=Path(args.data) if args.data else None,
        limit=args.limit,
        out=Path(args.out),
        console=_console(),
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import warnings

    need("serve", "zerorouter serve")
    from zerorouter_integrations.server import build_gateway, run_server

    if not Path(args.config).is_file():
        raise CLIError(f"--config {args.config}: file not found")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gateway = build_gateway(
            args.config,
            store=args.store,
            api_key_env=args.api_key_env,
            max_body_bytes=args.max_body_bytes,
            timeout_s=args.timeout,
            artifact=args.artifact,
        )
    for skipped in gateway.router.config_pool.skipped:
        sys.stderr.write(f"zerorouter: left out of routing: {skipped}\n")
    gateway.warm_up()
    models = ", ".join(gateway.model_ids())
    sys.stderr.write(f"zerorouter serve: http://{args.host}:{args.port}/v1 (models: {models})\n")
    sys.stderr.flush()
    run_server(gateway, host=args.host, port=args.port)
    return 0


def cmd_serve_replay(args: argparse.Namespace, rest: list[str]) -> int:
    need("tables", "zerorouter serve-replay")
    from zerorouter_integrations.testing.replay import serve_replay_main

    return int(serve_replay_main(rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    from zerorouter_integrations.cli_logs import add_from_logs_arguments, add_route_batch_parser

    ap = argparse.ArgumentParser(
        prog="zerorouter",
        description="Route LLM requests to the cheapest model that will "
        "answer well; onboard new models from ~100 anchors.",
    )
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "demo", help="route held-out shared benchmark prompts on the shipped default and print savings"
    )
    p.add_argument(
        "--data",
        help="the shared data folder (default: ../shared/data next to the repo, or $ZEROROUTER_DATA)",
    )
    p.add_argument("--limit", type=int, default=400, help="held-out prompts per table (default 400)")
    p.add_argument("--out", default="zerorouter-demo", help="folder for the plot (default ./zerorouter-demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("eval", help="evaluate routers on a split of a routing table (the stable contract)")
    p.add_argument("table_dir")
    p.add_argument(
        "--split", required=True, help='SPLIT.json: {"test_prompt_ids": [...], "new_models": [...]}'
    )
    p.add_argument("--anchors", type=int, default=100)
    p.add_argument("--routers", help="comma-separated router names (default: all)")
    p.add_argument(
        "--out", help="folder for report.md/.csv/.json and deferral.png (default ./zerorouter-eval/TABLE)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="where prompts are encoded")
    p.add_argument("--concurrency", type=int, default=2, help="Ray actors with --engine ray")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "fit", help="fit the ZeroRouter latent space and profiles on a routing table, or refine one from logs"
    )
    p.add_argument("table_dir", nargs="?")
    p.add_argument("--out", required=True, help="artifact path to write (.json.gz)")
    p.add_argument("--split", help="exclude this split's test prompts and new models from fitting")
    p.add_argument("--router", default="zerorouter")
    p.add_argument("--anchors", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    add_from_logs_arguments(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("onboard", help="add a model from a scored anchor file, or live through LiteLLM")
    p.add_argument("--model", required=True, help="the new model's pool name")
    p.add_argument(
        "--artifact", help="artifact to extend (default: the shipped default; then --out is required)"
    )
    p.add_argument("--anchors", help="CSV/JSONL/Parquet with columns prompt, score[, cost_usd]")
    p.add_argument("--live", action="store_true", help="run the shipped anchor set through the model")
    p.add_argument(
        "--config",
        help="LiteLLM config.yaml: --model (and --judge / --reference-model) name its deployments (--live)",
    )
    p.add_argument("--litellm-model", help="LiteLLM model string (prices, and the endpoint for --live)")
    p.add_argument("--api-base", help="OpenAI-compatible base URL of the model (and of the judge)")
    p.add_argument("--api-key-env", help="environment variable holding the model's API key")
    p.add_argument(
        "-k", type=int, default=None, help="run K anchors spread over the set with --live (default: all)"
    )
    p.add_argument("--judge", metavar="LITELLM_MODEL", help="judge model for the open-ended anchors (--live)")
    p.add_argument("--judge-api-base", help="the judge's base URL (default: --api-base)")
    p.add_argument("--judge-api-key-env", help="environment variable holding the judge's API key")
    p.add_argument(
        "--reference-model",
        metavar="LITELLM_MODEL",
        help="writes the open-ended reference answers (default: the judge)",
    )
    p.add_argument(
        "--concurrency", type=int, default=8, help="calls in flight at once with --live (default 8)"
    )
    p.add_argument(
        "--no-code", action="store_true", help="leave out the code anchors (they run model-written code)"
    )
    p.add_argument("--input-usd-per-1m", type=float, help="the model's price per million input tokens")
    p.add_argument("--output-usd-per-1m", type=float, help="the model's price per million output tokens")
    p.add_argument("--out", help="artifact path to write (default: overwrite --artifact)")
    p.set_defaults(func=cmd_onboard)

    p = sub.add_parser("route", help="route one prompt and print the decision table")
    p.add_argument("prompt")
    p.add_argument("--config", help="LiteLLM config.yaml whose model_list is the pool")
    p.add_argument("--artifact")
    p.add_argument("--models", help="comma-separated pool")
    p.add_argument("--budget", type=float, help="USD per 1k requests")
    p.add_argument("--quality-target", type=float, help="fraction of --reference's quality (or absolute)")
    p.add_argument("--reference")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_route)

    p = sub.add_parser("serve", help="run the OpenAI-compatible routing gateway over a LiteLLM config")
    p.add_argument(
        "--config", required=True, help="LiteLLM config.yaml (model_list, optional zerorouter: section)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=4000)
    p.add_argument(
        "--store", help="feedback store URL shared by replicas (sqlite:///file.db, redis://host:port/0)"
    )
    p.add_argument(
        "--api-key-env", help="variable holding the key clients must send as 'Authorization: Bearer'"
    )
    p.add_argument(
        "--artifact", help="router artifact (default: the config's zerorouter.artifact, else shipped)"
    )
    p.add_argument("--max-body-bytes", type=int, help="largest request body (default 4 MiB)")
    p.add_argument("--timeout", type=float, help="seconds per request, fallbacks included (default 120)")
    p.set_defaults(func=cmd_serve)

    add_route_batch_parser(sub)

    p = sub.add_parser("serve-replay", help="run the local OpenAI-compatible replay server", add_help=False)
    p.set_defaults(func=cmd_serve_replay)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zerorouter`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["serve-replay"]:
        return cmd_serve_replay(argparse.Namespace(), argv[1:])
    args = parser.parse_args(argv)
    from zerorouter_integrations.errors import ZeroRouterError

    try:
        return int(args.func(args) or 0)
    except (CLIError, ZeroRouterError, FileNotFoundError, ValueError, KeyError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        sys.stderr.write(f"zerorouter {args.command}: error: {str(msg).splitlines()[0]}\n")
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
