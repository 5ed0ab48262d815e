"""Issue 14: property-based fuzzing of every entry point (hypothesis, derandomized).

Each generated request goes through ``route``, ``complete``, ``stream``, LangChain ``invoke`` (with
dicts and with message objects) or LlamaIndex ``chat``, against real models on the replay server.
Every outcome must be an answer or a documented ``ZeroRouterError`` subclass; anything else fails.
Six entry points × 45 examples = 270 generated requests.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zerorouter_integrations.dispatch import RetryPolicy
from zerorouter_integrations.errors import ZeroRouterError
from zerorouter_integrations.stores import MemoryStore
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer
from zerorouter_integrations.testing.fixtures import replay_endpoints, replay_router

POOL = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mixtral-8x7b-chat"]
EXAMPLES = 45
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

# ------------------------------------------------------------------------------- strategies
HOSTILE = st.sampled_from(["", " ", "\ud800", "a\udfffb", "\x00", "\ufffe", "é" * 50, "What is 2 + 2?", "{}"])
TEXT = st.one_of(HOSTILE, st.text(alphabet=st.characters(exclude_categories=()), max_size=80))
PART = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(TEXT, st.integers(), st.none())}),
    st.fixed_dictionaries(
        {"type": st.just("image_url"), "image_url": st.one_of(st.just({"url": "data:,x"}), TEXT)}
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["hologram", 3, None])}),
    TEXT,
    st.integers(),
)
CONTENT = st.one_of(
    TEXT, st.none(), st.integers(), st.floats(allow_nan=True), st.lists(PART, max_size=3), st.just({"a": 1})
)
ARGS = st.one_of(
    TEXT, st.just('{"x": 1}'), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.integers()
)
TOOL_CALL = st.one_of(
    st.fixed_dictionaries(
        {"id": st.one_of(st.just("call_1"), st.integers()), "type": st.sampled_from(["function", "bogus"])},
        optional={
            "function": st.fixed_dictionaries(
                {}, optional={"name": st.one_of(TEXT, st.integers()), "arguments": ARGS}
            )
        },
    ),
    st.integers(),
    TEXT,
)
MESSAGE = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(
                ["user", "user", "system", "assistant", "tool", "developer", "wizard", 7]
            ),
            "content": CONTENT,
        },
        optional={
            "tool_calls": st.one_of(st.none(), st.lists(TOOL_CALL, max_size=2), st.integers()),
            "tool_call_id": st.one_of(st.just("call_1"), st.integers()),
            "name": st.one_of(st.just("bob"), st.integers()),
        },
    ),
    st.integers(),
    st.none(),
)
MESSAGES = st.one_of(
    TEXT, st.lists(MESSAGE, max_size=4), st.just({"role": "user", "content": "hi"}), st.integers()
)
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "temperature": st.one_of(
            st.floats(min_value=0, max_value=1), st.just(float("nan")), st.just(object())
        ),
        "max_tokens": st.integers(min_value=-2, max_value=64),
        "stop": st.one_of(st.lists(st.text(max_size=3), max_size=2), st.integers()),
    },
)


@st.composite
def langchain_messages(draw):
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        kind = draw(st.sampled_from(["human", "human", "system", "ai", "tool"]))
        content = draw(
            st.one_of(TEXT, st.lists(PART.filter(lambda p: isinstance(p, (str, dict))), max_size=2))
        )
        try:
            if kind == "human":
                out.append(HumanMessage(content=content))
            elif kind == "system":
                out.append(SystemMessage(content=content))
            elif kind == "ai":
                calls = draw(
                    st.lists(
                        st.fixed_dictionaries(
                            {"name": st.text(max_size=5), "args": st.just({}), "id": st.just("c1")}
                        ),
                        max_size=1,
                    )
                )
                out.append(AIMessage(content=content, tool_calls=calls))
            else:
                out.append(ToolMessage(content=content, tool_call_id=draw(st.sampled_from(["c1", ""]))))
        except Exception:  # the framework refused to build it: nothing of ours to test
            continue
    return out


@st.composite
def llamaindex_messages(draw):
    from llama_index.core.llms import ChatMessage

    out = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        role = draw(st.sampled_from(["user", "user", "system", "assistant", "tool"]))
        try:
            out.append(ChatMessage(role=role, content=draw(TEXT)))
        except Exception:
            continue
    return out


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server():
    behaviours = {m: ModelBehaviour() for m in POOL}
    behaviours[POOL[2]] = ModelBehaviour(fail_rate=0.2, fail_status=500)
    with ReplayServer(behaviours, seed=3) as srv:
        yield srv


@pytest.fixture(scope="module")
def router(server):
    return replay_router(
        server, POOL, store=MemoryStore(), retry=RetryPolicy(max_retries=0, backoff_s=0.0, timeout_s=5.0)
    )


@pytest.fixture(scope="module")
def chat(router):
    from langchain_router import ZeroRouterChat

    return ZeroRouterChat(router=router)


@pytest.fixture(scope="module")
def llm(server):
    from llamaindex_router import ZeroRouterLLM

    return ZeroRouterLLM(models=POOL, endpoints=replay_endpoints(server, POOL))


def _outcome(call) -> str:
    """Run ``call``: ``"answer"`` or the ZeroRouterError's class name; any other exception fails."""
    try:
        call()
    except ZeroRouterError as exc:
        return type(exc).__name__
    return "answer"


# ------------------------------------------------------------------------------- properties
@FUZZ
@given(messages=MESSAGES)
def test_fuzz_route(router, messages):
    _outcome(lambda: router.route(messages))


@FUZZ
@given(messages=MESSAGES, params=PARAMS)
def test_fuzz_complete(router, messages, params):
    _outcome(lambda: router.complete(messages, **params))


@FUZZ
@given(messages=MESSAGES, params=PARAMS)
def test_fuzz_stream(router, messages, params):
    _outcome(lambda: list(router.stream(messages, **params)))


@FUZZ
@given(messages=MESSAGES)
def test_fuzz_langchain_invoke_with_dicts(chat, messages):
    _outcome(lambda: chat.invoke(messages))


@FUZZ
@given(messages=langchain_messages())
def test_fuzz_langchain_invoke_with_message_objects(chat, messages):
    _outcome(lambda: chat.invoke(messages))


@FUZZ
@given(messages=llamaindex_messages())
def test_fuzz_llamaindex_chat(llm, messages):
    _outcome(lambda: llm.chat(messages))
