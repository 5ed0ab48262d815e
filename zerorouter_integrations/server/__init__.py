"""``zerorouter serve``: an OpenAI-compatible routing gateway over a LiteLLM-style config.

Modules: :mod:`~zerorouter_integrations.server.app` (the Starlette app and :class:`Gateway`),
:mod:`~zerorouter_integrations.server.schemas` (OpenAI wire format), :mod:`~zerorouter_integrations.server.metrics`
(Prometheus text and dashboard data), :mod:`~zerorouter_integrations.server.dashboard` (the page).
Needs the ``serve`` extra (Starlette, uvicorn).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["build_gateway", "run_server"]


def build_gateway(
    config: Any,
    *,
    store: str | None = None,
    api_key_env: str | None = None,
    max_body_bytes: int | None = None,
    timeout_s: float | None = None,
    **router_kwargs: Any,
) -> Any:
    """The :class:`~zerorouter_integrations.server.app.Gateway` of a LiteLLM config.

    ``store`` wins over the config's ``zerorouter.store``; ``api_key_env`` names the variable that
    holds the gateway's own bearer key (unset variable: an error, never an open gateway by mistake).
    """
    from pydantic import SecretStr

    from zerorouter_integrations.errors import SchemaError
    from zerorouter_integrations.litellm_config import LiteLLMConfig, config_policies
    from zerorouter_integrations.router import ZeroRouter
    from zerorouter_integrations.server.app import Gateway, GatewaySettings

    cfg = LiteLLMConfig.load(config)
    section = cfg.zerorouter
    if store is not None:
        router_kwargs["store"] = store
    router = ZeroRouter.from_litellm_config(cfg, **router_kwargs)
    key = None
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise SchemaError(
                f"--api-key-env {api_key_env}: the variable is not set; export it with the gateway's key"
            )
        key = SecretStr(value)
    limits = section.get("server") or {}
    settings = GatewaySettings(
        api_key=key,
        max_body_bytes=int(max_body_bytes or limits.get("max_body_bytes") or GatewaySettings.max_body_bytes),
        timeout_s=float(timeout_s or limits.get("timeout_s") or GatewaySettings.timeout_s),
    )
    return Gateway(router, config_policies(cfg, getattr(router.policy, "reference", None)), settings)


def run_server(gateway: Any, host: str = "127.0.0.1", port: int = 4000, log_level: str = "warning") -> None:
    """Serve ``gateway`` with uvicorn until interrupted."""
    import uvicorn

    from zerorouter_integrations.server.app import create_app

    uvicorn.run(create_app(gateway), host=host, port=port, log_level=log_level, access_log=False)
