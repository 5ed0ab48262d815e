"""The OpenAI-compatible gateway: a Starlette app over one :class:`~zerorouter_integrations.router.ZeroRouter`.

Routes: ``POST /v1/chat/completions`` (plain and SSE), ``GET /v1/models``, ``POST /v1/feedback``,
``GET /health``, ``GET /metrics``, ``GET /dashboard`` (+ ``/dashboard/data``). The gateway holds no
routing logic: it picks the router (the default policy, a named policy, or the cascade) from the
request's ``model`` and calls :meth:`ZeroRouter.acomplete` / :meth:`ZeroRouter.astream`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from zerorouter_integrations.errors import AllModelsFailedError, NoAdmissibleModelError, UnknownModelError
from zerorouter_integrations.server.metrics import GatewayMetrics
from zerorouter_integrations.server.schemas import (
    ChatRequest,
    GatewayError,
    chunk_body,
    completion_body,
    error_body,
    final_extra,
    parse_chat_request,
    parse_json_body,
    saving_usd,
    usage_body,
)

__all__ = ["CASCADE", "DEFAULT", "Gateway", "GatewaySettings", "create_app"]

logger = logging.getLogger(__name__)

DEFAULT = "zerorouter"
CASCADE = "zerorouter-cascade"
SESSION_HEADER = "x-zerorouter-session-id"


@dataclass(frozen=True)
class GatewaySettings:
    """Limits and auth of the gateway.

    Parameters
    ----------
    api_key : SecretStr or None
        When set, every route but ``/health`` and the dashboard page needs ``Authorization: Bearer KEY``.
    max_body_bytes : int, default=4 MiB
        Larger request bodies get 413.
    timeout_s : float, default=120
        A call (routing, every fallback) that takes longer gets 504.
    max_in_flight : int, default=512
        More concurrent chat requests than this get 429 with ``Retry-After: 1``.
    """

    api_key: SecretStr | None = None
    max_body_bytes: int = 4 * 1024 * 1024
    timeout_s: float = 120.0
    max_in_flight: int = 512


class Gateway:
    """Which router answers which ``model``, plus this process's metrics.

    Parameters
    ----------
    router : ZeroRouter
        The default router (virtual model ``zerorouter``).
    policies : mapping of str to Policy, optional
        Named policies: virtual model ``zerorouter/NAME`` routes with ``router.with_policy(policy)``.
    """

    def __init__(
        self, router: Any, policies: Mapping[str, Any] | None = None, settings: GatewaySettings | None = None
    ):
        self.router = router
        self.settings = settings or GatewaySettings()
        self.routers: dict[str, Any] = {DEFAULT: router, CASCADE: router}
        for name, policy in (policies or {}).items():
            self.routers[f"{DEFAULT}/{name}"] = router.with_policy(policy)
        self.metrics = GatewayMetrics()
        self.in_flight = 0

    def warm_up(self) -> None:
        """Load the encoder and LiteLLM now, so the first request does not pay for them."""
        from zerorouter_integrations._env import import_litellm

        import_litellm()
        self.router.route("warm up")

    # ---------------------------------------------------------------- model names
    def model_ids(self) -> list[str]:
        """The virtual models, then every real model name (pool names and config aliases)."""
        names = list(self.routers)
        pool = getattr(self.router, "config_pool", None)
        real = list(self.router.endpoints) + (list(pool.aliases) if pool is not None else [])
        return names + [m for m in dict.fromkeys(real) if m not in self.routers]

    def resolve(self, model: str) -> tuple[Any, dict[str, Any]]:
        """The router and extra call keywords for a request's ``model``; 400 when it is unknown."""
        if model in self.routers:
            return self.routers[model], ({"cascade": True} if model == CASCADE else {})
        pool = getattr(self.router, "config_pool", None)
        real = pool.resolve_name(model) if pool is not None else None
        if real is None and model in self.router.endpoints:
            real = model
        if real is None:
            raise GatewayError(
                400,
                f"unknown model {model!r}; expected a virtual model ({', '.join(self.routers)}) "
                f"or a model of the pool (GET /v1/models lists them)",
                param="model",
                code="model_not_found",
            )
        return self.router, {"model": real}


def _status_of(exc: BaseException) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, AllModelsFailedError):
        kinds = {getattr(a, "error_type", "") for a in exc.attempts}
        if kinds == {"rate_limit"}:
            return GatewayError(429, str(exc), code="rate_limit_exceeded")
        if kinds and kinds <= {"bad_request", "context_window_exceeded", "unprocessable", "content_policy"}:
            return GatewayError(400, str(exc), code=next(iter(kinds)))
        return GatewayError(502, str(exc), code="all_models_failed", type_="api_error")
    if isinstance(exc, NoAdmissibleModelError):
        reasons = list(exc.removed.values())
        if reasons and not any(
            r.startswith(("cooling down", "circuit")) for r in reasons
        ):  # the request asks too much
            return GatewayError(400, str(exc), code="no_model_can_serve_this_request")
        return GatewayError(503, str(exc), code="no_model_available", type_="api_error")
    if isinstance(exc, UnknownModelError):
        return GatewayError(400, str(exc), param="model", code="model_not_found")
    if isinstance(exc, (ValueError, TypeError)):
        return GatewayError(400, str(exc))
    if isinstance(exc, asyncio.TimeoutError):
        return GatewayError(504, "the call did not finish within the gateway's timeout", code="timeout")
    logger.exception("unexpected gateway error", exc_info=exc)
    return GatewayError(500, f"internal error: {type(exc).__name__}: {exc}", type_="api_error")


def _error_response(err: GatewayError) -> JSONResponse:
    headers = {"Retry-After": "1"} if err.status == 429 else None
    return JSONResponse(error_body(err), status_code=err.status, headers=headers)


def create_app(gateway: Gateway) -> Starlette:
    """The Starlette application of ``gateway`` (run it with uvicorn)."""
    from zerorouter_integrations.server.dashboard import dashboard_page

    settings = gateway.settings
    key = settings.api_key.get_secret_value() if settings.api_key is not None else None

    def check_auth(request: Request) -> None:
        if key is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
            raise GatewayError(
                401,
                "missing or wrong API key; send 'Authorization: Bearer KEY' with the gateway's key",
                code="invalid_api_key",
            )

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        limit = settings.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise GatewayError(
                413,
                f"request body of {declared} bytes exceeds the limit of {limit} bytes",
                code="request_too_large",
            )
        chunks, size = [], 0
        async for part in request.stream():
            size += len(part)
            if size > limit:
                raise GatewayError(
                    413, f"request body exceeds the limit of {limit} bytes", code="request_too_large"
                )
            chunks.append(part)
        return b"".join(chunks)

    async def chat(request: Request) -> Response:
        vm = "?"
        if gateway.in_flight >= settings.max_in_flight:
            gateway.metrics.request(vm, 429)
            return _error_response(
                GatewayError(
                    429,
                    f"more than {settings.max_in_flight} requests in flight; retry",
                    code="too_many_requests",
                )
            )
        gateway.in_flight += 1
        try:
            check_auth(request)
            req = parse_chat_request(await read_body(request))
            vm = req.model
            router, extra = gateway.resolve(req.model)
            request_id = uuid.uuid4().hex
            kwargs = {**req.params, **extra, "request_id": request_id}
            session = request.headers.get(SESSION_HEADER)
            if session:
                kwargs["session_id"] = session
            if req.stream:
                return await _stream(gateway, router, req, kwargs, request_id)
            resp = await asyncio.wait_for(router.acomplete(req.messages, **kwargs), settings.timeout_s)
            saving = saving_usd(router, resp)
            gateway.metrics.routed_call(resp, saving, vm)
            gateway.metrics.request(vm, 200)
            return JSONResponse(
                completion_body(resp, saving), headers=_headers(resp.model, request_id, resp.cost_usd, saving)
            )
        except Exception as exc:  # every failure becomes OpenAI's error shape
            err = _status_of(exc)
            gateway.metrics.request(vm, err.status)
            gateway.metrics.error(err.code or err.type)
            return _error_response(err)
        finally:
            gateway.in_flight -= 1

    async def models(request: Request) -> Response:
        try:
            check_auth(request)
        except GatewayError as err:
            return _error_response(err)
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "zerorouter"} for m in gateway.model_ids()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def feedback(request: Request) -> Response:
        try:
            check_auth(request)
            body = parse_json_body(await read_body(request), '{"request_id": "...", "score": 0..1}')
            if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
                raise GatewayError(400, 'expected {"request_id": "...", "score": 0..1}', param="request_id")
            score = body.get("score")
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
                raise GatewayError(400, f"score={score!r}; expected a number in [0, 1]", param="score")
            try:
                profile = await asyncio.to_thread(
                    gateway.router.record_quality, body["request_id"], float(score)
                )
            except KeyError as exc:
                raise GatewayError(
                    404, str(exc.args[0]), param="request_id", code="unknown_request"
                ) from None
            gateway.metrics.feedback(profile.name, float(score))
            return JSONResponse({"request_id": body["request_id"], "model": profile.name, "recorded": True})
        except Exception as exc:
            return _error_response(_status_of(exc))

    async def health(request: Request) -> Response:
        pool = list(gateway.router.endpoints)
        return JSONResponse({"status": "ok", "models": pool, "in_flight": gateway.in_flight})

    async def metrics(request: Request) -> Response:
        try:
            check_auth(request)
        except GatewayError as err:
            return _error_response(err)
        return PlainTextResponse(gateway.metrics.prometheus(), media_type="text/plain; version=0.0.4")

    async def dashboard(request: Request) -> Response:
        return Response(dashboard_page(), media_type="text/html; charset=utf-8")

    async def dashboard_data(request: Request) -> Response:
        try:
            check_auth(request)
        except GatewayError as err:
            return _error_response(err)
        return JSONResponse(gateway.metrics.dashboard())

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        msg = (
            f"no route {request.method} {request.url.path}"
            if status == 404
            else str(getattr(exc, "detail", exc))
        )
        return _error_response(GatewayError(status, msg))

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/data", dashboard_data, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def _headers(
    model: str, request_id: str, cost: float | None = None, saving: float | None = None
) -> dict[str, str]:
    h = {"x-zerorouter-model": model, "x-zerorouter-request-id": request_id}
    if cost is not None:
        h["x-zerorouter-cost-usd"] = f"{cost:.10g}"
    if saving is not None:
        h["x-zerorouter-saving-usd"] = f"{saving:.10g}"
    return h


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


async def _stream(gateway: Gateway, router: Any, req: ChatRequest, kwargs: dict, request_id: str) -> Response:
    """Start the stream (fallbacks happen before its first delta), then send SSE chunks."""
    timeout = gateway.settings.timeout_s
    agen = router.astream(req.messages, **kwargs)
    first = await asyncio.wait_for(agen.__anext__(), timeout)  # errors here become JSON errors
    model = first.model or "?"

    async def body() -> AsyncIterator[bytes]:
        status = 200
        try:
            yield _sse(chunk_body(request_id, model, delta={"role": "assistant", "content": ""}))
            chunk = first
            while True:
                if chunk.final:
                    resp = chunk.response
                    saving = saving_usd(router, resp)
                    finish = resp.finish_reason or ("tool_calls" if resp.tool_calls else "stop")
                    yield _sse(chunk_body(request_id, resp.model, delta={}, finish_reason=finish))
                    if req.include_usage:
                        yield _sse(
                            chunk_body(
                                request_id,
                                resp.model,
                                usage=usage_body(resp.usage),
                                extra=final_extra(resp, saving),
                            )
                        )
                    gateway.metrics.routed_call(resp, saving, req.model)
                    break
                delta: dict[str, Any] = {}
                if chunk.content:
                    delta["content"] = chunk.content
                if chunk.tool_call_deltas:
                    delta["tool_calls"] = [
                        {k: v for k, v in d.items() if v is not None} for d in chunk.tool_call_deltas
                    ]
                if delta:
                    yield _sse(chunk_body(request_id, chunk.model or model, delta=delta))
                chunk = await asyncio.wait_for(agen.__anext__(), timeout)
            yield b"data: [DONE]\n\n"
        except Exception as exc:  # after the first byte the status is sent: report in-band
            err = _status_of(exc)
            status = err.status
            gateway.metrics.error(err.code or err.type)
            yield _sse(error_body(err))
        finally:
            gateway.metrics.request(req.model, status)
            await agen.aclose()

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={**_headers(model, request_id), "cache-control": "no-cache"},
    )
