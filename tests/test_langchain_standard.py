"""LangChain's standard conformance suites for :class:`langchain_router.ZeroRouterChat`.

Unit suite: construction, tool binding, structured output, LangSmith params (no model call; the
router is built lazily, so nothing loads).

Integration suite: every request goes through the adapter, the core's routing decision, the
dispatcher and LiteLLM's real HTTP path to a local :class:`ReplayServer` serving the eleven
routerbench models (recorded answers where the prompt is known, tool calls built from the tool's JSON
schema, JSON built from ``response_format``). Two standard prompts need an answer the generic
replay cannot build (Unicode names copied into tool arguments; a JSON-mode joke with fixed keys); the
server's ``scripted`` table answers them, still over HTTP.

Capabilities declared (``supports_*``) are what the replay-served pool really does: tool calling,
tool_choice, structured output and JSON mode yes; image / audio / PDF / video inputs and
Anthropic-format inputs no (the replay server reads text only, so the standard tests for them are
skipped with the suite's own reason, e.g. "Model does not support image message.").
Skipped on purpose, reasons printed by ``pytest -rs``:
``test_serdes`` ("Model is not serializable.": the model holds a live router object),
``test_stream_time`` ("VCR not set up.": a local server needs no cassette).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_router import ZeroRouterChat
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.testing.fixtures import ROUTERBENCH_MODELS

DATA = find_data_dir(table="routerbench_subset")

_SHARED: dict[str, Any] = {}


def _unicode_customer(body: dict) -> Any:
    """Copy the quoted (Unicode) company name into every string argument of the forced tool."""
    m = re.search(r"named '([^']+)'", str(body["messages"][-1].get("content")))
    tools = body.get("tools") or []
    if m is None or not tools:
        return None
    fn = tools[0]["function"]
    props = (fn.get("parameters") or {}).get("properties") or {}
    args = {k: m.group(1) for k, v in props.items() if v.get("type", "string") == "string"}
    return {"tool_calls": [{"name": fn["name"], "arguments": args}]}


def _json_joke(body: dict) -> Any:
    if (body.get("response_format") or {}).get("type") != "json_object":
        return None
    return json.dumps(
        {"setup": "Why did the cat sit on the computer?", "punchline": "To keep an eye on the mouse!"}
    )


SCRIPTED = [
    (r"Create a customer named '", _unicode_customer),
    (r"Return the result as a JSON with 'setup' and\s+'punchline' keys", _json_joke),
]


@pytest.fixture(scope="module")
def replay_router_shared() -> Iterator[Any]:
    """One replay server and one router for the whole integration suite."""
    from zerorouter_integrations.testing import ReplayServer
    from zerorouter_integrations.testing.fixtures import replay_router

    tables = [DATA] if (DATA / "prompts.parquet").is_file() else []
    with ReplayServer(table_dirs=tables, scripted=SCRIPTED) as srv:
        _SHARED["server"] = srv
        _SHARED["router"] = replay_router(srv)
        yield _SHARED["router"]
        # Every standard test reached the server over HTTP, and the answers came from the generic
        # replay paths (tool calls from schemas, answers after tool results, text), the scripted
        # table serving only the two prompts named above.
        sources = {r.source for r in srv.requests}
        served = {r.model for r in srv.requests}
        _SHARED.clear()
    assert {"tool", "tool_result", "scripted", "deterministic"} <= sources, sources
    assert served <= set(ROUTERBENCH_MODELS), served


class TestZeroRouterChatUnit(ChatModelUnitTests):
    """Standard unit tests (no model call)."""

    @property
    def chat_model_class(self) -> type[ZeroRouterChat]:
        return ZeroRouterChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Lazy: the router is built on the first call, which these tests never make.
        return {"models": list(ROUTERBENCH_MODELS)}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"ZEROROUTER_API_KEY": "sk-from-env"}, {}, {"api_key": "sk-from-env"}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "claude-instant-v1"


@pytest.mark.usefixtures("replay_router_shared")
class TestZeroRouterChatIntegration(ChatModelIntegrationTests):
    """Standard integration tests against the local replay server, through LiteLLM's HTTP path."""

    @property
    def chat_model_class(self) -> type[ZeroRouterChat]:
        return ZeroRouterChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"router": _SHARED["router"]}

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return False  # the replay server answers from text only

    @property
    def supports_image_urls(self) -> bool:
        return False

    @property
    def supports_pdf_inputs(self) -> bool:
        return False

    @property
    def supports_audio_inputs(self) -> bool:
        return False

    @property
    def supports_video_inputs(self) -> bool:
        return False

    @property
    def supports_image_tool_message(self) -> bool:
        return False

    @property
    def supports_pdf_tool_message(self) -> bool:
        return False

    @property
    def supports_anthropic_inputs(self) -> bool:
        return False

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return True

    @property
    def model_override_value(self) -> str:
        return "claude-instant-v1"
