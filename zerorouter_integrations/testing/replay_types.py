"""The replay server's public types: a model's behaviour, a received request, a scripted reply."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["FAIL_MODES", "FailMode", "ModelBehaviour", "RecordedRequest", "ScriptedReply"]

FailMode = Literal["status", "timeout", "close", "midstream"]
FAIL_MODES = ("status", "timeout", "close", "midstream")

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
        if self.fail_mode not in FAIL_MODES:
            raise ValueError(f"fail_mode={self.fail_mode!r}; expected one of {FAIL_MODES}")
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
