"""Capability filters: remove the models that cannot serve a request before anything is scored.

A request *needs* some number of context tokens, maybe tools, images or a JSON schema
(:class:`RequestNeeds`, from :func:`needs_from_request`); a model *has* a context window, an output
limit and feature flags (:class:`ModelCapabilities`, from LiteLLM's model map through
:func:`capabilities_from_litellm`). :func:`filter_models` keeps the models that can serve the request
and says why each other one was removed.

Unknown is never a reason to remove: a model LiteLLM does not know gets ``context_window=None``
(never filtered on context) and every feature flag ``True``; a model missing from the ``caps``
mapping passed to :func:`filter_models` is treated the same way.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

from zerorouter_integrations.errors import SchemaError, UnknownModelError

__all__ = [
    "CHARS_PER_TOKEN",
    "PERMISSIVE",
    "ModelCapabilities",
    "RequestNeeds",
    "capabilities_from_litellm",
    "estimate_tokens",
    "filter_models",
    "needs_from_request",
]

CHARS_PER_TOKEN = 4
"""Characters per token of the prompt-size estimate (OpenAI's rule of thumb for English)."""


@dataclass(frozen=True)
class ModelCapabilities:
    """What one model can do.

    Attributes
    ----------
    context_window : int or None
        Maximum input tokens (LiteLLM ``max_input_tokens``); None = unknown, never filtered on.
    max_output_tokens : int or None
        Maximum output tokens; None = unknown.
    supports_tools : bool
        Function / tool calling.
    supports_vision : bool
        Image inputs.
    supports_json_schema : bool
        ``response_format={"type": "json_schema", ...}`` (structured outputs).
    supports_response_format : bool
        Any ``response_format`` (e.g. ``{"type": "json_object"}``).
    """

    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool = True
    supports_vision: bool = False
    supports_json_schema: bool = True
    supports_response_format: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelCapabilities:
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`SchemaError`."""
        names = {f.name for f in fields(cls)}
        extra = set(d) - names
        if extra:
            raise SchemaError(f"unknown ModelCapabilities field(s) {sorted(extra)}; expected {sorted(names)}")
        return cls(**dict(d))


#: Capabilities assumed for a model LiteLLM does not know: nothing is filtered on.
PERMISSIVE = ModelCapabilities(
    context_window=None,
    max_output_tokens=None,
    supports_tools=True,
    supports_vision=True,
    supports_json_schema=True,
    supports_response_format=True,
)


def _positive_int(v: Any) -> int | None:
    try:
        iv = int(v)
    except (TypeError, ValueError):
        return None
    return iv if iv > 0 else None


#: Flags LiteLLM decides per provider rather than per model (its ``supports_*`` helpers and
#: ``get_supported_openai_params``), used where the price map's entry does not set them.
_PROVIDER_FLAGS: dict[str, dict[str, bool]] = {
    "fireworks_ai": {"supports_function_calling": True, "supports_response_schema": True},
    "nebius": {"supports_response_schema": True},
    "replicate": {"supports_response_format": False},
}


def capabilities_from_litellm(
    litellm_model: str, overrides: Mapping[str, Any] | None = None
) -> ModelCapabilities:
    """Capabilities of a model from LiteLLM's local model map.

    Parameters
    ----------
    litellm_model : str
        A LiteLLM model name, e.g. ``"gpt-4o-mini"`` or ``"openai/gpt-4o-mini"``.
    overrides : mapping, optional
        Field values that win over LiteLLM's (e.g. ``{"context_window": 8192}`` for a self-hosted
        deployment, or ``{"supports_vision": True}``).

    Returns
    -------
    ModelCapabilities
        For a model LiteLLM does not know: context window and output limit None (unknown), every
        feature flag True, then the overrides.

    Notes
    -----
    Reads LiteLLM's local price map directly (:func:`~zerorouter_integrations.catalog.model_info`:
    ``max_input_tokens``, falling back to ``max_tokens``; ``max_output_tokens``; the
    ``supports_function_calling``, ``supports_vision`` and ``supports_response_schema`` flags), without
    importing LiteLLM, so deciding never pays its import. ``response_format`` (JSON mode) is assumed
    supported unless the map says ``supports_response_format: false``.
    """
    from zerorouter_integrations.catalog import model_info, provider_of

    info = model_info(litellm_model)
    if info is not None:
        info = {**_PROVIDER_FLAGS.get(provider_of(litellm_model) or "", {}), **info}
    if info is None:
        caps = PERMISSIVE
    else:
        context = _positive_int(info.get("max_input_tokens")) or _positive_int(info.get("max_tokens"))
        json_schema = bool(info.get("supports_response_schema"))
        caps = ModelCapabilities(
            context_window=context,
            max_output_tokens=_positive_int(info.get("max_output_tokens")),
            supports_tools=bool(info.get("supports_function_calling")),
            supports_vision=bool(info.get("supports_vision")),
            supports_json_schema=json_schema,
            supports_response_format=json_schema or bool(info.get("supports_response_format", True)),
        )
    if overrides:
        merged = {**caps.to_dict(), **dict(overrides)}
        caps = ModelCapabilities.from_dict(merged)
    return caps


@dataclass(frozen=True)
class RequestNeeds:
    """What one request needs from a model.

    Attributes
    ----------
    prompt_tokens : int
        Estimated input tokens (see :func:`needs_from_request`).
    max_tokens : int or None
        Requested output limit; None = not set (only the prompt is checked against the context).
    needs_tools : bool
        The request passes tools.
    needs_vision : bool
        A message contains an image part.
    needs_json_schema : bool
        ``response_format`` of type ``json_schema``.
    needs_response_format : bool
        Any ``response_format`` other than plain text (``json_object`` or ``json_schema``).
    """

    prompt_tokens: int
    max_tokens: int | None = None
    needs_tools: bool = False
    needs_vision: bool = False
    needs_json_schema: bool = False
    needs_response_format: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields."""
        return asdict(self)


_IMAGE_PART_TYPES = {"image_url", "image", "input_image"}


def estimate_tokens(text: str) -> int:
    """``ceil(len(text) / 4)``: a tokenizer-free estimate of a text's token count."""
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def _text_and_images(content: Any) -> tuple[list[str], bool]:
    """Text pieces and whether an image part occurs in one message's ``content``."""
    if content is None:
        return [], False
    if isinstance(content, str):
        return [content], False
    texts: list[str] = []
    image = False
    if isinstance(content, Sequence):
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, Mapping):
                kind = part.get("type")
                if kind in _IMAGE_PART_TYPES:
                    image = True
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return texts, image


def needs_from_request(
    messages: list[dict],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    response_format: Mapping[str, Any] | type | None = None,
    max_tokens: int | None = None,
) -> RequestNeeds:
    """Derive a request's needs from OpenAI-format chat arguments.

    Parameters
    ----------
    messages : list of dict
        OpenAI-format messages; ``content`` is a string or a list of parts.
    tools : sequence of dict, optional
        OpenAI tool definitions.
    response_format : dict or type, optional
        ``{"type": "json_schema", ...}`` needs structured outputs; ``{"type": "json_object"}`` needs
        response-format support; a class (e.g. a pydantic model, as LiteLLM accepts) counts as a
        JSON schema.
    max_tokens : int, optional
        Requested output limit.

    Returns
    -------
    RequestNeeds

    Notes
    -----
    ``prompt_tokens`` ≈ ``ceil(chars / 4)`` over every text part of every message, the arguments of
    assistant tool calls, and the JSON of the tool definitions. No tokenizer is loaded. Image parts
    are not counted (their token cost depends on the provider and the image size).
    """
    chars = 0
    vision = False
    for msg in messages:
        texts, image = _text_and_images(msg.get("content"))
        vision = vision or image
        chars += sum(len(t) for t in texts)
        for call in msg.get("tool_calls") or ():
            fn = call.get("function", {}) if isinstance(call, Mapping) else {}
            chars += len(str(fn.get("name", ""))) + len(str(fn.get("arguments", "")))
    if tools:
        chars += len(json.dumps(list(tools), default=str))
    json_schema = False
    any_format = False
    if response_format is not None:
        if isinstance(response_format, Mapping):
            kind = response_format.get("type")
            json_schema = kind == "json_schema"
            any_format = kind not in (None, "text")
        else:  # a class such as a pydantic model: LiteLLM turns it into a json_schema
            json_schema = any_format = True
    return RequestNeeds(
        prompt_tokens=math.ceil(chars / CHARS_PER_TOKEN),
        max_tokens=max_tokens,
        needs_tools=bool(tools),
        needs_vision=vision,
        needs_json_schema=json_schema,
        needs_response_format=any_format,
    )


def _reasons(caps: ModelCapabilities, needs: RequestNeeds) -> list[str]:
    out: list[str] = []
    if caps.context_window is not None:
        need = needs.prompt_tokens + (needs.max_tokens or 0)
        if need > caps.context_window:
            if needs.max_tokens:
                out.append(
                    f"context window {caps.context_window} < prompt {needs.prompt_tokens} "
                    f"+ max_tokens {needs.max_tokens}"
                )
            else:
                out.append(f"context window {caps.context_window} < prompt {needs.prompt_tokens} tokens")
    if (
        caps.max_output_tokens is not None
        and needs.max_tokens is not None
        and needs.max_tokens > caps.max_output_tokens
    ):
        out.append(f"max_tokens {needs.max_tokens} > max output {caps.max_output_tokens} tokens")
    if needs.needs_tools and not caps.supports_tools:
        out.append("no tool calling (the request passes tools)")
    if needs.needs_vision and not caps.supports_vision:
        out.append("no image input (the request contains an image)")
    if needs.needs_json_schema and not caps.supports_json_schema:
        out.append("no JSON-schema structured output (response_format json_schema)")
    elif needs.needs_response_format and not caps.supports_response_format:
        out.append("no response_format support (the request sets one)")
    return out


def filter_models(
    models: Sequence[str],
    caps: Mapping[str, ModelCapabilities],
    needs: RequestNeeds,
    *,
    allow: Collection[str] | None = None,
    deny: Collection[str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Keep the models that can serve a request.

    Parameters
    ----------
    models : sequence of str
        The pool, in preference-free order.
    caps : mapping of str to ModelCapabilities
        Capabilities per model; a model missing here is assumed able to do anything.
    needs : RequestNeeds
        What the request needs.
    allow : collection of str, optional
        If given, only these models are admissible.
    deny : collection of str, optional
        These models are never admissible.

    Returns
    -------
    admissible : list of str
        Kept models, in the order of ``models``.
    removed : dict of str to str
        Each removed model → why, naming the constraint and the numbers (several reasons are
        joined by ``"; "``), e.g. ``"context window 4096 < prompt 3900 + max_tokens 512"``.

    Raises
    ------
    UnknownModelError
        A name in ``allow`` or ``deny`` that is not in ``models``.
    """
    pool = list(models)
    known = set(pool)
    for group in (allow, deny):
        for name in group or ():
            if name not in known:
                raise UnknownModelError(name, pool)
    allow_set = None if allow is None else set(allow)
    deny_set = set(deny or ())
    kept: list[str] = []
    removed: dict[str, str] = {}
    for name in pool:
        reasons: list[str] = []
        if name in deny_set:
            reasons.append("in the deny list")
        if allow_set is not None and name not in allow_set:
            reasons.append("not in the allow list")
        reasons += _reasons(caps.get(name, PERMISSIVE), needs)
        if reasons:
            removed[name] = "; ".join(reasons)
        else:
            kept.append(name)
    return kept, removed
