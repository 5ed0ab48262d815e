"""Run LiteLLM's own proxy (``litellm --config config.yaml``) with zerorouter choosing the model.

The proxy loads :data:`proxy_hook` as a callback from its config; its pre-call hook routes every
request whose ``model`` is a zerorouter virtual model (``zerorouter``, ``zerorouter/NAME`` for a named
policy of the config's ``zerorouter:`` section) to the deployment group zerorouter picks, and gives
LiteLLM the rest of the ranking as per-request ``fallbacks``. Requests naming a real model pass
through untouched. The pool is the proxy's own ``model_list`` (read from the same file, see
:mod:`zerorouter_integrations.litellm_config`)::

    model_list:
      - model_name: gpt-4o-mini
        litellm_params: {model: openai/gpt-4o-mini-2024-07-18, api_key: os.environ/OPENAI_API_KEY}
      - model_name: gpt-4o
        litellm_params: {model: openai/gpt-4o-2024-05-13, api_key: os.environ/OPENAI_API_KEY}
    litellm_settings:
      callbacks: zerorouter_integrations.litellm_proxy.proxy_hook
    general_settings:
      master_key: os.environ/LITELLM_MASTER_KEY
    zerorouter:
      policies: {budget-0.5: {budget_usd_per_1k: 0.5}}

The config file is the one the proxy was started with (or ``$ZEROROUTER_CONFIG``). Importing this
module imports LiteLLM (it is meant to be loaded by the proxy).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from zerorouter_integrations._env import import_litellm

__all__ = ["ZeroRouterProxyHook", "proxy_hook"]

logger = logging.getLogger(__name__)

import_litellm()
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402 (after the offline cost map is set)

VIRTUAL = "zerorouter"


def _proxy_config_path() -> str | None:
    path = os.environ.get("ZEROROUTER_CONFIG")
    if path:
        return path
    try:
        from litellm.proxy import proxy_server
    except ImportError:
        return None
    return getattr(proxy_server, "user_config_file_path", None)


class ZeroRouterProxyHook(CustomLogger):
    """A LiteLLM proxy callback whose pre-call hook puts zerorouter's choice into ``data["model"]``.

    Parameters
    ----------
    config : str, dict or list, optional
        The LiteLLM config to build the router from; default: the proxy's own config file.
    router_kwargs
        Passed to :meth:`ZeroRouter.from_litellm_config` (e.g. ``store="redis://..."``).
    """

    def __init__(self, config: Any = None, **router_kwargs: Any):
        super().__init__()
        self.config = config
        self.router_kwargs = router_kwargs
        self._lock = threading.Lock()
        self._routers: dict[str, Any] | None = None
        self._group: dict[str, str] = {}

    def routers(self) -> dict[str, Any]:
        """Virtual model name → router (built on first use from the config)."""
        if self._routers is None:
            with self._lock:
                if self._routers is None:
                    self._routers = self._build()
        return self._routers

    def _build(self) -> dict[str, Any]:
        import warnings

        from zerorouter_integrations.litellm_config import config_policies
        from zerorouter_integrations.router import ZeroRouter

        config = self.config if self.config is not None else _proxy_config_path()
        if config is None:
            raise RuntimeError(
                "ZeroRouterProxyHook has no config: start the proxy with --config, or set ZEROROUTER_CONFIG"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            router = ZeroRouter.from_litellm_config(config, **self.router_kwargs)
        for skipped in router.config_pool.skipped:
            logger.warning("zerorouter: left out of routing: %s", skipped)
        for d in router.config.deployments:  # profile → the proxy's model group that serves it
            profile = router.config_pool.aliases.get(d.model_name)
            if profile is not None:
                self._group.setdefault(profile, d.model_name)
        routers = {VIRTUAL: router}
        policies = config_policies(router.config, getattr(router.policy, "reference", None))
        for name, policy in policies.items():
            routers[f"{VIRTUAL}/{name}"] = router.with_policy(policy)
        return routers

    def model_group(self, profile: str) -> str:
        """The proxy's ``model_name`` that serves ``profile``."""
        self.routers()
        return self._group[profile]

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> dict:
        """Route a request for a virtual model: set ``model`` and ``fallbacks``; others pass through."""
        model = data.get("model")
        routers = self.routers() if isinstance(model, str) and model.startswith(VIRTUAL) else {}
        router = routers.get(model) if routers and isinstance(model, str) else None
        if router is None or not data.get("messages"):
            return data
        decision = await router.aroute(
            data["messages"],
            tools=data.get("tools"),
            response_format=data.get("response_format"),
            max_tokens=data.get("max_tokens"),
        )
        groups = list(dict.fromkeys(self._group[m] for m in decision.ranking))
        data["model"] = groups[0]
        if len(groups) > 1 and "fallbacks" not in data:
            data["fallbacks"] = groups[1:]
        metadata = data.setdefault("metadata", {})
        metadata["zerorouter"] = {
            "virtual_model": model,
            "request_id": decision.request_id,
            "chosen": decision.chosen,
            "ranking": decision.ranking,
            "expected_saving_usd": decision.expected_saving_usd,
        }
        return data


#: The instance a proxy config names: ``callbacks: zerorouter_integrations.litellm_proxy.proxy_hook``.
proxy_hook = ZeroRouterProxyHook()
