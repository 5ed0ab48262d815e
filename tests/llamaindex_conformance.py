"""A reusable conformance suite for LlamaIndex ``FunctionCallingLLM`` implementations.

LlamaIndex ships no standard test suite for LLM integrations (unlike ``langchain-tests``), so this
base class plays that role. Subclass :class:`LlamaIndexLLMConformance` in a ``test_*.py`` module and
provide two fixtures:

* ``llm``: the LLM under test, talking to a real backend (for zerorouter: real LiteLLM HTTP calls to
  a local replay server);
* ``failing_llm``: the same kind of LLM whose every backend fails.

and, optionally, override :meth:`assert_response_metadata` (called on every final response, e.g. to
check routing metadata) and the ``supports_*`` / ``expected_error`` class attributes.

What the suite checks:

* the eight entry points ``chat``, ``stream_chat``, ``achat``, ``astream_chat``, ``complete``,
  ``stream_complete``, ``acomplete``, ``astream_complete``: non-empty text, streams whose deltas add
  up to the final text, and metadata on the final response;
* tool calling: ``chat_with_tools`` / ``achat_with_tools`` / ``stream_chat_with_tools``,
  ``predict_and_call`` / ``apredict_and_call``, forced ``tool_choice``, the caller's
  ``chat_history`` left untouched, and ``get_tool_calls_from_response`` on complete, partial,
  garbage and missing arguments;
* ``structured_predict`` / ``astructured_predict`` with a pydantic model;
* ``metadata``; error propagation from ``failing_llm`` (sync, async and streaming).

The backend is expected to answer a tool-enabled request with a call of the first (or forced) tool,
its integer arguments taken in order from the numbers of the last user message, and to answer a
tool result with text containing that result (the zerorouter replay server does exactly this).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from pydantic import BaseModel

__all__ = ["METHODS", "LlamaIndexLLMConformance", "invoke"]

#: The eight text entry points, as (name, is_chat, is_async, is_stream).
METHODS = [
    ("chat", True, False, False),
    ("stream_chat", True, False, True),
    ("achat", True, True, False),
    ("astream_chat", True, True, True),
    ("complete", False, False, False),
    ("stream_complete", False, False, True),
    ("acomplete", False, True, False),
    ("astream_complete", False, True, True),
]
_BY_NAME = {m[0]: m for m in METHODS}

PROMPT = "In one sentence, why is the sky blue?"


def multiply(a: int, b: int) -> int:
    """Multiply two integers and return the product."""
    return a * b


def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


class Invoice(BaseModel):
    """An invoice extracted from text."""

    number: int
    customer: str
    paid: bool


async def invoke(
    llm: FunctionCallingLLM, method: str, prompt: str = PROMPT, **kwargs: Any
) -> tuple[Any, list[Any]]:
    """Call ``method`` of ``llm`` with ``prompt``; return (final response, all streamed responses)."""
    name, is_chat, is_async, is_stream = _BY_NAME[method]
    arg: Any = [ChatMessage(role=MessageRole.USER, content=prompt)] if is_chat else prompt
    fn = getattr(llm, name)
    if not is_stream:
        resp = (await fn(arg, **kwargs)) if is_async else fn(arg, **kwargs)
        return resp, []
    parts: list[Any] = []
    if is_async:
        gen = await fn(arg, **kwargs)
        async for r in gen:
            parts.append(r)
    else:
        for r in fn(arg, **kwargs):
            parts.append(r)
    assert parts, f"{name} streamed nothing"
    return parts[-1], parts


def _text(resp: Any) -> str:
    return resp.message.content or "" if isinstance(resp, ChatResponse) else resp.text


class LlamaIndexLLMConformance:
    """Base class: subclass it and provide the ``llm`` and ``failing_llm`` fixtures."""

    #: The LLM reports ``is_function_calling_model`` and supports the tool tests.
    supports_tool_calling: bool = True
    #: ``structured_predict`` works (through tool calls for function-calling LLMs).
    supports_structured_predict: bool = True
    #: What ``failing_llm`` raises.
    expected_error: type[BaseException] = Exception

    @pytest.fixture
    def llm(self) -> FunctionCallingLLM:  # pragma: no cover - provided by subclasses
        raise NotImplementedError("subclasses provide an `llm` fixture")

    @pytest.fixture
    def failing_llm(self) -> FunctionCallingLLM:  # pragma: no cover - provided by subclasses
        raise NotImplementedError("subclasses provide a `failing_llm` fixture")

    # ---- hooks
    def assert_response_metadata(self, llm: Any, response: Any) -> None:
        """Extra checks on every final (non-delta) response; the default checks nothing."""

    def assert_error(self, llm: Any, error: BaseException) -> None:
        """Extra checks on the error raised by ``failing_llm``; the default checks nothing."""

    # ---- metadata
    def test_metadata(self, llm: FunctionCallingLLM) -> None:
        meta = llm.metadata
        assert meta.is_chat_model is True
        assert meta.is_function_calling_model is self.supports_tool_calling
        assert meta.context_window > 0
        assert meta.num_output > 0
        assert meta.model_name
        assert isinstance(llm.class_name(), str) and llm.class_name()
        payload = llm.to_payload()
        assert payload["class_name"] == llm.class_name()

    # ---- the eight entry points
    @pytest.mark.parametrize("method", [m[0] for m in METHODS])
    async def test_generate(self, llm: FunctionCallingLLM, method: str) -> None:
        final, parts = await invoke(llm, method)
        is_chat = _BY_NAME[method][1]
        assert isinstance(final, ChatResponse if is_chat else CompletionResponse)
        text = _text(final)
        assert text.strip(), f"{method} returned empty text"
        if is_chat:
            assert final.message.role == MessageRole.ASSISTANT
        if parts:
            deltas = "".join(p.delta or "" for p in parts)
            assert deltas == text, f"{method}: deltas {deltas!r} do not add up to the text {text!r}"
            assert len(parts) >= 2, f"{method} yielded a single response; expected deltas and a final one"
            for earlier, later in itertools.pairwise(parts):
                assert _text(later).startswith(_text(earlier))
        self.assert_response_metadata(llm, final)

    # ---- tool calling
    def _tools(self) -> list[FunctionTool]:
        return [FunctionTool.from_defaults(fn=multiply), FunctionTool.from_defaults(fn=add)]

    def _skip_without_tools(self) -> None:
        if not self.supports_tool_calling:
            pytest.skip("this LLM does not support tool calling")

    def test_chat_with_tools(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        resp = llm.chat_with_tools(self._tools(), user_msg="Multiply 6 by 7.")
        calls = llm.get_tool_calls_from_response(resp)
        assert len(calls) == 1
        assert calls[0].tool_name == "multiply"
        assert calls[0].tool_kwargs == {"a": 6, "b": 7}
        assert calls[0].tool_id
        self.assert_response_metadata(llm, resp)

    async def test_achat_with_tools_forced_choice(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        resp = await llm.achat_with_tools(self._tools(), user_msg="Combine 2 and 3.", tool_choice="add")
        calls = llm.get_tool_calls_from_response(resp)
        assert [c.tool_name for c in calls] == ["add"]
        assert calls[0].tool_kwargs == {"a": 2, "b": 3}

    def test_stream_chat_with_tools(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        last = None
        for last in llm.stream_chat_with_tools(self._tools(), user_msg="Multiply 8 by 9."):
            # partial arguments must parse (or give {}) without raising
            llm.get_tool_calls_from_response(last, error_on_no_tool_call=False)
        assert last is not None
        calls = llm.get_tool_calls_from_response(last)
        assert [(c.tool_name, c.tool_kwargs) for c in calls] == [("multiply", {"a": 8, "b": 9})]
        self.assert_response_metadata(llm, last)

    def test_chat_history_is_not_mutated(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        history = [
            ChatMessage(role=MessageRole.SYSTEM, content="You are a calculator."),
            ChatMessage(role=MessageRole.USER, content="Hi."),
        ]
        before = [m.model_dump() for m in history]
        ids = [id(m) for m in history]
        kwargs = llm._prepare_chat_with_tools(
            self._tools(), user_msg="Multiply 4 by 5.", chat_history=history
        )
        assert len(kwargs["messages"]) == 3 and kwargs["messages"] is not history
        llm.chat_with_tools(self._tools(), user_msg="Multiply 4 by 5.", chat_history=history)
        assert [id(m) for m in history] == ids
        assert [m.model_dump() for m in history] == before

    def test_tool_result_round_trip(self, llm: FunctionCallingLLM) -> None:
        """An assistant tool call plus a tool result in the history is sent back correctly."""
        self._skip_without_tools()
        tools = self._tools()
        first = llm.chat_with_tools(tools, user_msg="Multiply 6 by 7.")
        call = llm.get_tool_calls_from_response(first)[0]
        history = [
            ChatMessage(role=MessageRole.USER, content="Multiply 6 by 7."),
            first.message,
            ChatMessage(
                role=MessageRole.TOOL,
                content="42",
                additional_kwargs={"tool_call_id": call.tool_id, "name": call.tool_name},
            ),
        ]
        second = llm.chat_with_tools(tools, chat_history=history)
        assert llm.get_tool_calls_from_response(second, error_on_no_tool_call=False) == []
        assert "42" in (second.message.content or "")

    def test_predict_and_call(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        out = llm.predict_and_call(self._tools(), user_msg="Multiply 6 by 7.")
        assert out.response == "42"
        assert out.sources and out.sources[0].tool_name == "multiply"
        assert out.sources[0].raw_input["kwargs"] == {"a": 6, "b": 7}

    async def test_apredict_and_call(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        out = await llm.apredict_and_call(self._tools(), user_msg="Multiply 3 by 11.")
        assert out.response == "33"

    def test_tool_call_parsing(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()

        def response(*calls: dict, blocks: list | None = None) -> ChatResponse:
            kw = {"tool_calls": list(calls)} if calls else {}
            msg = ChatMessage(
                role=MessageRole.ASSISTANT, blocks=blocks or [TextBlock(text="")], additional_kwargs=kw
            )
            return ChatResponse(message=msg)

        def call(args: Any, name: str = "multiply", cid: str = "call_1") -> dict:
            return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}

        get = llm.get_tool_calls_from_response
        assert get(response(call('{"a": 2, "b": 3}')))[0].tool_kwargs == {"a": 2, "b": 3}
        assert get(response(call({"a": 1})))[0].tool_kwargs == {"a": 1}  # already a dict
        assert get(response(call('{"a": 2, "b": ')))[0].tool_kwargs == {"a": 2}  # truncated stream
        assert get(response(call("not json at all")))[0].tool_kwargs == {}
        assert get(response(call("[1, 2]")))[0].tool_kwargs == {}  # not an object
        assert get(response(call("")))[0].tool_kwargs == {}
        two = get(response(call("{}", "add", "c1"), call('{"a": 1, "b": 2}', "multiply", "c2")))
        assert [(c.tool_id, c.tool_name) for c in two] == [("c1", "add"), ("c2", "multiply")]
        blocks = get(
            response(
                blocks=[ToolCallBlock(tool_call_id="b1", tool_name="add", tool_kwargs='{"a": 5, "b": 6}')]
            )
        )
        assert [(c.tool_id, c.tool_name, c.tool_kwargs) for c in blocks] == [("b1", "add", {"a": 5, "b": 6})]
        with pytest.raises(ValueError):
            get(response())
        assert get(response(), error_on_no_tool_call=False) == []

    def test_parallel_tool_calls_truncated_when_not_allowed(self, llm: FunctionCallingLLM) -> None:
        self._skip_without_tools()
        calls = [
            {"id": f"c{i}", "type": "function", "function": {"name": "add", "arguments": "{}"}}
            for i in range(2)
        ]
        resp = ChatResponse(
            message=ChatMessage(
                role=MessageRole.ASSISTANT, content="", additional_kwargs={"tool_calls": calls}
            )
        )
        one = llm._validate_chat_with_tools_response(resp, self._tools(), allow_parallel_tool_calls=False)
        assert [c.tool_id for c in llm.get_tool_calls_from_response(one)] == ["c0"]
        both = llm._validate_chat_with_tools_response(resp, self._tools(), allow_parallel_tool_calls=True)
        assert len(llm.get_tool_calls_from_response(both)) == 2
        assert len(resp.message.additional_kwargs["tool_calls"]) == 2  # the original is untouched

    # ---- structured output
    def test_structured_predict(self, llm: FunctionCallingLLM) -> None:
        if not self.supports_structured_predict:
            pytest.skip("structured_predict not supported")
        prompt = PromptTemplate("Extract the invoice from: {text}")
        out = llm.structured_predict(Invoice, prompt, text="Invoice 1042 for ACME, paid.")
        assert isinstance(out, Invoice)
        assert out.number == 1042

    async def test_astructured_predict(self, llm: FunctionCallingLLM) -> None:
        if not self.supports_structured_predict:
            pytest.skip("structured_predict not supported")
        prompt = PromptTemplate("Extract the invoice from: {text}")
        out = await llm.astructured_predict(Invoice, prompt, text="Invoice 77 for Initech, unpaid.")
        assert isinstance(out, Invoice) and out.number == 77

    # ---- errors
    @pytest.mark.parametrize("method", ["chat", "achat", "stream_chat", "astream_complete"])
    async def test_error_propagates(self, failing_llm: FunctionCallingLLM, method: str) -> None:
        with pytest.raises(self.expected_error) as info:
            await invoke(failing_llm, method)
        self.assert_error(failing_llm, info.value)


def run(coro: Any) -> Any:
    """Run a coroutine from sync code (helper for subclasses)."""
    return asyncio.run(coro)
