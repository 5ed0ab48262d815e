"""``ReplayServer``: the local OpenAI-compatible replay server (see :mod:`zerorouter_integrations.testing.replay`)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zerorouter_integrations.testing.replay_answers import build_answer, message_chars, truncate_answer
from zerorouter_integrations.testing.replay_http import (
    ReplayHandler,
    ReplayHTTPServer,
    send_failure,
    stream_answer,
)
from zerorouter_integrations.testing.replay_tables import RecordedAnswers, prompt_key
from zerorouter_integrations.testing.replay_types import ModelBehaviour, RecordedRequest, ScriptedReply

__all__ = ["ReplayServer"]

# the logger of the replay server as a whole, whichever of its modules logs
logger = logging.getLogger("zerorouter_integrations.testing.replay")


class ReplayServer:
    """Local OpenAI-compatible server that replays recorded answers (see :mod:`zerorouter_integrations.testing.replay`).

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
        self._tables = RecordedAnswers(table_dirs) if table_dirs else None
        self._responses: dict[bytes, str | Mapping[str, str]] = {
            prompt_key(k): v for k, v in (responses or {}).items()
        }
        self._scripted: list[tuple[re.Pattern, ScriptedReply]] = []
        for pattern, reply in scripted:
            self.add_scripted(pattern, reply)
        self.host = host
        self._port = int(port)
        self.require_api_key = require_api_key
        self._httpd: ReplayHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._id_counter = 0

    # ---- lifecycle
    def start(self) -> ReplayServer:
        """Bind and serve in a daemon thread; returns ``self``. Tables load in the background."""
        if self._httpd is not None:
            return self
        self._stop.clear()
        httpd = ReplayHTTPServer((self.host, self._port), ReplayHandler)
        httpd.on_chat, httpd.list_models = self._handle_chat, self.model_names
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
            self._tables.loaded.wait(timeout)
        return self._tables.loaded.is_set()

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

    def _handle_chat(self, h: ReplayHandler, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body is not a JSON object")
        except ValueError as exc:
            self._record(RecordedRequest(None, h.path, None, False, 400, "error"))
            h.json_error(400, f"invalid JSON body: {exc}", "invalid_request_error")
            return
        model = str(body.get("model") or "")
        stream = bool(body.get("stream"))
        if self.require_api_key is not None:
            auth = h.headers.get("Authorization", "")
            if auth != f"Bearer {self.require_api_key}":
                self._record(RecordedRequest(model, h.path, body, stream, 401, "error"))
                h.json_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                return
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            self._record(RecordedRequest(model, h.path, body, stream, 400, "error"))
            h.json_error(400, "'messages' must be a non-empty list", "invalid_request_error")
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
            h.json_error(
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
            send_failure(h, b, self._sleep)
            return

        try:
            answer = build_answer(
                model,
                body,
                messages,
                b,
                scripted=self._scripted,
                responses=self._responses,
                tables=self._tables,
            )
        except Exception as exc:
            logger.exception("replay server: building the answer failed")
            self._record(RecordedRequest(model, h.path, body, stream, 500, "error"))
            h.json_error(500, f"replay server error: {type(exc).__name__}: {exc}", "server_error")
            return
        truncate_answer(answer, body)
        prompt_tokens = max(1, math.ceil(message_chars(messages) / 4))
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
            stream_answer(
                h,
                b,
                model,
                cid,
                answer,
                usage if so.get("include_usage") else None,
                midstream_fail=fail,
                sleep=self._sleep,
            )
            return
        if fail:  # "midstream" on a non-stream request
            h.drop_connection()
        self._sleep(b.ttft_s)
        if b.tokens_per_s:
            self._sleep(completion_tokens / b.tokens_per_s)
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        h.send_json(
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
