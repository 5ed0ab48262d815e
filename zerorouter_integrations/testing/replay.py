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

Examples
--------
>>> from zerorouter_integrations.testing import ReplayServer, ModelBehaviour
>>> with ReplayServer({"small": ModelBehaviour(), "big": ModelBehaviour(latency_s=0.01)}) as srv:
...     url = srv.base_url          # pass as api_base, with model="openai/small"
...     srv.request_count("small")
0
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.server
import json
import logging
import math
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.extras import need

__all__ = [
    "ModelBehaviour",
    "RecordedRequest",
    "ReplayServer",
    "ScriptedReply",
    "deterministic_reply",
    "serve_replay_main",
]

logger = logging.getLogger(__name__)

FailMode = Literal["status", "timeout", "close", "midstream"]
_FAIL_MODES = ("status", "timeout", "close", "midstream")

#: A scripted or per-model reply: answer text; a dict with ``content`` and/or ``tool_calls``
#: (``[{"name": ..., "arguments": {...}}]``) or the shorthand ``tool_call``; or a callable that gets
#: the parsed request body and returns one of these, or ``None`` to fall through.
ScriptedReply = str | Mapping[str, Any] | Callable[[dict], Any]


@dataclass
class ModelBehaviour:
    """How one model of the replay server behaves.

    Parameters
    ----------
    latency_s : float, default=0.0
        Delay before anything is sent back.
    ttft_s : float, default=0.0
        Extra delay before the first content (streams) or before the whole answer (non-stream).
    tokens_per_s : float or None, default=None
        Generation speed; ``None`` sends the answer at once. A stream sends one token
        (about four characters) per chunk.
    fail_rate : float, default=0.0
        Probability in [0, 1] that a request fails; draws are seeded per model.
    fail_status : int, default=500
        HTTP status of an injected ``"status"`` failure (``429`` adds a ``Retry-After`` header).
    fail_mode : {"status", "timeout", "close", "midstream"}, default="status"
        ``"status"``: an OpenAI-style error body with ``fail_status``. ``"timeout"``: hang for
        ``hang_s`` (past the client's timeout). ``"close"``: reset the connection without a reply.
        ``"midstream"``: streams send a few content chunks and then reset the connection
        (non-stream requests behave like ``"close"``).
    fail_first_n : int, default=0
        The next ``fail_first_n`` requests of this model fail, whatever ``fail_rate`` says.
    reply : str, dict, callable or None, default=None
        A fixed answer of this model (see :data:`ScriptedReply`).
    retry_after_s : float, default=0.0
        Value of the ``Retry-After`` header sent with 429 failures.
    hang_s : float, default=30.0
        How long a ``"timeout"`` failure hangs (it ends early when the server stops).
    fail_message : str or None, default=None
        Error message of ``"status"`` failures; a message containing "context length" makes
        OpenAI-compatible clients raise their context-window error.
    """

    latency_s: float = 0.0
    ttft_s: float = 0.0
    tokens_per_s: float | None = None
    fail_rate: float = 0.0
    fail_status: int = 500
    fail_mode: FailMode = "status"
    fail_first_n: int = 0
    reply: ScriptedReply | None = None
    retry_after_s: float = 0.0
    hang_s: float = 30.0
    fail_message: str | None = None

    def __post_init__(self) -> None:
        if self.fail_mode not in _FAIL_MODES:
            raise ValueError(f"fail_mode={self.fail_mode!r}; expected one of {_FAIL_MODES}")
        if not 0.0 <= float(self.fail_rate) <= 1.0:
            raise ValueError(f"fail_rate={self.fail_rate!r}; expected a probability in [0, 1]")
        for name in ("latency_s", "ttft_s", "retry_after_s", "hang_s"):
            if float(getattr(self, name)) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected a value >= 0")
        if self.tokens_per_s is not None and self.tokens_per_s <= 0:
            raise ValueError(f"tokens_per_s={self.tokens_per_s!r}; expected > 0 or None")
        if int(self.fail_first_n) < 0:
            raise ValueError(f"fail_first_n={self.fail_first_n!r}; expected an integer >= 0")


@dataclass
class RecordedRequest:
    """One request the server received (``server.requests``)."""

    model: str | None
    path: str
    body: dict | None
    stream: bool
    status: int  # HTTP status sent; 0 when the connection was dropped or hung
    source: str  # "recorded", "responses", "deterministic", "tool", "json",
    #                           "scripted", "reply", "tool_result", "failure" or "error"
    time: float = field(default_factory=time.time)


# --------------------------------------------------------------------------------------------
# Recorded answers (routing tables), loaded lazily in a background thread
# --------------------------------------------------------------------------------------------


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.strip().encode("utf-8", "surrogatepass"), digest_size=12).digest()


def _table_dir(d: str | Path) -> Path:
    """A routing-table folder, or the name of a table in the shared data folder (``find_data_dir``)."""
    path = Path(d)
    if (path / "prompts.parquet").is_file():
        return path
    if len(path.parts) == 1 and not path.exists():
        try:
            return find_data_dir(table=str(path))
        except SchemaError as exc:
            raise SchemaError(
                f"table dir {str(d)!r} is neither a routing-table folder nor a table of the shared data: {exc}"
            ) from None
    raise SchemaError(
        f"table dir {str(d)!r} has no prompts.parquet; expected a routing-table folder such as "
        "../shared/data/routerbench_subset, or a table name such as 'routerbench_subset' "
        "(looked up in $ZEROROUTER_DATA or ../shared/data)"
    )


class _RecordedAnswers:
    """Index prompt text hash → prompt id, and (prompt id, model) → recorded response."""

    _ALT_COLUMNS = ("question_only", "question", "query")

    def __init__(self, table_dirs: Sequence[str | Path]):
        self.dirs = [_table_dir(d) for d in table_dirs]
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        self._error: BaseException | None = None
        self.by_text: dict[bytes, list[str]] = {}
        self.answers: dict[str, dict[str, str]] = {}
        self.models: list[str] = []

    def start_background_load(self) -> None:
        threading.Thread(target=self.ensure_loaded, name="replay-table-load", daemon=True).start()

    def ensure_loaded(self) -> None:
        if self._loaded.is_set():
            return
        with self._lock:
            if self._loaded.is_set():
                return
            try:
                self._load()
            except BaseException as exc:
                self._error = exc
                logger.exception("replay server: loading tables %s failed", self.dirs)
            finally:
                self._loaded.set()

    def _load(self) -> None:
        need("tables", "the replay server's routing tables")
        import pyarrow.parquet as pq  # lazy: ~0.5 s

        models: dict[str, None] = {}
        for d in self.dirs:
            prefix = f"{d.name}::"
            prompts = pq.read_table(d / "prompts.parquet", columns=["prompt_id", "prompt"]).to_pydict()
            for pid, text in zip(prompts["prompt_id"], prompts["prompt"]):
                if isinstance(text, str):
                    self._index(text, prefix + str(pid))
            extras = d / "prompt_extras.parquet"
            if extras.is_file():
                cols = [c for c in self._ALT_COLUMNS if c in pq.read_schema(extras).names]
                if cols:
                    ex = pq.read_table(extras, columns=["prompt_id", *cols]).to_pydict()
                    for col in cols:
                        for pid, text in zip(ex["prompt_id"], ex[col]):
                            if isinstance(text, str) and text.strip():
                                self._index(text, prefix + str(pid))
            oe = d / "outcome_extras.parquet"
            if oe.is_file() and "response" in pq.read_schema(oe).names:
                rows = pq.read_table(oe, columns=["prompt_id", "model", "response"]).to_pydict()
                for pid, model, resp in zip(rows["prompt_id"], rows["model"], rows["response"]):
                    if isinstance(resp, str):
                        self.answers.setdefault(prefix + str(pid), {})[model] = resp
                        models[model] = None
            else:
                logger.info("replay server: %s has no recorded responses; prompts only", d)
        self.models = list(models)

    def _index(self, text: str, pid: str) -> None:
        pids = self.by_text.setdefault(_key(text), [])
        if pid not in pids:
            pids.append(pid)

    def lookup(self, model: str, texts: Iterable[str]) -> str | None:
        self.ensure_loaded()
        for text in texts:
            for pid in self.by_text.get(_key(text), ()):
                answer = self.answers.get(pid, {}).get(model)
                if answer is not None:
                    return answer
        return None


# --------------------------------------------------------------------------------------------
# Pure helpers: message text, schema → value, deterministic text
# --------------------------------------------------------------------------------------------

_WORDS = (
    "answer",
    "result",
    "model",
    "value",
    "because",
    "therefore",
    "the",
    "a",
    "is",
    "of",
    "clear",
    "simple",
    "first",
    "second",
    "option",
    "reason",
    "given",
    "so",
    "we",
    "find",
    "this",
    "that",
    "short",
    "final",
    "check",
    "step",
    "number",
    "text",
    "replay",
    "output",
)


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict):
                if isinstance(part.get("text"), str):
                    parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return str(content)


def _message_chars(messages: Sequence[dict]) -> int:
    total = 0
    for m in messages:
        if isinstance(m, dict):
            total += len(_text_of(m.get("content")))
            for tc in m.get("tool_calls") or ():
                fn = (tc or {}).get("function") or {}
                total += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    return total


def _last_user_text(messages: Sequence[dict]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def _prompt_texts(messages: Sequence[dict]) -> list[str]:
    """Candidate texts to match a recorded prompt: the last user message, then the whole prompt."""
    last = _last_user_text(messages)
    whole = "\n".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    out = [last] if last.strip() else []
    if whole.strip() and whole.strip() != last.strip():
        out.append(whole)
    return out


def _digest(*parts: str) -> bytes:
    h = hashlib.blake2b(digest_size=32)
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.digest()


def deterministic_reply(model: str, prompt: str) -> str:
    """A reply that depends only on (model, prompt)."""
    d = _digest(model, prompt)
    n = 8 + d[0] % 17
    words = [_WORDS[d[1 + i % 31] * (i + 1) % len(_WORDS)] for i in range(n)]
    return f"{model} says: " + " ".join(words) + "."


_NUM_RE = re.compile(r"-?\d+(?:\.\d+)?")


class _SchemaFiller:
    """Build a deterministic value that validates against a (simple) JSON schema.

    Integers and numbers take, in order, the numbers written in the user's message (so
    "magic_function(3)" gives ``{"input": 3}``); strings take ``enum[0]``, a ``default``, or a
    short text naming the field.
    """

    def __init__(self, root: Mapping[str, Any], prompt: str):
        self.root = root
        self.numbers = [float(x) for x in _NUM_RE.findall(prompt)]

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 20:
            ref = str(schema["$ref"])
            node: Any = self.root
            if ref.startswith("#/"):
                for part in ref[2:].split("/"):
                    node = node.get(part, {}) if isinstance(node, Mapping) else {}
            else:
                node = {}
            schema = node
            seen += 1
        return schema if isinstance(schema, Mapping) else {}

    def value(self, schema: Any, name: str = "value", depth: int = 0) -> Any:
        schema = self._resolve(schema) if isinstance(schema, Mapping) else {}
        if depth > 8:
            return None
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None:
            return schema["default"]
        for key in ("anyOf", "oneOf", "allOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                non_null = [o for o in options if self._resolve(o).get("type") != "null"]
                if key == "allOf":
                    merged: dict[str, Any] = {}
                    for o in options:
                        merged.update(self._resolve(o))
                    return self.value(merged, name, depth + 1)
                return self.value(non_null[0] if non_null else options[0], name, depth + 1)
        typ = schema.get("type")
        if isinstance(typ, list):
            typ = next((t for t in typ if t != "null"), "null")
        if typ is None:
            typ = "object" if "properties" in schema else "string"
        if typ == "object":
            props = schema.get("properties") or {}
            return {k: self.value(v, k, depth + 1) for k, v in props.items()}
        if typ == "array":
            n = max(1, int(schema.get("minItems", 1)))
            return [self.value(schema.get("items") or {}, name, depth + 1) for _ in range(n)]
        if typ == "integer":
            if self.numbers:
                return int(self.numbers.pop(0))
            return int(schema.get("minimum", 1))
        if typ == "number":
            if self.numbers:
                return self.numbers.pop(0)
            return float(schema.get("minimum", 1.5))
        if typ == "boolean":
            return True
        if typ == "null":
            return None
        return f"{name} {hashlib.blake2b(name.encode(), digest_size=2).hexdigest()}"


def _tool_schema(tool: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    fn = tool.get("function", tool) if isinstance(tool, Mapping) else {}
    return str(fn.get("name", "tool")), fn.get("parameters") or {"type": "object", "properties": {}}


# --------------------------------------------------------------------------------------------
# The answer: content or tool calls, and where it came from
# --------------------------------------------------------------------------------------------


@dataclass
class _Answer:
    content: str | None
    tool_calls: list[dict]
    source: str
    finish_reason: str = "stop"


def _call_id(model: str, name: str, args: str, i: int) -> str:
    return "call_" + hashlib.blake2b(f"{model}|{name}|{args}|{i}".encode(), digest_size=8).hexdigest()


def _as_answer(value: Any, model: str, source: str) -> _Answer | None:
    if value is None:
        return None
    if isinstance(value, str):
        return _Answer(value, [], source)
    if isinstance(value, Mapping):
        raw_calls = list(value.get("tool_calls") or [])
        if value.get("tool_call"):
            raw_calls.append(value["tool_call"])
        calls = []
        for i, tc in enumerate(raw_calls):
            fn = tc.get("function", tc)
            args = fn.get("arguments", {})
            args_s = args if isinstance(args, str) else json.dumps(args)
            name = str(fn["name"])
            calls.append(
                {
                    "id": tc.get("id") or _call_id(model, name, args_s, i),
                    "type": "function",
                    "function": {"name": name, "arguments": args_s},
                }
            )
        content = value.get("content")
        return _Answer(
            content, calls, source, value.get("finish_reason") or ("tool_calls" if calls else "stop")
        )
    raise SchemaError(
        f"scripted reply {value!r}; expected a str, a dict with 'content' / 'tool_calls' / "
        "'tool_call', or a callable returning one of these"
    )


# --------------------------------------------------------------------------------------------
# HTTP handler
# --------------------------------------------------------------------------------------------


class _Dropped(Exception):
    """The connection was dropped on purpose (failure injection)."""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zerorouter-replay/0.1"
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        # Small writes (headers, then body; SSE chunks) must not wait for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("replay %s - " + format, self.address_string(), *args)

    # ---- plumbing
    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(
        self,
        status: int,
        message: str,
        typ: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._send_json(
            status, {"error": {"message": message, "type": typ, "param": None, "code": code}}, headers
        )

    def _reset(self) -> None:
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile, self.connection):  # all refs closed → RST now
            try:
                f.close()
            except OSError:
                pass
        self.close_connection = True
        raise _Dropped

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except _Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ---- routes
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/health", "/v1/health"):
            self._send_json(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            now = int(time.time())
            self._send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": now, "owned_by": "replay"}
                        for m in self.server.replay.model_names()
                    ],
                },
            )
        else:
            self._error(404, f"no route GET {path}; expected /v1/models or /health", "invalid_request_error")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route POST {path}; expected /v1/chat/completions", "invalid_request_error")
            return
        self.server.replay._handle_chat(self, raw)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    replay: ReplayServer


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class ReplayServer:
    """Local OpenAI-compatible server that replays recorded answers (see the module docstring).

    Parameters
    ----------
    models : dict of str to ModelBehaviour, list of str, or None, default=None
        The models served. ``None`` serves any model name with ``default_behaviour``;
        otherwise an unknown model gets HTTP 404 ``model_not_found``.
    table_dirs : sequence of path, default=()
        Routing-table folders (``prompts.parquet``, ``outcome_extras.parquet`` with a
        ``response`` column, optional ``prompt_extras.parquet``), or names of tables in the shared
        data folder (:func:`~zerorouter_integrations.data.find_data_dir`). Loaded lazily in a background
        thread when the server starts; the first lookup waits for it.
    responses : mapping, default=None
        Extra recorded answers: prompt text → answer for every model, or → {model: answer}.
    scripted : sequence of (regex, reply), default=()
        Answers matched (``re.search``) against the last user message before anything else. A
        reply is a :data:`ScriptedReply`; a static tool-call reply is skipped when the last message
        is a tool result, so an agent loop ends with a text answer.
    host : str, default="127.0.0.1"
    port : int, default=0
        0 picks a free port.
    seed : int, default=0
        Seeds the per-model failure draws.
    default_behaviour : ModelBehaviour or None, default=None
        Behaviour of models without their own.
    require_api_key : str or None, default=None
        When set, requests without ``Authorization: Bearer <key>`` get HTTP 401.
    """

    def __init__(
        self,
        models: Mapping[str, ModelBehaviour] | Sequence[str] | None = None,
        *,
        table_dirs: Sequence[str | Path] = (),
        responses: Mapping[str, str | Mapping[str, str]] | None = None,
        scripted: Sequence[tuple[str | re.Pattern, ScriptedReply]] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        default_behaviour: ModelBehaviour | None = None,
        require_api_key: str | None = None,
    ):
        if isinstance(models, str):
            raise TypeError(f"models={models!r}; expected a dict, a list of names or None")
        self._lock = threading.Lock()
        self._open = models is None
        self._default = default_behaviour or ModelBehaviour()
        self._behaviours: dict[str, ModelBehaviour] = {}
        self._forced_failures: dict[str, int] = {}
        self._rngs: dict[str, random.Random] = {}
        self._counts: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self.seed = int(seed)
        if isinstance(models, Mapping):
            for name, b in models.items():
                self._set(name, b if b is not None else ModelBehaviour())
        elif models is not None:
            for name in models:
                self._set(str(name), ModelBehaviour())
        self._tables = _RecordedAnswers(table_dirs) if table_dirs else None
        self._responses: dict[bytes, str | Mapping[str, str]] = {
            _key(k): v for k, v in (responses or {}).items()
        }
        self._scripted: list[tuple[re.Pattern, ScriptedReply]] = []
        for pattern, reply in scripted:
            self.add_scripted(pattern, reply)
        self.host = host
        self._port = int(port)
        self.require_api_key = require_api_key
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._id_counter = 0

    # ---- lifecycle
    def start(self) -> ReplayServer:
        """Bind and serve in a daemon thread; returns ``self``. Tables load in the background."""
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = _HTTPServer((self.host, self._port), _Handler)
        httpd.replay = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"replay-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if self._tables is not None:
            self._tables.start_background_load()
        return self

    def stop(self) -> None:
        """Stop serving, wake hanging handlers and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stop.set()
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    close = stop

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Block until the routing tables are loaded (True), or the timeout passes (False)."""
        if self._tables is None:
            return True
        if timeout is None:
            self._tables.ensure_loaded()
        else:
            self._tables._loaded.wait(timeout)
        return self._tables._loaded.is_set()

    # ---- addresses
    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd is not None else self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (without ``/v1``)."""
        if self._httpd is None:
            raise RuntimeError("the replay server is not started; call start() or use `with`")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port/v1``: the ``api_base`` to give LiteLLM / the OpenAI SDK."""
        return self.url + "/v1"

    def litellm_params(self, name: str, **extra: Any) -> dict:
        """``{"model": "openai/<name>", "api_base": ..., "api_key": "sk-test", **extra}``."""
        return {"model": f"openai/{name}", "api_base": self.base_url, "api_key": "sk-test", **extra}

    # ---- behaviour and counters
    def _set(self, name: str, behaviour: ModelBehaviour, arm: bool = True) -> None:
        self._behaviours[name] = behaviour
        if arm:
            self._forced_failures[name] = int(behaviour.fail_first_n)
        self._rngs.setdefault(name, random.Random(f"{self.seed}:{name}"))

    def set_behaviour(
        self, name: str, behaviour: ModelBehaviour | None = None, **changes: Any
    ) -> ModelBehaviour:
        """Replace a model's behaviour, or change some fields (``set_behaviour("m", fail_rate=1)``).

        ``fail_first_n`` counts from this call on when a whole behaviour is given or
        ``fail_first_n`` is among the changes. Adds the model when it was not served.
        """
        with self._lock:
            base = behaviour or self._behaviours.get(name, self._default)
            new = dataclasses.replace(base, **changes) if changes else base
            self._set(
                name,
                new,
                arm=behaviour is not None or "fail_first_n" in changes or name not in self._forced_failures,
            )
            return new

    def behaviour(self, name: str) -> ModelBehaviour:
        """The behaviour a request for ``name`` gets now."""
        return self._behaviours.get(name, self._default)

    def add_scripted(self, pattern: str | re.Pattern, reply: ScriptedReply) -> None:
        """Add a scripted answer (see the class docstring); later entries match after earlier ones."""
        self._scripted.append((re.compile(pattern) if isinstance(pattern, str) else pattern, reply))

    def model_names(self) -> list[str]:
        """Models listed by ``GET /v1/models``."""
        names = list(self._behaviours)
        if self._open and self._tables is not None:
            self._tables.ensure_loaded()
            names += [m for m in self._tables.models if m not in self._behaviours]
        return names

    def request_count(self, name: str | None = None) -> int:
        """Chat requests received for ``name`` (all models when None), failed ones included."""
        with self._lock:
            return sum(self._counts.values()) if name is None else self._counts.get(name, 0)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first."""
        with self._lock:
            return list(self._requests)

    def reset_counters(self) -> None:
        """Forget the request log and counters (behaviours stay)."""
        with self._lock:
            self._counts.clear()
            self._requests.clear()

    # ---- request handling
    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stop.wait(seconds)

    def _handle_chat(self, h: _Handler, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            self._record(RecordedRequest(None, h.path, None, False, 400, "error"))
            h._error(400, f"invalid JSON body: {exc}", "invalid_request_error")
            return
        model = str(body.get("model") or "")
        stream = bool(body.get("stream"))
        if self.require_api_key is not None:
            auth = h.headers.get("Authorization", "")
            if auth != f"Bearer {self.require_api_key}":
                self._record(RecordedRequest(model, h.path, body, stream, 401, "error"))
                h._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                return
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._record(RecordedRequest(model, h.path, body, stream, 400, "error"))
            h._error(400, "'messages' must be a non-empty list", "invalid_request_error")
            return
        with self._lock:
            self._counts[model] = self._counts.get(model, 0) + 1
            refused = model not in self._behaviours and not self._open
            if refused:
                self._requests.append(RecordedRequest(model, h.path, body, stream, 404, "error"))
            else:
                b = self._behaviours.get(model, self._default)
                rng = self._rngs.setdefault(model, random.Random(f"{self.seed}:{model}"))
                draw = rng.random()
                forced = self._forced_failures.get(model, 0)
                if forced > 0:
                    self._forced_failures[model] = forced - 1
                fail = forced > 0 or draw < b.fail_rate
                self._id_counter += 1
                req_id = self._id_counter
        if refused:
            shown = ", ".join(self._behaviours)
            h._error(
                404,
                f"The model `{model}` does not exist; this replay server serves: {shown}",
                "invalid_request_error",
                "model_not_found",
            )
            return

        self._sleep(b.latency_s)
        if fail and b.fail_mode != "midstream":
            self._record(
                RecordedRequest(
                    model, h.path, body, stream, b.fail_status if b.fail_mode == "status" else 0, "failure"
                )
            )
            self._fail(h, b)
            return

        try:
            answer = self._answer(model, body, messages, b)
        except Exception as exc:
            logger.exception("replay server: building the answer failed")
            self._record(RecordedRequest(model, h.path, body, stream, 500, "error"))
            h._error(500, f"replay server error: {type(exc).__name__}: {exc}", "server_error")
            return
        self._truncate(answer, body)
        prompt_tokens = max(1, math.ceil(_message_chars(messages) / 4))
        out_text = answer.content or ""
        for tc in answer.tool_calls:
            out_text += tc["function"]["name"] + tc["function"]["arguments"]
        completion_tokens = math.ceil(len(out_text) / 4)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid = f"chatcmpl-replay-{req_id}"
        self._record(RecordedRequest(model, h.path, body, stream, 200, "failure" if fail else answer.source))
        if stream:
            so = body.get("stream_options") or {}
            self._stream(
                h, b, model, cid, answer, usage if so.get("include_usage") else None, midstream_fail=fail
            )
            return
        if fail:  # "midstream" on a non-stream request
            h._reset()
        self._sleep(b.ttft_s)
        if b.tokens_per_s:
            self._sleep(completion_tokens / b.tokens_per_s)
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        h._send_json(
            200,
            {
                "id": cid,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_replay",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}
                ],
                "usage": usage,
            },
            {"x-replay-source": answer.source},
        )

    def _fail(self, h: _Handler, b: ModelBehaviour) -> None:
        if b.fail_mode == "timeout":
            self._sleep(b.hang_s)
            h._reset()
        if b.fail_mode == "close":
            h._reset()
        status = int(b.fail_status)
        headers = {}
        if status == 429:
            headers["Retry-After"] = f"{b.retry_after_s:g}"
            typ, code = "rate_limit_error", "rate_limit_exceeded"
            msg = b.fail_message or "Rate limit reached (injected by the replay server)."
        elif status >= 500:
            typ, code = "server_error", None
            msg = b.fail_message or f"Injected server error {status}."
        else:
            typ, code = "invalid_request_error", None
            msg = b.fail_message or f"Injected client error {status}."
            if "context length" in msg.lower():
                code = "context_length_exceeded"
        h._error(status, msg, typ, code, headers)

    def _answer(self, model: str, body: dict, messages: list, b: ModelBehaviour) -> _Answer:
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        after_tool = last.get("role") in ("tool", "function")
        user_text = _last_user_text(messages)
        for pattern, reply in self._scripted:
            if pattern.search(user_text):
                value = reply(body) if callable(reply) else reply
                if (
                    not callable(reply)
                    and after_tool
                    and isinstance(value, Mapping)
                    and (value.get("tool_calls") or value.get("tool_call"))
                ):
                    continue
                ans = _as_answer(value, model, "scripted")
                if ans is not None:
                    return ans
        if b.reply is not None:
            ans = _as_answer(b.reply(body) if callable(b.reply) else b.reply, model, "reply")
            if ans is not None:
                return ans
        tools = body.get("tools") or []
        choice = body.get("tool_choice")
        if tools and choice != "none" and not after_tool:
            tool = tools[0]
            if isinstance(choice, dict):
                wanted = (choice.get("function") or {}).get("name") or choice.get("name")
                tool = next((t for t in tools if _tool_schema(t)[0] == wanted), tool)
            name, schema = _tool_schema(tool)
            args = json.dumps(_SchemaFiller(schema, user_text).value(schema, name))
            return _Answer(
                None,
                [
                    {
                        "id": _call_id(model, name, args, 0),
                        "type": "function",
                        "function": {"name": name, "arguments": args},
                    }
                ],
                "tool",
                "tool_calls",
            )
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") in ("json_schema", "json_object"):
            if rf["type"] == "json_schema":
                js = rf.get("json_schema") or {}
                schema = js.get("schema") or {"type": "object", "properties": {}}
                value = _SchemaFiller(schema, user_text).value(schema, js.get("name") or "value")
            else:
                value = {"answer": deterministic_reply(model, user_text)}
            return _Answer(json.dumps(value), [], "json")
        if after_tool:
            result = _text_of(last.get("content"))
            return _Answer(f"The tool returned: {result}", [], "tool_result")
        texts = _prompt_texts(messages)
        if self._responses:
            for text in texts:
                hit = self._responses.get(_key(text))
                if isinstance(hit, Mapping):
                    hit = hit.get(model)
                if hit is not None:
                    return _Answer(str(hit), [], "responses")
        if self._tables is not None:
            hit = self._tables.lookup(model, texts)
            if hit is not None:
                return _Answer(hit, [], "recorded")
        return _Answer(deterministic_reply(model, texts[0] if texts else ""), [], "deterministic")

    @staticmethod
    def _truncate(answer: _Answer, body: dict) -> None:
        if answer.content is None or answer.tool_calls:
            return
        stop = body.get("stop")
        if stop:
            for s in [stop] if isinstance(stop, str) else list(stop):
                i = answer.content.find(s) if s else -1
                if i >= 0:
                    answer.content = answer.content[:i]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and len(answer.content) > 4 * limit:
            answer.content = answer.content[: 4 * limit]
            answer.finish_reason = "length"

    def _stream(
        self,
        h: _Handler,
        b: ModelBehaviour,
        model: str,
        cid: str,
        answer: _Answer,
        usage: dict | None,
        midstream_fail: bool,
    ) -> None:
        created = int(time.time())

        def event(choices: list, extra: dict | None = None) -> bytes:
            payload = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_replay",
                "choices": choices,
            }
            if extra:
                payload.update(extra)
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("x-replay-source", answer.source)
        h.end_headers()
        h._chunk(
            event(
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        )
        h.wfile.flush()
        self._sleep(b.ttft_s)
        pause = 1.0 / b.tokens_per_s if b.tokens_per_s else 0.0
        pieces: list[dict] = []
        if answer.tool_calls:
            for i, tc in enumerate(answer.tool_calls):
                args = tc["function"]["arguments"]
                pieces.append(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": tc["id"],
                                "type": "function",
                                "function": {"name": tc["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                step = max(1, math.ceil(len(args) / 3))
                for j in range(0, len(args), step):
                    pieces.append(
                        {"tool_calls": [{"index": i, "function": {"arguments": args[j : j + step]}}]}
                    )
        text = answer.content or ""
        step = 4 if b.tokens_per_s else max(4, math.ceil(len(text) / 16))
        for j in range(0, len(text), step):
            pieces.append({"content": text[j : j + step]})
        for n, delta in enumerate(pieces):
            if midstream_fail and n >= min(2, max(1, len(pieces) - 1)):
                h.wfile.flush()
                h._reset()
            h._chunk(event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
            if pause:
                h.wfile.flush()
                self._sleep(pause)
        if midstream_fail:
            h._reset()
        h._chunk(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": answer.finish_reason}]))
        if usage is not None:
            h._chunk(event([], {"usage": usage}))
        h._chunk(b"data: [DONE]\n\n")
        h._chunk(b"")
        h.wfile.flush()


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(serve_replay_main())
