"""Build a real router whose models are served by a local :class:`ReplayServer`.

Used by the tests, the examples and the demo of the adapters: every request goes through the
router's decision, the dispatcher and LiteLLM's real HTTP path (``openai/<name>`` + ``api_base``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ROUTERBENCH_MODELS", "replay_endpoints", "replay_router"]

#: The routerbench_subset models: the replay server has their recorded answers.
ROUTERBENCH_MODELS = (
    "gpt-4-1106-preview",
    "zero-one-ai/Yi-34B-Chat",
    "mistralai/mixtral-8x7b-chat",
    "gpt-3.5-turbo-1106",
    "claude-v1",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
    "WizardLM/WizardLM-13B-V1.2",
    "claude-v2",
)

#: Price used for a replayed model whose list price is unknown (USD per token).
FALLBACK_PRICE = 1e-7


def replay_endpoints(server: Any, models: Sequence[str], artifact: Any = None) -> dict[str, Any]:
    """Endpoints that send each model to ``server``, priced like the real model (from the artifact's profiles)."""
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.dispatch import ModelEndpoint

    artifact = artifact or RouterArtifact.load(DEFAULT_ARTIFACT)
    out = {}
    for name in models:
        p = artifact.predictor.profiles_.get(name)
        pin = p.input_usd_per_token if p is not None and p.input_usd_per_token else FALLBACK_PRICE
        pout = p.output_usd_per_token if p is not None and p.output_usd_per_token else FALLBACK_PRICE
        out[name] = ModelEndpoint(
            name=name,
            litellm_model=f"openai/{name}",
            api_base=server.base_url,
            api_key="sk-test",
            input_cost_per_token=pin,
            output_cost_per_token=pout,
        )
    return out


def replay_router(server: Any, models: Sequence[str] = ROUTERBENCH_MODELS, **router_kwargs: Any) -> Any:
    """The shipped default router restricted to ``models``, every model served by ``server``."""
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.router import ZeroRouter

    artifact = RouterArtifact.load(DEFAULT_ARTIFACT)
    return ZeroRouter(
        artifact, models=list(models), endpoints=replay_endpoints(server, models, artifact), **router_kwargs
    )
