"""Test helpers: a local OpenAI-compatible replay server (no network, no API keys)."""

from zerorouter_integrations.testing.replay import (
    ModelBehaviour,
    RecordedRequest,
    ReplayServer,
    ScriptedReply,
    serve_replay_main,
)

__all__ = ["ModelBehaviour", "RecordedRequest", "ReplayServer", "ScriptedReply", "serve_replay_main"]
