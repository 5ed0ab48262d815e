"""LiteLLM's own configuration as the router's pool.

A LiteLLM proxy ``config.yaml`` (or a ``litellm.Router`` ``model_list``) already says which models a
team calls and how::

    model_list:
      - model_name: cheap                      # the name callers use
        litellm_params:
          model: openai/gpt-3.5-turbo-1106     # LiteLLM model string
          api_base: http://127.0.0.1:8000/v1
          api_key: os.environ/OPENAI_API_KEY   # read from the environment at call time
        model_info:
          input_cost_per_token: 1.0e-6         # optional: prices and context window
          output_cost_per_token: 2.0e-6
          max_input_tokens: 16385
          zerorouter_profile: gpt-3.5-turbo-1106   # optional: which profile of the artifact it is
    zerorouter:                                # optional: the router's own settings
      artifact: my-artifact.json.gz
      store: sqlite:///zerorouter.db
      policies:
        budget-0.5: {budget_usd_per_1k: 0.5}
        quality-0.9: {quality_target: 0.9}

:func:`load_litellm_config` parses it (PyYAML only, no LiteLLM import); :meth:`LiteLLMConfig.resolve`
maps every deployment to a profile of the artifact, by ``model_info.zerorouter_profile``, by its
LiteLLM model string (with or without the provider prefix, or a dated name of it) or by its
``model_name``. It returns a :class:`ConfigPool`: one endpoint per profile (several deployments of one
model share the profile and are balanced like LiteLLM's ``simple-shuffle``: weighted by ``weight``,
``rpm`` or ``tpm``), plus the deployments left out with what to do about each (the exact
``zerorouter onboard`` command for a model the artifact does not know, the variable to set for a
missing ``os.environ/NAME`` key). API keys given as ``os.environ/NAME`` are never read into memory
before a call; literal keys are held as :class:`pydantic.SecretStr`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from zerorouter_integrations.catalog import resolve
from zerorouter_integrations.dispatch import ModelEndpoint
from zerorouter_integrations.errors import SchemaError, UnknownModelError
from zerorouter_integrations.names import closest_matches

__all__ = [
    "BalancedEndpoint",
    "ConfigPool",
    "Deployment",
    "LiteLLMConfig",
    "SkippedDeployment",
    "config_policies",
    "load_litellm_config",
    "onboard_command",
    "resolve_profile_name",
    "router_parts",
]

ENV_PREFIX = "os.environ/"
_MODEL_INFO_KEYS = ("input_cost_per_token", "output_cost_per_token", "max_input_tokens", "max_tokens")


# ---------------------------------------------------------------------------- parsed config
@dataclass(frozen=True)
class Deployment:
    """One entry of ``model_list``.

    ``api_key_env`` holds the variable name of an ``os.environ/NAME`` key (read at call time);
    ``api_key`` a literal key, kept secret. ``extra`` holds the other ``litellm_params`` (passed to
    LiteLLM with every call), ``weight`` the balancing weight (``weight``, ``rpm`` or ``tpm``).
    """

    model_name: str
    litellm_model: str
    api_base: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    max_input_tokens: int | None = None
    max_tokens: int | None = None
    zerorouter_profile: str | None = None
    weight: float = 1.0
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)
    index: int = 0

    def key_missing(self) -> bool:
        """Whether the deployment's ``os.environ/NAME`` key is unset right now."""
        return self.api_key_env is not None and not os.environ.get(self.api_key_env)

    def endpoint(self, name: str) -> ModelEndpoint:
        """The :class:`ModelEndpoint` that calls this deployment under pool name ``name``."""
        return ModelEndpoint(
            name=name,
            litellm_model=self.litellm_model,
            api_base=self.api_base,
            api_key=self.api_key.get_secret_value() if self.api_key is not None else None,
            api_key_env=self.api_key_env,
            input_cost_per_token=self.input_cost_per_token,
            output_cost_per_token=self.output_cost_per_token,
            extra=dict(self.extra),
        )

    def describe(self) -> str:
        """``model_list[i] (model_name -> litellm model)`` for messages."""
        return f"model_list[{self.index}] ({self.model_name!r} -> {self.litellm_model!r})"


@dataclass(frozen=True)
class BalancedEndpoint(ModelEndpoint):
    """Several deployments of one model: each call goes to one of them, drawn by weight.

    The endpoint's own fields are the first deployment's (capabilities and prices are looked up
    there); :meth:`pick` draws the deployment of one call, like LiteLLM's ``simple-shuffle``.
    """

    deployments: tuple[ModelEndpoint, ...] = ()
    weights: tuple[float, ...] = ()

    def pick(self) -> ModelEndpoint:
        if not self.deployments:
            return self
        return random.choices(self.deployments, weights=self.weights or None, k=1)[0]


@dataclass(frozen=True)
class SkippedDeployment:
    """A deployment left out of routing, why, and what to do about it."""

    deployment: Deployment
    reason: str
    action: str

    def __str__(self) -> str:
        return f"{self.deployment.describe()}: {self.reason}; {self.action}"


@dataclass
class ConfigPool:
    """What a config resolves to against an artifact's profiles.

    Attributes
    ----------
    endpoints : dict of str to ModelEndpoint
        Profile name → how to call it (a :class:`BalancedEndpoint` when several deployments share it).
    aliases : dict of str to str
        Every ``model_name`` and LiteLLM model string of a routed deployment → its profile name.
    skipped : list of SkippedDeployment
        Deployments left out, each with what to do.
    """

    endpoints: dict[str, ModelEndpoint]
    aliases: dict[str, str]
    skipped: list[SkippedDeployment]

    def resolve_name(self, name: str) -> str | None:
        """The profile a caller's model name means (a profile name, ``model_name`` or model string)."""
        if name in self.endpoints:
            return name
        return self.aliases.get(name)

    def report(self) -> str:
        """One line per skipped deployment (empty when every deployment is routed)."""
        return "\n".join(str(s) for s in self.skipped)


def _env_ref(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :].strip()
        if not name:
            raise SchemaError(f"{value!r}: expected 'os.environ/NAME' with a variable name")
        return name
    return None


def _number(value: Any, where: str, kind: type = float) -> Any:
    if value is None:
        return None
    try:
        out = kind(value)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}={value!r}; expected a number") from None
    if out < 0:
        raise SchemaError(f"{where}={value!r}; expected a number >= 0")
    return out


def _deployment(i: int, entry: Any) -> Deployment:
    where = f"model_list[{i}]"
    if not isinstance(entry, Mapping):
        raise SchemaError(
            f"{where} is {type(entry).__name__}; expected a mapping with model_name, litellm_params"
        )
    name = entry.get("model_name")
    params = entry.get("litellm_params")
    if not isinstance(name, str) or not name:
        raise SchemaError(f"{where}.model_name={name!r}; expected a non-empty string")
    if not isinstance(params, Mapping) or not isinstance(params.get("model"), str) or not params["model"]:
        raise SchemaError(
            f"{where}.litellm_params.model missing; expected a LiteLLM model string such as 'openai/gpt-4o-mini'"
        )
    info = entry.get("model_info") or {}
    if not isinstance(info, Mapping):
        raise SchemaError(f"{where}.model_info is {type(info).__name__}; expected a mapping")
    params = dict(params)
    model = params.pop("model")
    api_base = params.pop("api_base", None) or params.pop("base_url", None)
    base_ref = _env_ref(api_base)
    if base_ref is not None:  # like LiteLLM: os.environ/NAME is read when the config is loaded
        api_base = os.environ.get(base_ref)
        if not api_base:
            raise SchemaError(f"{where}.litellm_params.api_base is os.environ/{base_ref}, which is not set")
    raw_key = params.pop("api_key", None)
    key_env = _env_ref(raw_key)
    literal = SecretStr(str(raw_key)) if raw_key is not None and key_env is None else None
    weight = params.pop("weight", None)
    for k in ("rpm", "tpm"):
        if weight is None and params.get(k) is not None:
            weight = params[k]
    extra = {}
    for k, v in params.items():  # other os.environ/ references are resolved like LiteLLM does, at load
        ref = _env_ref(v)
        if k in ("rpm", "tpm", "max_parallel_requests", "order"):
            continue  # routing settings of LiteLLM's Router, not completion() parameters
        extra[k] = os.environ.get(ref, "") if ref is not None else v
    prices = {k: info.get(k, params.get(k)) for k in _MODEL_INFO_KEYS}
    extra = {k: v for k, v in extra.items() if k not in _MODEL_INFO_KEYS}
    profile = info.get("zerorouter_profile")
    if profile is not None and not isinstance(profile, str):
        raise SchemaError(f"{where}.model_info.zerorouter_profile={profile!r}; expected a profile name")
    return Deployment(
        model_name=name,
        litellm_model=model,
        api_base=str(api_base) if api_base is not None else None,
        api_key=literal,
        api_key_env=key_env,
        input_cost_per_token=_number(prices["input_cost_per_token"], f"{where} input_cost_per_token"),
        output_cost_per_token=_number(prices["output_cost_per_token"], f"{where} output_cost_per_token"),
        max_input_tokens=_number(prices["max_input_tokens"], f"{where} max_input_tokens", int),
        max_tokens=_number(prices["max_tokens"], f"{where} max_tokens", int),
        zerorouter_profile=profile,
        weight=float(_number(weight, f"{where} weight") if weight is not None else 1.0),
        extra=extra,
        index=i,
    )


@dataclass
class LiteLLMConfig:
    """A parsed LiteLLM proxy config / Router ``model_list`` plus its optional ``zerorouter:`` section."""

    deployments: list[Deployment]
    zerorouter: dict[str, Any] = field(default_factory=dict)
    router_settings: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    @classmethod
    def from_obj(cls, obj: Any, source: str = "<dict>") -> LiteLLMConfig:
        """From a parsed config (a mapping with ``model_list``) or a bare ``model_list``."""
        if isinstance(obj, Mapping):
            if "model_list" not in obj:
                raise SchemaError(
                    f"{source}: no 'model_list'; expected a LiteLLM config with model_list: [...]"
                )
            model_list, section = obj["model_list"], obj.get("zerorouter") or {}
            settings = obj.get("router_settings") or {}
        elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
            model_list, section, settings = obj, {}, {}
        else:
            raise SchemaError(
                f"{source}: got {type(obj).__name__}; expected a LiteLLM config mapping or a model_list"
            )
        if not isinstance(model_list, Sequence) or isinstance(model_list, (str, bytes)) or not model_list:
            raise SchemaError(
                f"{source}: model_list={model_list!r:.80}; expected a non-empty list of deployments"
            )
        if not isinstance(section, Mapping):
            raise SchemaError(f"{source}: zerorouter: is {type(section).__name__}; expected a mapping")
        deployments = [_deployment(i, e) for i, e in enumerate(model_list)]
        return cls(
            deployments, dict(section), dict(settings) if isinstance(settings, Mapping) else {}, source
        )

    @classmethod
    def load(cls, path_or_obj: Any) -> LiteLLMConfig:
        """From a ``config.yaml`` / ``.json`` path, a parsed mapping, a ``model_list`` or a config."""
        if isinstance(path_or_obj, LiteLLMConfig):
            return path_or_obj
        if isinstance(path_or_obj, (str, Path)):
            f = Path(path_or_obj)
            import yaml

            try:
                obj = yaml.safe_load(f.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise SchemaError(f"{f}: LiteLLM config not found") from None
            except (UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
                why = {UnicodeDecodeError: "not UTF-8 text", RecursionError: "nests too deeply to parse"}
                raise SchemaError(f"{f}: {why.get(type(exc), 'not valid YAML')} ({exc})") from None
            cfg = cls.from_obj(obj, str(f))
            art = cfg.zerorouter.get("artifact")
            if isinstance(art, str) and not Path(art).is_absolute():  # relative to the config file
                cfg.zerorouter["artifact"] = str((f.parent / art).resolve())
            return cfg
        return cls.from_obj(path_or_obj)

    def resolve(self, profiles: Mapping[str, Any]) -> ConfigPool:
        """Map every deployment to a profile of ``profiles``; see :class:`ConfigPool`."""
        groups: dict[str, list[Deployment]] = {}
        skipped: list[SkippedDeployment] = []
        aliases: dict[str, str] = {}
        artifact = self.zerorouter.get("artifact") or "zerorouter-artifact.json.gz"
        for d in self.deployments:
            if d.zerorouter_profile is not None:
                name = d.zerorouter_profile if d.zerorouter_profile in profiles else None
                if name is None:
                    skipped.append(
                        SkippedDeployment(
                            d,
                            f"model_info.zerorouter_profile={d.zerorouter_profile!r} is not a profile of the artifact",
                            f"use one of {closest_matches(d.zerorouter_profile, profiles, cutoff=0.3)} or onboard it: "
                            + onboard_command(d, artifact),
                        )
                    )
                    continue
            else:
                name = resolve_profile_name([d.litellm_model, d.model_name], profiles)
            if name is None:
                skipped.append(
                    SkippedDeployment(
                        d,
                        "no profile of the artifact matches it",
                        "onboard it with `"
                        + onboard_command(d, artifact)
                        + f"`, then set zerorouter: artifact: {artifact} and model_info: "
                        f"zerorouter_profile: {d.model_name}",
                    )
                )
                continue
            if d.key_missing():
                skipped.append(
                    SkippedDeployment(
                        d,
                        f"its api_key is os.environ/{d.api_key_env}, which is not set",
                        f"set {d.api_key_env} in the environment (export {d.api_key_env}=...) and restart",
                    )
                )
                continue
            groups.setdefault(name, []).append(d)
            aliases.setdefault(d.model_name, name)
            aliases.setdefault(d.litellm_model, name)
        endpoints: dict[str, ModelEndpoint] = {}
        for name, ds in groups.items():
            first = ds[0].endpoint(name)
            if len(ds) == 1:
                endpoints[name] = first
                continue
            endpoints[name] = BalancedEndpoint(
                **{f: getattr(first, f) for f in first.__dataclass_fields__},
                deployments=tuple(d.endpoint(name) for d in ds),
                weights=tuple(d.weight for d in ds),
            )
        return ConfigPool(endpoints, aliases, skipped)


def load_litellm_config(path_or_obj: Any) -> LiteLLMConfig:
    """Parse a LiteLLM config: a path to ``config.yaml``, a mapping, or a ``model_list``."""
    return LiteLLMConfig.load(path_or_obj)


def resolve_profile_name(candidates: Sequence[str], profiles: Mapping[str, Any]) -> str | None:
    """The profile the first resolvable candidate names (``catalog.resolve``: dated names, provider
    prefixes, ``-latest`` aliases, LiteLLM strings), or ``None``."""
    for cand in candidates:
        try:
            return resolve(cand, profiles)
        except UnknownModelError:
            continue
    return None


def onboard_command(d: Deployment, artifact: str) -> str:
    """The ``zerorouter onboard`` command that adds deployment ``d`` to the pool."""
    parts = ["zerorouter onboard --live", f"--model {d.model_name}", f"--litellm-model {d.litellm_model}"]
    if d.api_base:
        parts.append(f"--api-base {d.api_base}")
    if d.api_key_env:
        parts.append(f"--api-key-env {d.api_key_env}")
    parts.append(f"--out {artifact}")
    if Path(artifact).is_file():
        parts.append(f"--artifact {artifact}")
    return " ".join(parts)


# ---------------------------------------------------------------------------- router construction
_SECTION_KWARGS = ("store", "reference_model", "latency_sla_s", "cooldown_after", "cooldown_s")


def config_policies(cfg: LiteLLMConfig, reference: str | None = None) -> dict[str, Any]:
    """The named policies of the ``zerorouter: policies:`` section, as unfitted :class:`Policy` objects.

    Each entry is ``NAME: {budget_usd_per_1k: X}`` (average USD per 1,000 calls), or
    ``NAME: {quality_target: Q[, reference: MODEL]}``: keep the fraction ``Q`` in (0, 1] of the
    reference model's predicted quality (``reference`` default: the given one, the router's), or
    ``NAME: {lam: L}``; ``mu`` (latency weight) may be added to any.
    """
    from zerorouter_integrations.policy import Policy

    raw = cfg.zerorouter.get("policies") or {}
    if not isinstance(raw, Mapping):
        raise SchemaError(
            f"{cfg.source}: zerorouter.policies is {type(raw).__name__}; expected NAME: {{...}}"
        )
    out: dict[str, Any] = {}
    for name, spec in raw.items():
        spec = dict(spec) if isinstance(spec, Mapping) else {}
        mu = float(spec.pop("mu", 0.0))
        where = f"{cfg.source}: zerorouter.policies.{name}={raw[name]!r}"
        if set(spec) == {"budget_usd_per_1k"}:
            out[str(name)] = Policy.for_budget(float(spec["budget_usd_per_1k"]), mu=mu)
        elif set(spec) in ({"quality_target"}, {"quality_target", "reference"}):
            ref = spec.get("reference") or reference
            try:
                out[str(name)] = Policy.for_quality_target(
                    float(spec["quality_target"]), reference=ref, mu=mu
                )
            except ValueError as exc:
                raise SchemaError(f"{where}: {exc}") from None
        elif set(spec) == {"lam"}:
            out[str(name)] = Policy(lam=float(spec["lam"]), mu=mu)
        else:
            raise SchemaError(
                f"{where}; expected budget_usd_per_1k, or quality_target (and optionally reference), "
                "or lam (each optionally with mu)"
            )
    return out


def router_parts(config: Any, **kwargs: Any) -> tuple[Any, dict[str, Any], ConfigPool, LiteLLMConfig]:
    """What :meth:`ZeroRouter.from_litellm_config` builds the router from.

    Returns ``(artifact, router_kwargs, pool, config)``: the artifact (``artifact=`` if given, else
    the config's ``zerorouter.artifact``, else the shipped default; copied, then the deployments'
    ``model_info`` prices and context windows applied to its profiles), the keyword arguments of
    :class:`ZeroRouter` (``endpoints`` and ``models`` from the config, the section's ``store``,
    ``reference_model``, ... unless ``kwargs`` give them), and the resolved :class:`ConfigPool`.

    Raises
    ------
    SchemaError
        When no deployment can be routed (the message lists each one and what to do).
    """
    import copy

    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT, RouterArtifact
    from zerorouter_integrations.profiles import CostModel

    cfg = LiteLLMConfig.load(config)
    artifact = kwargs.pop("artifact", None)
    if artifact is None:
        artifact = RouterArtifact.load(cfg.zerorouter.get("artifact") or DEFAULT_ARTIFACT)
    elif isinstance(artifact, (str, Path)):
        artifact = RouterArtifact.load(artifact)
    else:
        artifact = copy.deepcopy(artifact)
    profiles = artifact.predictor.profiles_
    pool = cfg.resolve(profiles)
    if not pool.endpoints:
        raise SchemaError(f"{cfg.source}: no deployment can be routed:\n{pool.report()}")
    for d in cfg.deployments:
        name = pool.aliases.get(d.model_name)
        if name is None:
            continue
        p = profiles[name]
        if d.input_cost_per_token is not None or d.output_cost_per_token is not None:
            pin = (
                d.input_cost_per_token if d.input_cost_per_token is not None else p.input_usd_per_token or 0.0
            )
            pout = (
                d.output_cost_per_token
                if d.output_cost_per_token is not None
                else p.output_usd_per_token or 0.0
            )
            p.input_usd_per_token, p.output_usd_per_token = pin, pout
            p.cost = CostModel.from_prices(pin, pout, p.expected_output_tokens or 256.0)
        window = d.max_input_tokens or d.max_tokens
        if window:
            p.capabilities = {**p.capabilities, "context_window": int(window)}
    for key in _SECTION_KWARGS:
        if key in cfg.zerorouter and key not in kwargs:
            kwargs[key] = cfg.zerorouter[key]
    kwargs.setdefault("endpoints", pool.endpoints)
    kwargs.setdefault("models", list(pool.endpoints))
    return artifact, kwargs, pool, cfg
