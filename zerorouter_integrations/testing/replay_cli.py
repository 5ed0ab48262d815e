"""``zerorouter serve-replay``: serve a :class:`ReplayServer` until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from zerorouter_integrations.testing.replay_server import ReplayServer
from zerorouter_integrations.testing.replay_types import ModelBehaviour

__all__ = ["serve_replay_main"]


def serve_replay_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``zerorouter serve-replay``: serve until Ctrl-C, return the exit status."""
    p = argparse.ArgumentParser(
        prog="zerorouter serve-replay",
        description="Serve a local OpenAI-compatible replay server (recorded answers, "
        "deterministic otherwise). Point LiteLLM at it with model='openai/<name>', "
        "api_base=<printed URL>, api_key='sk-test'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument(
        "--table-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="routing-table folder with recorded responses (repeatable), e.g. "
        "../shared/data/routerbench_subset, or a table name such as routerbench_subset "
        "(found in $ZEROROUTER_DATA or ../shared/data)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only these models (repeatable; default: any name)",
    )
    p.add_argument("--latency", type=float, default=0.0, help="seconds of latency per request")
    p.add_argument("--ttft", type=float, default=0.0, help="extra seconds before the first token")
    p.add_argument("--tokens-per-s", type=float, default=None, help="generation speed")
    p.add_argument("--fail-rate", type=float, default=0.0, help="probability of an HTTP 500")
    p.add_argument("--seed", type=int, default=0, help="seed of the failure draws")
    args = p.parse_args(list(argv) if argv is not None else None)
    try:
        behaviour = ModelBehaviour(
            latency_s=args.latency, ttft_s=args.ttft, tokens_per_s=args.tokens_per_s, fail_rate=args.fail_rate
        )
        server = ReplayServer(
            {m: behaviour for m in args.model} or None,
            table_dirs=args.table_dir,
            host=args.host,
            port=args.port,
            seed=args.seed,
            default_behaviour=behaviour,
        )
        server.start()
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
