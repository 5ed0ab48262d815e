"""Optional LiteLLM ``Router`` integration: let zerorouter pick the deployment, and feed back outcomes.

Two pieces, for users who already run a :class:`litellm.Router` and want zerorouter's choice
inside it (instead of calling :class:`~zerorouter_integrations.dispatch.Dispatcher`):

* :class:`ZeroRouterStrategy`, a ``CustomRoutingStrategyBase``: for each request it asks
  ``select(messages)`` for a ranked list of pool names and returns the ``model_list`` entry of the
  best-ranked one that the router considers healthy (not cooling down).
* :class:`ZeroRouterCallback`, a ``CustomLogger``: forwards each success (model, latency, TTFT,
  usage, cost from ``standard_logging_object``) and each failure to plain callables, e.g. a
  profile store's ``record_call`` / ``record_error``.

Convention: one model group
    The Router picks within the ``model`` group a request names, so put all candidates under one
    ``model_name`` (e.g. ``"zerorouter"``) and call ``router.completion(model="zerorouter", ...)``.

Convention: which deployment is a pool name
    A name returned by ``select`` matches a deployment, in this order of precedence, by
    ``model_info["zerorouter_name"]`` (set it to be explicit), ``model_info["id"]``,
    ``litellm_params["model"]`` (``"openai/gpt-4o-mini"``), or ``litellm_params["model"]`` without
    its provider prefix (``"gpt-4o-mini"``). :func:`deployment_name` gives the name the callback
    reports, by the same precedence (``zerorouter_name``, else the unprefixed model).

LiteLLM is imported only when :class:`ZeroRouterStrategy` or :class:`ZeroRouterCallback` is first
used (PEP 562 module ``__getattr__``), so importing this module is cheap.

LiteLLM versions
    The strategy needs the Router's candidate deployments, and how a custom strategy reads them
    changes between LiteLLM minor releases, so each Router capability is detected (``hasattr``), not
    inferred from a version string. Routers with the entry-point API (LiteLLM >= 1.110:
    ``register_plugin``, ``registry()``, ``health()``, ``select()``) are used through it; older
    Routers through ``set_custom_routing_strategy``, ``async_get_healthy_deployments`` and the
    private ``_common_checks_available_deployment`` they still have. A Router with neither raises
    ``RuntimeError`` naming the missing member. ``pyproject.toml`` caps LiteLLM below the first
    minor release not yet tested.

Examples
--------
>>> import litellm
>>> from zerorouter_integrations.litellm_ext import ZeroRouterStrategy, ZeroRouterCallback
>>> router = litellm.Router(model_list=[
...     {"model_name": "zerorouter", "litellm_params": {"model": "openai/gpt-4o-mini"},
...      "model_info": {"zerorouter_name": "gpt-4o-mini"}},
...     {"model_name": "zerorouter", "litellm_params": {"model": "openai/gpt-4o"},
...      "model_info": {"zerorouter_name": "gpt-4o"}},
... ])  # doctest: +SKIP
>>> ZeroRouterStrategy(lambda msgs: ["gpt-4o-mini", "gpt-4o"]).attach(router)  # doctest: +SKIP
>>> callback = ZeroRouterCallback(on_success=print).register()  # doctest: +SKIP
>>> router.completion(model="zerorouter", messages=[{"role": "user", "content": "hi"}])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.errors import NoAdmissibleModelError

if TYPE_CHECKING:  # pragma: no cover
    from zerorouter_integrations.dispatch import Attempt, DispatchResult

__all__ = [  # noqa: F822 (the two classes are made on first use by the module __getattr__)
    "ZeroRouterCallback",
    "ZeroRouterStrategy",
    "deployment_keys",
    "deployment_name",
    "match_deployment",
]

logger = logging.getLogger(__name__)

SelectFn = Callable[[list], Sequence[str]]
ASelectFn = Callable[[list], Awaitable[Sequence[str]]]


# --------------------------------------------------------------------------------------------
# Naming convention (pure, no LiteLLM import)
# --------------------------------------------------------------------------------------------


def _strip_provider(model: str) -> str:
    return model.split("/", 1)[1] if "/" in model else model


def deployment_keys(deployment: Mapping[str, Any]) -> list[str]:
    """The names a deployment answers to, highest precedence first (see the module docstring)."""
    info = deployment.get("model_info") or {}
    params = deployment.get("litellm_params") or {}
    keys: list[str] = []
    for k in (info.get("zerorouter_name"), info.get("id"), params.get("model")):
        if isinstance(k, str) and k:
            keys.append(k)
    model = params.get("model")
    if isinstance(model, str) and "/" in model:
        keys.append(_strip_provider(model))
    return keys


def deployment_name(deployment: Mapping[str, Any]) -> str:
    """The pool name of a deployment: ``model_info["zerorouter_name"]``, else the unprefixed model."""
    info = deployment.get("model_info") or {}
    if info.get("zerorouter_name"):
        return str(info["zerorouter_name"])
    model = (deployment.get("litellm_params") or {}).get("model") or deployment.get("model_name") or ""
    return _strip_provider(str(model))


def match_deployment(
    ranking: Sequence[str], deployments: Sequence[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The deployment of the best-ranked name that matches one, or None.

    Each key is bound to the first deployment that claims it at the highest precedence, so an
    explicit ``zerorouter_name`` always wins over a model string that happens to be equal.
    """
    by_key: dict[str, Mapping[str, Any]] = {}
    per_dep = [deployment_keys(d) for d in deployments]
    for level in range(4):
        for d, keys in zip(deployments, per_dep):
            if level < len(keys):
                by_key.setdefault(keys[level], d)
    for name in ranking:
        found = by_key.get(name)
        if found is not None:
            return found
    return None


def _messages_of(messages: list | None, input: Any) -> list:
    if messages is not None:
        return messages
    if input is None:
        return []
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    return [{"role": "user", "content": str(x)} for x in input]


# --------------------------------------------------------------------------------------------
# Classes built on first use (they subclass LiteLLM types)
# --------------------------------------------------------------------------------------------

_BUILD_LOCK = threading.Lock()


def _build() -> None:
    with _BUILD_LOCK:
        if "ZeroRouterStrategy" in globals() and "ZeroRouterCallback" in globals():
            return
        litellm = import_litellm()
        from litellm.integrations.custom_logger import CustomLogger
        from litellm.types.router import CustomRoutingStrategyBase

        try:  # pre-1.110 Routers only (see _legacy_cooling_ids)
            from litellm.router_utils.cooldown_handlers import get_cooldown_deployments
        except ImportError:  # pragma: no cover - private helper moved: skip the cooldown filter

            def get_cooldown_deployments(**_: Any) -> list:
                return []

        def _unsupported(router: Any, needed: str) -> RuntimeError:
            return RuntimeError(
                f"zerorouter's LiteLLM strategy does not support this litellm.Router "
                f"(litellm {_litellm_version()}): it has neither {needed}. Install a litellm "
                f"version that zerorouter_integrations' own litellm requirement allows."
            )

        def _legacy_cooling_ids(router: Any) -> set:
            """Deployment ids in cooldown, through the pre-1.110 private helper."""
            return set(get_cooldown_deployments(litellm_router_instance=router, parent_otel_span=None))

        def _cooling_ids(router: Any) -> set:
            """Deployment ids in cooldown, through ``router.health().cooldowns`` (LiteLLM >= 1.110)."""
            ids = list(router.registry().names(kind="ids"))
            active = router.health().cooldowns.get_active_cooldowns(model_ids=ids, parent_otel_span=None)
            return {entry[0] for entry in active or ()}

        from zerorouter_integrations.dispatch import (
            Attempt,
            DispatchResult,
            Usage,
            classify_error,
            tool_call_dict,
        )

        class ZeroRouterStrategy(CustomRoutingStrategyBase):
            """A LiteLLM ``Router`` routing strategy that follows zerorouter's ranking.

            Parameters
            ----------
            select : callable(messages) -> sequence of str
                Ranks pool names for the request's messages, best first (e.g. a
                ``ZeroRouter.route(...).ranking``).
            router : litellm.Router or None, default=None
                The router whose deployments are picked; :meth:`attach` sets it.
            aselect : async callable or None, default=None
                Used by the async path instead of ``select`` when given.
            skip_unhealthy : bool, default=True
                Drop deployments the router has in cooldown (the async path runs the router's own
                filters: cooldown, health checks, tags, order). When every candidate is cooling
                down, the sync path falls back to all of them.
            fallback : {"first", "error"}, default="first"
                When no ranked name matches a candidate: return the group's first healthy
                deployment, or raise :class:`NoAdmissibleModelError`.
            """

            def __init__(
                self,
                select: SelectFn,
                *,
                router: Any = None,
                aselect: ASelectFn | None = None,
                skip_unhealthy: bool = True,
                fallback: str = "first",
            ):
                if not callable(select):
                    raise TypeError(f"select={select!r}; expected a callable(messages) -> ranked names")
                if fallback not in ("first", "error"):
                    raise ValueError(f"fallback={fallback!r}; expected 'first' or 'error'")
                self.select = select
                self.aselect = aselect
                self.router = router
                self.skip_unhealthy = skip_unhealthy
                self.fallback = fallback

            def attach(self, router: Any) -> ZeroRouterStrategy:
                """Install on ``router`` and remember it; returns self.

                Uses ``router.register_plugin(self)`` (LiteLLM >= 1.110), else the older
                ``router.set_custom_routing_strategy(self)``. The strategy needs the router to read
                its deployments and cooldowns, so use this rather than installing it directly.
                Changing the router's routing strategy afterwards (``update_settings`` /
                ``apply(ChangeSet(...))`` with ``routing_strategy``) removes it again.
                """
                if hasattr(router, "register_plugin"):
                    install = router.register_plugin
                elif hasattr(router, "set_custom_routing_strategy"):
                    install = router.set_custom_routing_strategy
                else:
                    raise _unsupported(router, "register_plugin() nor set_custom_routing_strategy()")
                self.router = router
                install(self)
                return self

            def _router(self) -> Any:
                if self.router is None:
                    raise RuntimeError(
                        "ZeroRouterStrategy has no router; call strategy.attach(router) instead of "
                        "router.register_plugin(strategy) / router.set_custom_routing_strategy(strategy)"
                    )
                return self.router

            def _choose(self, ranking: Sequence[str], deployments: list, model: str) -> Any:
                if isinstance(ranking, str):
                    ranking = [ranking]
                picked = match_deployment(ranking, deployments)
                if picked is not None:
                    return picked
                names = [deployment_name(d) for d in deployments]
                if self.fallback == "error" or not deployments:
                    raise NoAdmissibleModelError(
                        f"none of the ranked models {list(ranking)} is a healthy deployment of model "
                        f"group {model!r}; its deployments are {names}"
                    )
                logger.warning(
                    "zerorouter ranking %s matches no deployment of %r (%s); using %s",
                    list(ranking),
                    model,
                    names,
                    names[0],
                )
                return deployments[0]

            def _sync_candidates(
                self,
                model: str,
                messages: Any,
                input: Any,
                specific_deployment: Any,
                request_kwargs: dict | None,
            ) -> Any:
                """The deployments ``model`` routes to (a dict when it names one deployment), less
                those in cooldown when ``skip_unhealthy`` (all of them if every one is cooling)."""
                router = self._router()
                if hasattr(router, "registry") and hasattr(router, "health"):
                    # LiteLLM >= 1.110: the deployments routing would consider for this request
                    # (aliases, routing groups, deployment ids and litellm model names resolved).
                    registry = router.registry()
                    deployments = [
                        dict(d)
                        for d in registry.deployments(
                            model,
                            source="routable",
                            request=request_kwargs if request_kwargs is not None else {},
                        )
                    ]
                    if (
                        len(deployments) == 1
                        and registry.has_deployment(model)
                        and (deployments[0].get("model_info") or {}).get("id") == model
                    ):
                        return deployments[0]  # a deployment id: that deployment, as LiteLLM serves it
                    cooling_ids = _cooling_ids
                elif hasattr(router, "_common_checks_available_deployment"):
                    _, deployments = router._common_checks_available_deployment(
                        model=model,
                        messages=messages,
                        input=input,
                        specific_deployment=specific_deployment,
                        request_kwargs=request_kwargs,
                    )
                    cooling_ids = _legacy_cooling_ids
                else:
                    raise _unsupported(
                        router, "registry()/health() nor _common_checks_available_deployment()"
                    )
                if isinstance(deployments, dict) or not self.skip_unhealthy:
                    return deployments
                try:
                    cooling = cooling_ids(router)
                except Exception:
                    logger.warning(
                        "zerorouter: LiteLLM cooldown lookup failed; not skipping cooling deployments",
                        exc_info=True,
                    )
                    return deployments
                healthy = [d for d in deployments if (d.get("model_info") or {}).get("id") not in cooling]
                return healthy or deployments

            async def _async_candidates(
                self,
                model: str,
                messages: Any,
                input: Any,
                specific_deployment: Any,
                request_kwargs: dict | None,
            ) -> Any:
                """The router's own healthy deployments of ``model`` (cooldown, health checks, tags,
                order), a dict when it names one deployment."""
                router = self._router()
                request = request_kwargs if request_kwargs is not None else {}
                if hasattr(router, "select") and hasattr(router, "registry"):
                    # LiteLLM >= 1.110: what its own custom strategies (LAR-1) call.
                    return await router.select(
                        model,
                        request,
                        kind="healthy",
                        messages=messages,
                        input=input,
                        specific_deployment=specific_deployment,
                    )
                if hasattr(router, "async_get_healthy_deployments"):
                    return await router.async_get_healthy_deployments(
                        model=model,
                        request_kwargs=request,
                        messages=messages,
                        input=input,
                        specific_deployment=specific_deployment,
                    )
                raise _unsupported(router, "select(kind='healthy') nor async_get_healthy_deployments()")

            def get_available_deployment(
                self,
                model: str,
                messages: list | None = None,
                input: Any = None,
                specific_deployment: bool | None = False,
                request_kwargs: dict | None = None,
            ) -> Any:
                """Sync pick: healthy deployments of ``model``, then the best-ranked match."""
                deployments = self._sync_candidates(
                    model, messages, input, specific_deployment, request_kwargs
                )
                if isinstance(deployments, dict):
                    return deployments
                ranking = self.select(_messages_of(messages, input))
                return self._choose(ranking, list(deployments), model)

            async def async_get_available_deployment(
                self,
                model: str,
                messages: list | None = None,
                input: Any = None,
                specific_deployment: bool | None = False,
                request_kwargs: dict | None = None,
            ) -> Any:
                """Async pick: the router's own health filters, then the best-ranked match."""
                if self.skip_unhealthy:
                    deployments = await self._async_candidates(
                        model, messages, input, specific_deployment, request_kwargs
                    )
                else:
                    deployments = self._sync_candidates(
                        model, messages, input, specific_deployment, request_kwargs
                    )
                if isinstance(deployments, dict):
                    return deployments
                msgs = _messages_of(messages, input)
                ranking = await self.aselect(msgs) if self.aselect is not None else self.select(msgs)
                return self._choose(ranking, list(deployments), model)

        class ZeroRouterCallback(CustomLogger):
            """Forward LiteLLM success / failure events to plain callables.

            Parameters
            ----------
            on_success : callable(model, DispatchResult) or None
                Gets the pool name (see :func:`deployment_name`) and a :class:`DispatchResult`
                with usage, ``cost_usd`` (LiteLLM's ``response_cost``; ``cost_known=False`` when it
                has no price), ``latency_s`` and ``ttft_s`` (streams: time to the first chunk).
            on_error : callable(model, Attempt) or None
                Gets the pool name and an :class:`Attempt` (error type as in ``dispatch``).

            Exceptions inside the callables are logged, never raised. Each LiteLLM call is
            reported once, even when LiteLLM runs both its sync and async hooks.
            """

            def __init__(
                self,
                on_success: Callable[[str, DispatchResult], None] | None = None,
                on_error: Callable[[str, Attempt], None] | None = None,
                **kwargs: Any,
            ):
                super().__init__(**kwargs)
                self.on_success = on_success
                self.on_error = on_error
                # LiteLLM de-duplicates callbacks by class name + public str/int/bool attributes;
                # a per-instance id keeps two ZeroRouterCallbacks (or a re-registered one) apart.
                self.callback_id = uuid.uuid4().hex
                self._seen: set = set()
                self._seen_order: deque = deque()
                self._seen_lock = threading.Lock()

            def register(self) -> ZeroRouterCallback:
                """Add to ``litellm.callbacks`` (no duplicate); returns self."""
                litellm.logging_callback_manager.add_litellm_callback(self)
                return self

            def unregister(self) -> None:
                """Remove from every LiteLLM callback list it was promoted into."""
                litellm.logging_callback_manager.remove_callback_from_all_lists(self)

            # -- helpers
            def _first_time(self, kind: str, kwargs: dict) -> bool:
                call_id = kwargs.get("litellm_call_id")
                if call_id is None:
                    return True
                key = (kind, call_id)
                with self._seen_lock:
                    if key in self._seen:
                        return False
                    self._seen.add(key)
                    self._seen_order.append(key)
                    if len(self._seen_order) > 4096:
                        self._seen.discard(self._seen_order.popleft())
                return True

            @staticmethod
            def _model(kwargs: dict) -> str:
                lp = kwargs.get("litellm_params") or {}
                info = lp.get("model_info") or {}
                if info.get("zerorouter_name"):
                    return str(info["zerorouter_name"])
                slo = kwargs.get("standard_logging_object") or {}
                hidden = slo.get("hidden_params") or {}
                model = hidden.get("litellm_model_name") or kwargs.get("model") or slo.get("model") or ""
                return _strip_provider(str(model))

            @staticmethod
            def _seconds(a: Any, b: Any) -> float | None:
                if isinstance(a, datetime) and isinstance(b, datetime):
                    return (b - a).total_seconds()
                if isinstance(a, (int, float)) and isinstance(b, (int, float)):
                    return float(b) - float(a)
                return None

            def _result(self, kwargs: dict, response: Any, start: Any, end: Any) -> DispatchResult:
                slo = kwargs.get("standard_logging_object") or {}
                latency = self._seconds(start, end)
                if latency is None:
                    latency = float(slo.get("response_time") or 0.0)
                ttft = latency
                if kwargs.get("stream") or (slo.get("stream") is True):
                    t = self._seconds(slo.get("startTime"), slo.get("completionStartTime"))
                    if t is None:
                        t = self._seconds(
                            kwargs.get("api_call_start_time") or start, kwargs.get("completion_start_time")
                        )
                    ttft = t if t is not None else latency
                usage_obj = getattr(response, "usage", None)
                if usage_obj is not None:
                    usage = Usage.from_litellm(usage_obj)
                else:
                    usage = Usage.from_litellm(
                        {
                            "prompt_tokens": slo.get("prompt_tokens"),
                            "completion_tokens": slo.get("completion_tokens"),
                            "total_tokens": slo.get("total_tokens"),
                        }
                    )
                cost = slo.get("response_cost")
                if cost is None:
                    cost = kwargs.get("response_cost")
                known = cost is not None and not slo.get("response_cost_failure_debug_info")
                choices = getattr(response, "choices", None) or []
                msg = getattr(choices[0], "message", None) if choices else None
                tcs = getattr(msg, "tool_calls", None) or []
                return DispatchResult(
                    model=self._model(kwargs),
                    response=response,
                    content=getattr(msg, "content", None),
                    tool_calls=[tool_call_dict(tc) for tc in tcs],
                    finish_reason=getattr(choices[0], "finish_reason", None) if choices else None,
                    usage=usage,
                    cost_usd=float(cost or 0.0),
                    latency_s=latency,
                    ttft_s=ttft,
                    attempts=[],
                    cost_known=known,
                )

            def _success(self, kwargs: dict, response: Any, start: Any, end: Any) -> None:
                if self.on_success is None or not self._first_time("ok", kwargs):
                    return
                try:
                    result = self._result(kwargs, response, start, end)
                    self.on_success(result.model, result)
                except Exception:
                    logger.exception("ZeroRouterCallback.on_success raised")

            def _failure(self, kwargs: dict, response: Any, start: Any, end: Any) -> None:
                if self.on_error is None or not self._first_time("err", kwargs):
                    return
                try:
                    exc = kwargs.get("exception")
                    if isinstance(exc, BaseException):
                        etype, status, retryable = classify_error(exc)
                        message = f"{type(exc).__name__}: {exc}"[:500]
                    else:
                        etype, status, retryable = "error", None, False
                        message = str(exc or (kwargs.get("standard_logging_object") or {}).get("error_str"))
                    latency = self._seconds(start, end) or 0.0
                    model = self._model(kwargs)
                    self.on_error(model, Attempt(model, etype, message, status, latency, retryable))
                except Exception:
                    logger.exception("ZeroRouterCallback.on_error raised")

            # -- LiteLLM hooks
            def log_success_event(self, kwargs, response_obj, start_time, end_time):
                self._success(kwargs, response_obj, start_time, end_time)

            async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
                self._success(kwargs, response_obj, start_time, end_time)

            def log_failure_event(self, kwargs, response_obj, start_time, end_time):
                self._failure(kwargs, response_obj, start_time, end_time)

            async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
                self._failure(kwargs, response_obj, start_time, end_time)

        for cls in (ZeroRouterStrategy, ZeroRouterCallback):
            cls.__module__ = __name__
        globals()["ZeroRouterStrategy"] = ZeroRouterStrategy
        globals()["ZeroRouterCallback"] = ZeroRouterCallback


def _litellm_version() -> str:
    try:
        from importlib.metadata import version

        return version("litellm")
    except Exception:
        return "unknown"


def __getattr__(name: str) -> Any:
    if name in ("ZeroRouterStrategy", "ZeroRouterCallback"):
        _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
