"""A local OpenAI-compatible replay server for tests, examples and benchmarks.

:class:`ReplayServer` listens on ``127.0.0.1`` in a background thread (stdlib
:class:`http.server.ThreadingHTTPServer`, no asyncio) and serves:

* ``POST /v1/chat/completions``: non-stream, and SSE stream with
  ``stream_options.include_usage`` (a last chunk with empty ``choices`` and ``usage``);
* ``GET /v1/models`` and ``GET /health``.

The model that answers is the request's ``model`` field (LiteLLM sends ``openai/<name>`` as
``<name>``). What it answers, first match wins:

1. a ``scripted`` entry whose regex matches the last user message (tests script answers);
2. the model's ``ModelBehaviour.reply``;
3. a tool call, when ``tools`` are given, ``tool_choice`` is not ``"none"`` and the last message is
   not a tool result: the forced tool (or the first one) with arguments built from its JSON schema;
4. a JSON object built from ``response_format`` (``json_schema`` or ``json_object``);
5. the *recorded* response of that model, when the last user message (or the whole prompt) is a
   known prompt of a routing table given by ``table_dirs`` (e.g. ``routerbench_subset``, whose
   ``outcome_extras.parquet`` holds real responses) or by ``responses``;
6. otherwise a deterministic reply derived from a hash of (model, prompt).

Usage is counted like the data sets do: ``prompt_tokens = ceil(chars / 4)`` over the messages and
``completion_tokens = ceil(len(answer) / 4)``.

Per model, a :class:`ModelBehaviour` adds latency, time to first token, a generation speed and
failure injection (HTTP status, 429 with ``Retry-After``, a hang past the client's timeout, an
abrupt connection close). Failure draws are seeded, so a run is reproducible.

The server is split by idea: :mod:`~zerorouter_integrations.testing.replay_types` (``ModelBehaviour``,
``RecordedRequest``, ``ScriptedReply``), :mod:`~zerorouter_integrations.testing.replay_tables` (recorded
answers), :mod:`~zerorouter_integrations.testing.replay_answers` (what a model answers),
:mod:`~zerorouter_integrations.testing.replay_http` (handler, failures, streams),
:mod:`~zerorouter_integrations.testing.replay_server` (``ReplayServer``) and
:mod:`~zerorouter_integrations.testing.replay_cli` (``serve_replay_main``); this module gathers them.

Examples
--------
>>> from zerorouter_integrations.testing import ReplayServer, ModelBehaviour
>>> with ReplayServer({"small": ModelBehaviour(), "big": ModelBehaviour(latency_s=0.01)}) as srv:
...     url = srv.base_url          # pass as api_base, with model="openai/small"
...     srv.request_count("small")
0

"""

from __future__ import annotations

from zerorouter_integrations.testing.replay_answers import deterministic_reply
from zerorouter_integrations.testing.replay_cli import serve_replay_main
from zerorouter_integrations.testing.replay_server import ReplayServer
from zerorouter_integrations.testing.replay_types import (
    FailMode,
    ModelBehaviour,
    RecordedRequest,
    ScriptedReply,
)

__all__ = [
    "FailMode",
    "ModelBehaviour",
    "RecordedRequest",
    "ReplayServer",
    "ScriptedReply",
    "deterministic_reply",
    "serve_replay_main",
]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(serve_replay_main())
