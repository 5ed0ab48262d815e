"""The replay server's HTTP side: the request handler, the threading server, failures and SSE streams."""

from __future__ import annotations

import http.server
import json
import logging
import math
import socket
import struct
import time
from collections.abc import Callable, Mapping
from typing import Any

from zerorouter_integrations.testing.replay_answers import Answer
from zerorouter_integrations.testing.replay_types import ModelBehaviour

__all__ = ["ReplayHTTPServer", "ReplayHandler", "send_failure", "stream_answer"]

# the logger of the replay server as a whole, whichever of its modules logs
logger = logging.getLogger("zerorouter_integrations.testing.replay")


class _Dropped(Exception):
    """The connection was dropped on purpose (failure injection)."""


class ReplayHandler(http.server.BaseHTTPRequestHandler):
    """One connection of the replay server: routes GET/POST and gives the server's code its writers."""

    protocol_version = "HTTP/1.1"
    server_version = "zerorouter-replay/0.1"
    server: ReplayHTTPServer

    def setup(self) -> None:
        super().setup()
        # Small writes (headers, then body; SSE chunks) must not wait for the client's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("replay %s - " + format, self.address_string(), *args)

    # ---- plumbing
    def send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        """A JSON response with ``status`` and extra ``headers``."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def json_error(
        self,
        status: int,
        message: str,
        typ: str,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """An OpenAI-style error body (``message``, ``type``, ``code``) with ``status``."""
        self.send_json(
            status, {"error": {"message": message, "type": typ, "param": None, "code": code}}, headers
        )

    def drop_connection(self) -> None:
        """Reset the connection now (RST, no reply) and end the request (raises an internal signal)."""
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

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk of a chunked (``Transfer-Encoding: chunked``) body."""
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
            self.send_json(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            now = int(time.time())
            self.send_json(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": now, "owned_by": "replay"}
                        for m in self.server.list_models()
                    ],
                },
            )
        else:
            self.json_error(
                404, f"no route GET {path}; expected /v1/models or /health", "invalid_request_error"
            )

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self.json_error(
                404, f"no route POST {path}; expected /v1/chat/completions", "invalid_request_error"
            )
            return
        self.server.on_chat(self, raw)


class ReplayHTTPServer(http.server.ThreadingHTTPServer):
    """The threading HTTP server; ``ReplayServer`` sets ``on_chat`` and ``list_models`` before serving."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    on_chat: Callable[[ReplayHandler, bytes], None]  # (handler, raw body) of a chat completion
    list_models: Callable[[], list[str]]  # the models GET /v1/models lists


def send_failure(h: ReplayHandler, b: ModelBehaviour, sleep: Callable[[float], None]) -> None:
    """An injected failure of behaviour ``b``: a hang (``sleep``), a reset, or an error body."""
    if b.fail_mode == "timeout":
        sleep(b.hang_s)
        h.drop_connection()
    if b.fail_mode == "close":
        h.drop_connection()
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
    h.json_error(status, msg, typ, code, headers)


def stream_answer(
    h: ReplayHandler,
    b: ModelBehaviour,
    model: str,
    cid: str,
    answer: Answer,
    usage: dict | None,
    midstream_fail: bool,
    sleep: Callable[[float], None],
) -> None:
    """Send ``answer`` as an SSE stream (``usage`` in a last chunk when given); with ``midstream_fail``,
    reset the connection after a few chunks. ``sleep`` waits (it ends early when the server stops)."""
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
    h.write_chunk(
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
    sleep(b.ttft_s)
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
                pieces.append({"tool_calls": [{"index": i, "function": {"arguments": args[j : j + step]}}]})
    text = answer.content or ""
    step = 4 if b.tokens_per_s else max(4, math.ceil(len(text) / 16))
    for j in range(0, len(text), step):
        pieces.append({"content": text[j : j + step]})
    for n, delta in enumerate(pieces):
        if midstream_fail and n >= min(2, max(1, len(pieces) - 1)):
            h.wfile.flush()
            h.drop_connection()
        h.write_chunk(event([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]))
        if pause:
            h.wfile.flush()
            sleep(pause)
    if midstream_fail:
        h.drop_connection()
    h.write_chunk(event([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": answer.finish_reason}]))
    if usage is not None:
        h.write_chunk(event([], {"usage": usage}))
    h.write_chunk(b"data: [DONE]\n\n")
    h.write_chunk(b"")
    h.wfile.flush()
