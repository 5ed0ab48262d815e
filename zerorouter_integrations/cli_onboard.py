"""``zerorouter onboard``: add a model from a scored anchor file, or live (the shipped anchor set).

The live path takes the model from ``--litellm-model``/``--api-base`` or from a deployment of a
LiteLLM ``--config``; ``--judge`` (and ``--reference-model``) grade the open-ended anchors; prices
come from ``--input-usd-per-1m``/``--output-usd-per-1m``, the config's ``model_info`` or LiteLLM's map.
Bad input raises ``ValueError`` (printed as one line by ``zerorouter``, exit status 2); a run whose
first calls all fail prints the provider's message in full.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zerorouter_integrations.extras import need

__all__ = ["read_anchor_file", "run_onboard"]


def read_anchor_file(path: str) -> dict[str, list[Any]]:
    """The scored anchors of ``--anchors``: CSV or JSONL (the base install reads them) or Parquet (the
    ``tables`` extra), with columns ``prompt``, ``score`` and optionally ``cost_usd``.

    Returns ``{"prompt": [...], "score": [...]}`` plus ``"cost_usd"`` when the file has that column
    (an empty or null cost is NaN). A missing column, a score that is not a number or a malformed
    line raises :class:`~zerorouter_integrations.errors.SchemaError` naming the file and the row.
    """
    import csv
    import json

    from zerorouter_integrations.errors import SchemaError

    f = Path(path)
    if not f.is_file():
        raise ValueError(f"{f}: anchor file not found")
    rows: list[dict[str, Any]]
    if f.suffix == ".parquet":
        need("tables", f"reading the Parquet anchor file {f}")
        import pyarrow.parquet as pq

        rows = pq.read_table(f).to_pylist()
        columns = pq.read_schema(f).names
    elif f.suffix in (".jsonl", ".ndjson"):
        rows = []
        with f.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise SchemaError(f"{f}: line {n} is not JSON: {exc}") from None
                if not isinstance(row, dict):
                    raise SchemaError(f"{f}: line {n} is a {type(row).__name__}; expected a JSON object")
                rows.append(row)
        columns = list(dict.fromkeys(k for r in rows for k in r))
    elif f.suffix == ".csv":
        with f.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            columns = list(reader.fieldnames or [])
    else:
        raise ValueError(f"{f}: unsupported anchor file type {f.suffix!r}; expected .csv, .jsonl or .parquet")
    missing = [c for c in ("prompt", "score") if c not in columns]
    if missing:
        raise SchemaError(
            f"{f}: missing column(s) {missing}; an anchor file needs 'prompt' and 'score' "
            "(and optionally 'cost_usd')"
        )
    out: dict[str, list[Any]] = {"prompt": [], "score": []}
    if "cost_usd" in columns:
        out["cost_usd"] = []
    for n, row in enumerate(rows, 1):
        out["prompt"].append(str(row.get("prompt")))
        out["score"].append(_number(f, n, "score", row.get("score"), allow_empty=False))
        if "cost_usd" in out:
            out["cost_usd"].append(_number(f, n, "cost_usd", row.get("cost_usd"), allow_empty=True))
    return out


def _number(f: Path, n: int, column: str, value: Any, *, allow_empty: bool) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        if allow_empty:
            return float("nan")
        raise _bad_number(f, n, column, value)
    if isinstance(value, bool):
        raise _bad_number(f, n, column, value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _bad_number(f, n, column, value) from None


def _bad_number(f: Path, n: int, column: str, value: Any) -> Exception:
    from zerorouter_integrations.errors import SchemaError

    return SchemaError(f"{f}: row {n} has {column}={value!r}; expected a number")


def _prices(args: argparse.Namespace) -> tuple[float, float] | None:
    given = (args.input_usd_per_1m, args.output_usd_per_1m)
    if given == (None, None):
        return None
    if None in given or min(given) < 0:
        raise ValueError(
            f"--input-usd-per-1m={given[0]} --output-usd-per-1m={given[1]}; give both, as USD per "
            "million tokens >= 0"
        )
    return given[0] / 1e6, given[1] / 1e6


def _endpoint(
    name: str, litellm_model: str, api_base: str | None, key_env: str | None, prices: tuple | None
) -> Any:
    from zerorouter_integrations.dispatch import ModelEndpoint
    from zerorouter_integrations.endpoints import server_endpoint

    pin, pout = prices if prices else (None, None)
    if api_base:
        return server_endpoint(
            name,
            api_base,
            litellm_model=litellm_model,
            api_key_env=key_env,
            input_cost_per_token=pin,
            output_cost_per_token=pout,
        )
    return ModelEndpoint(
        name=name,
        litellm_model=litellm_model,
        api_key_env=key_env,
        input_cost_per_token=pin,
        output_cost_per_token=pout,
    )


def _onboard_config(args: argparse.Namespace) -> Any:
    if not args.config:
        return None
    from zerorouter_integrations.litellm_config import LiteLLMConfig

    if not Path(args.config).is_file():
        raise ValueError(f"--config {args.config}: file not found")
    return LiteLLMConfig.load(args.config)


def _deployment(config: Any, model_name: str) -> Any:
    return next((d for d in config.deployments if d.model_name == model_name), None)


def _configured(config: Any, model_name: str, name: str, prices: tuple | None) -> Any:
    """The endpoint of ``config``'s first deployment called ``model_name`` (None when there is none);
    ``prices`` (USD per token) win over its ``model_info``."""
    import dataclasses

    from zerorouter_integrations.endpoints import PLACEHOLDER_KEY

    d = _deployment(config, model_name)
    if d is None:
        return None
    ep = d.endpoint(name)
    if prices is not None:
        ep = dataclasses.replace(ep, input_cost_per_token=prices[0], output_cost_per_token=prices[1])
    if ep.api_base and ep.api_key is None and "api_key" not in ep.extra:
        ep = dataclasses.replace(ep, extra={**ep.extra, "api_key": PLACEHOLDER_KEY})  # env key wins
    return ep


def _judge_endpoint(config: Any, model: str | None, name: str, base: str | None, key_env: str | None) -> Any:
    """``--judge`` / ``--reference-model``: a deployment of ``--config``, else a LiteLLM model string."""
    if not model:
        return None
    found = _configured(config, model, name, None) if config is not None else None
    return found or _endpoint(name, model, base, key_env, None)


def run_onboard(args: argparse.Namespace, console: Callable[..., Any]) -> int:
    """``zerorouter onboard``: returns the exit status; ``console(stderr=False)`` gives a rich console."""
    from zerorouter_integrations.errors import OnboardingError
    from zerorouter_integrations.router import ZeroRouter

    router = (
        ZeroRouter.load(args.artifact, endpoints={}) if args.artifact else ZeroRouter.default(endpoints={})
    )
    prices = _prices(args)
    config = _onboard_config(args)
    if args.live:
        if config is not None and _deployment(config, args.model) is not None:
            endpoint = _configured(config, args.model, args.model, prices)
        elif not args.litellm_model:
            raise ValueError(
                "--live needs --litellm-model (e.g. openai/gpt-4o-mini)"
                + (f", or a deployment named {args.model!r} in --config" if config is not None else "")
            )
        else:
            endpoint = _endpoint(args.model, args.litellm_model, args.api_base, args.api_key_env, prices)
        base = args.judge_api_base or args.api_base
        judge = _judge_endpoint(config, args.judge, "__judge__", base, args.judge_api_key_env)
        reference = _judge_endpoint(
            config, args.reference_model, "__reference__", base, args.judge_api_key_env
        )
        if judge is None:
            console(stderr=True).print("no --judge: the open-ended anchors are left out")
        try:
            profile = router.onboard_live(
                args.model,
                endpoint,
                k=args.k,
                judge=judge,
                reference=reference,
                concurrency=args.concurrency,
                run_code=not args.no_code,
                on_run=lambda run: console(stderr=True).print(run.summary(), markup=False),
            )
        except OnboardingError as exc:  # the provider's message verbatim, all of it
            sys.stderr.write(f"zerorouter onboard: error: {exc}\n")
            return 2
    else:
        if not args.anchors:
            raise ValueError("give --anchors FILE (prompt, score[, cost_usd]) or --live")
        anchors = read_anchor_file(args.anchors)
        profile = router.onboard(
            args.model,
            anchors["prompt"],
            anchors["score"],
            costs=anchors.get("cost_usd"),
            litellm_model=args.litellm_model,
            input_usd_per_token=prices[0] if prices else None,
            output_usd_per_token=prices[1] if prices else None,
        )
    out = args.out or args.artifact
    if not out:
        raise ValueError("--out is required when onboarding onto the shipped default (it is read-only)")
    router.save(out)
    if profile.input_usd_per_token is None or profile.output_usd_per_token is None:
        price = "no price known (give --input-usd-per-1m / --output-usd-per-1m)"
    else:
        price = (
            f"${profile.input_usd_per_token * 1e6:g} / ${profile.output_usd_per_token * 1e6:g} per 1M tokens"
        )
    console().print(
        f"onboarded {profile.name!r} from {profile.ability.n_obs} anchors "
        f"(capability {router.capability(profile.name):.3f}; {price}); wrote {out}",
        markup=False,
    )
    return 0
