"""The model-name catalog: which LiteLLM string dispatches each shipped profile, and what a name means.

Users write model names the way they know them: ``gpt-4o-mini`` (undated), ``anthropic/claude-3-5-sonnet-20241022``
(provider prefix), ``claude-3-5-sonnet-latest`` (alias), or a LiteLLM string from their proxy config.
:func:`resolve` maps any of these to the profile the router knows; an unknown name raises
:class:`~zerorouter_integrations.errors.UnknownModelError` with the closest known names.

The shipped profiles were measured on benchmark tables whose model names LiteLLM no longer resolves in
every case (retired providers, names without a provider prefix). :data:`CURRENT` records, per profile,
the LiteLLM string that dispatches it today; :data:`BENCHMARK_ONLY` the profiles no provider of LiteLLM
serves (routing decisions may name them; dispatch refuses them with the reason). :func:`entry` gives a
profile's current dispatch facts; :func:`missing_credentials` what environment variable an endpoint
still needs.

LiteLLM's model information (context window, feature flags) is read from its local price map JSON
(:func:`price_map`) without importing LiteLLM, so deciding (``route()``) never pays LiteLLM's import.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zerorouter_integrations.errors import SchemaError, UnknownModelError
from zerorouter_integrations.jsonfast import loads_finite
from zerorouter_integrations.names import bare_name

__all__ = [
    "BENCHMARK_ONLY",
    "CURRENT",
    "CatalogEntry",
    "credential_env",
    "dispatch_model",
    "entry",
    "missing_credentials",
    "model_info",
    "price_map",
    "price_map_path",
    "provider_of",
    "resolve",
]

#: Profile name → the LiteLLM string that dispatches it with the pinned LiteLLM (where the benchmark's
#: own string no longer resolves: a provider prefix added, or a retired host replaced by one serving the
#: same open weights).
CURRENT: dict[str, str] = {
    "chatgpt-4o-latest-24-09-07": "openai/chatgpt-4o-latest",
    "claude-3-5-sonnet-20240620": "anthropic/claude-3-5-sonnet-20240620",
    "claude-3-5-sonnet-20241022": "anthropic/claude-3-5-sonnet-20241022",
    "claude-3-haiku-20240307": "anthropic/claude-3-haiku-20240307",
    "claude-3-opus-20240229": "anthropic/claude-3-opus-20240229",
    "claude-3-sonnet-20240229": "anthropic/claude-3-sonnet-20240229",
    "claude-v2": "bedrock/anthropic.claude-v2",
    "command-r": "cohere_chat/command-r",
    "command-r-plus": "cohere_chat/command-r-plus",
    "gemini-1.5-flash": "gemini/gemini-1.5-flash-001",
    "gemini-1.5-pro": "gemini/gemini-1.5-pro-001",
    "gpt-4-0314": "openai/gpt-4-0314",
    "o1-preview-2024-09-12": "openai/o1-preview-2024-09-12",
    "meta/code-llama-instruct-34b-chat": "together_ai/togethercomputer/CodeLlama-34b-Instruct",
    "meta/llama-2-70b-chat": "replicate/meta/llama-2-70b-chat",
    "mistralai/mistral-7b-chat": "together_ai/mistralai/Mistral-7B-Instruct-v0.1",
    "llama-3.1-nemotron-51b-instruct": "nvidia_nim/nvidia/llama-3.1-nemotron-51b-instruct",
    "llama3-chatqa-1.5-70b": "nvidia_nim/nvidia/llama3-chatqa-1.5-70b",
    "llama3-chatqa-1.5-8b": "nvidia_nim/nvidia/llama3-chatqa-1.5-8b",
    # alpacaeval's priced models (open-ended instructions; ``_concise``/``_verbose``: the same model
    # with another system prompt, dispatched as the model itself)
    "claude": "bedrock/anthropic.claude-v1",
    "claude-2": "bedrock/anthropic.claude-v2",
    "claude-2.1_concise": "bedrock/anthropic.claude-v2:1",
    "claude-instant-1.2": "anthropic/claude-instant-1.2",
    "gemma-7b-it": "fireworks_ai/accounts/fireworks/models/gemma-7b-it",
    "gpt-3.5-turbo-0301": "openai/gpt-3.5-turbo-0301",
    "gpt35_turbo_instruct": "text-completion-openai/gpt-3.5-turbo-instruct",
}

_NO_HOST = "open weights that no LiteLLM provider hosts"
#: Profile name → why it cannot be dispatched (benchmark-only: usable in routing studies and decisions;
#: to call it, serve it yourself and pass ``endpoints={name: ModelEndpoint(...)}``).
BENCHMARK_ONLY: dict[str, str] = {
    "Athene-70B": _NO_HOST,
    "gemma-2-2b-it": _NO_HOST,
    "Qwen2.5-3B-Instruct": _NO_HOST,
    "Yi-1.5-34B-Chat": _NO_HOST,
    "Yi-1.5-9B-Chat": _NO_HOST,
    "WizardLM/WizardLM-13B-V1.2": _NO_HOST,
    "reka-core-20240501": "Reka's API is not a LiteLLM provider",
    "reka-flash-20240226": "Reka's API is not a LiteLLM provider",
}

#: Provider → alternatives of environment variables (each alternative: all of its names set) LiteLLM
#: reads the key from. Providers not listed are not checked.
_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "openai": (("OPENAI_API_KEY",),),
    "text-completion-openai": (("OPENAI_API_KEY",),),
    "anthropic": (("ANTHROPIC_API_KEY",),),
    "gemini": (("GEMINI_API_KEY",), ("GOOGLE_API_KEY",)),
    "deepseek": (("DEEPSEEK_API_KEY",),),
    "together_ai": (("TOGETHERAI_API_KEY",), ("TOGETHER_API_KEY",), ("TOGETHER_AI_API_KEY",)),
    "mistral": (("MISTRAL_API_KEY",),),
    "deepinfra": (("DEEPINFRA_API_KEY",),),
    "fireworks_ai": (("FIREWORKS_AI_API_KEY",), ("FIREWORKS_API_KEY",), ("FIREWORKSAI_API_KEY",)),
    "azure_ai": (("AZURE_AI_API_KEY",),),
    "nebius": (("NEBIUS_API_KEY",),),
    "nvidia_nim": (("NVIDIA_NIM_API_KEY",),),
    "cohere": (("COHERE_API_KEY",), ("CO_API_KEY",)),
    "cohere_chat": (("COHERE_API_KEY",), ("CO_API_KEY",)),
    "replicate": (("REPLICATE_API_KEY",), ("REPLICATE_API_TOKEN",)),
    "groq": (("GROQ_API_KEY",),),
    "xai": (("XAI_API_KEY",),),
    "bedrock": (
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        ("AWS_PROFILE",),
        ("AWS_BEARER_TOKEN_BEDROCK",),
    ),
}

#: Providers LiteLLM dropped although its price map still lists their models.
_RETIRED_PROVIDERS = frozenset({"anyscale"})
#: Providers whose LiteLLM name has a hyphen (the price map's other hyphenated names are sub-kinds such
#: as ``vertex_ai-language-models``, not prefixes).
_HYPHENATED_PROVIDERS = frozenset({"text-completion-openai"})
_DATED = re.compile(r"^(?P<family>.+?)-(?P<date>\d{8}|\d{4}-\d{2}-\d{2})$")


# ----------------------------------------------------------------------------------------- price map
def price_map_path() -> Path:
    """The installed LiteLLM's local price map (``model_prices_and_context_window_backup.json``), found
    without importing LiteLLM."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaError("LiteLLM is not installed; expected the package 'litellm' (pip install litellm)")
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    if not path.is_file():
        raise SchemaError(f"LiteLLM's local price map is missing: expected {path}")
    return path


@functools.lru_cache(maxsize=1)
def price_map() -> Mapping[str, Mapping[str, Any]]:
    """LiteLLM's local price map: model key → info (``litellm_provider``, ``max_input_tokens``, prices,
    ``supports_*`` flags). Read once per process; LiteLLM itself is not imported."""
    raw = price_map_path().read_bytes()
    try:
        data = loads_finite(raw)  # orjson when installed
    except ValueError:
        data = json.loads(raw)  # the standard parser as LiteLLM reads it (NaN allowed)
    return {k: v for k, v in data.items() if isinstance(v, dict) and k != "sample_spec"}


@functools.lru_cache(maxsize=1)
def _providers() -> frozenset[str]:
    names = {str(v.get("litellm_provider")) for v in price_map().values() if v.get("litellm_provider")}
    names |= set(_CREDENTIALS) | {"hosted_vllm", "ollama", "ollama_chat", "openrouter", "litellm_proxy"}
    names = {n for n in names if re.fullmatch(r"[a-z0-9_]+", n)} | _HYPHENATED_PROVIDERS
    return frozenset(names) - _RETIRED_PROVIDERS


def _split(litellm_model: str) -> tuple[str | None, str]:
    head, sep, rest = litellm_model.partition("/")
    if sep and head in _providers():
        return head, rest
    return None, litellm_model


def model_info(litellm_model: str) -> Mapping[str, Any] | None:
    """The price-map entry of a LiteLLM model string (with or without provider prefix), or None."""
    pm = price_map()
    if litellm_model in pm:
        return pm[litellm_model]
    provider, rest = _split(litellm_model)
    if provider is not None:
        info = pm.get(rest)
        listed = str(info.get("litellm_provider", "")) if info is not None else ""
        if info is not None and provider in (listed, listed.split("-")[0]):
            return info
    return None


def provider_of(litellm_model: str) -> str | None:
    """The LiteLLM provider of a model string: its prefix when that names a provider, else the price
    map's ``litellm_provider`` (None when neither says; LiteLLM would refuse to dispatch it)."""
    provider, _ = _split(litellm_model)
    if provider is not None:
        return provider
    info = price_map().get(litellm_model)
    p = info.get("litellm_provider") if info else None
    return None if p in (None, *_RETIRED_PROVIDERS) else str(p).split("-")[0]


# ------------------------------------------------------------------------------------------ entries
@dataclass(frozen=True)
class CatalogEntry:
    """Dispatch facts of one profile.

    Attributes
    ----------
    name : str
        The profile name.
    litellm_model : str or None
        The LiteLLM string that dispatches it (None: benchmark-only or no string known).
    provider : str or None
        Its LiteLLM provider.
    benchmark_only : str or None
        Why it cannot be dispatched (None: it can).
    in_price_map : bool
        LiteLLM's local price map lists the string (context window and feature flags known).
    """

    name: str
    litellm_model: str | None
    provider: str | None
    benchmark_only: str | None
    in_price_map: bool

    @property
    def dispatchable(self) -> bool:
        """A LiteLLM string with a provider LiteLLM knows."""
        return self.benchmark_only is None and self.provider is not None


def dispatch_model(name: str, stored: str | None) -> str | None:
    """The LiteLLM string to dispatch profile ``name`` with: the catalog's current one, else ``stored``
    (the profile's own), None for a benchmark-only profile."""
    if name in BENCHMARK_ONLY:
        return None
    return CURRENT.get(name, stored)


def entry(name: str, stored: str | None = None) -> CatalogEntry:
    """The :class:`CatalogEntry` of profile ``name`` whose own LiteLLM string is ``stored``."""
    lm = dispatch_model(name, stored)
    reason = BENCHMARK_ONLY.get(name)
    provider = provider_of(lm) if lm else None
    if reason is None and lm is None:
        reason = "the profile has no LiteLLM model string"
    elif reason is None and provider is None:
        reason = f"LiteLLM cannot tell the provider of {lm!r}"
    return CatalogEntry(
        name, lm, provider, reason, lm is not None and bool(lm) and model_info(lm) is not None
    )


# ------------------------------------------------------------------------------------------ resolve
@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, str | None]:
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact

    return {n: p.litellm_model for n, p in RouterArtifact.load(DEFAULT_ARTIFACT).predictor.profiles_.items()}


def _date_key(d: str) -> str:
    return d.replace("-", "")


def resolve(name: str, known: Mapping[str, Any] | Iterable[str] | None = None) -> str:
    """The profile a user-facing model name means.

    Parameters
    ----------
    name : str
        A profile name (``gpt-4o-mini-2024-07-18``), an undated name (``gpt-4o-mini``: the newest dated
        profile of it), a ``-latest`` alias (``claude-3-5-sonnet-latest``), any of these with a LiteLLM
        provider prefix (``anthropic/claude-3-5-sonnet-20241022``), or a LiteLLM model string a profile
        dispatches with (``together_ai/meta-llama/Llama-3.1-405B-Instruct``; several profiles sharing
        one string: the one whose name is closest to it).
    known : mapping of profile name to ModelProfile (or to LiteLLM string), or names, optional
        The profiles to resolve against. Default: the shipped artifact's.

    Returns
    -------
    str
        A key of ``known``.

    Raises
    ------
    UnknownModelError
        No profile matches; the message lists the closest known names.
    """
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(repr(name), [], hint="expected a non-empty model name")
    if known is None:
        table: dict[str, str | None] = _shipped()
    elif isinstance(known, Mapping):
        table = {
            k: v if isinstance(v, str) or v is None else getattr(v, "litellm_model", None)
            for k, v in known.items()
        }
    else:
        table = dict.fromkeys(known)
    name = name.strip()
    if name in table:
        return name
    provider, rest = _split(name)
    if provider is not None and rest in table:
        return rest
    lower = {k.lower(): k for k in table}
    if rest.lower() in lower:
        return lower[rest.lower()]
    # a LiteLLM string some profile dispatches with (its current or its own)
    by_string = [k for k, v in table.items() if name in (dispatch_model(k, v), v)]
    if by_string:
        target = bare_name(name)
        return max(
            sorted(by_string), key=lambda k: (bare_name(k) == target, -_distance(bare_name(k), target))
        )
    # undated name or -latest alias: the newest dated profile of that family
    family = rest.lower().removesuffix("-latest")
    dated = []
    for k in table:
        m = _DATED.match(k.lower())
        if m and m.group("family") == family:
            dated.append((_date_key(m.group("date")), k))
    if dated:
        return max(dated)[1]
    raise UnknownModelError(name, list(table))


def _distance(a: str, b: str) -> float:
    import difflib

    return 1.0 - difflib.SequenceMatcher(None, a, b).ratio()


# -------------------------------------------------------------------------------------- credentials
def credential_env(provider: str | None) -> tuple[tuple[str, ...], ...]:
    """Environment variables LiteLLM reads ``provider``'s key from: alternatives, each a tuple of names
    that must all be set (empty: not known, not checked)."""
    return _CREDENTIALS.get(provider or "", ())


def missing_credentials(endpoint: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """What an endpoint still needs before LiteLLM can call it: the environment variable names of the
    first alternative of its provider (``[]``: nothing missing, or nothing we can check).

    An endpoint with its own ``api_key``, a set ``api_key_env``, an ``api_base`` (a server of yours) or
    a key in ``extra`` counts as configured.
    """
    env = os.environ if environ is None else environ
    if getattr(endpoint, "api_key", None) or getattr(endpoint, "api_base", None):
        return []
    key_env = getattr(endpoint, "api_key_env", None)
    if key_env and env.get(key_env):
        return []
    extra = getattr(endpoint, "extra", None) or {}
    if any(k.endswith(("api_key", "_access_key_id", "api_base")) for k in extra):
        return []
    options = credential_env(provider_of(str(getattr(endpoint, "litellm_model", ""))))
    if any(all(env.get(v) for v in alt) for alt in options):
        return []
    if key_env:
        return [key_env]
    return list(options[0]) if options else []
