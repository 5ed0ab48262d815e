"""The router artifact: latent space + model profiles + anchor set, as one gzipped JSON file.

JSON rather than pickle: the shipped default is data, not code, so loading it never executes
anything, and it diffs and inspects with ordinary tools. Spaces are serialized from their constructor
parameters plus their learned (``*_``) attributes.
"""

from __future__ import annotations

import gzip
import inspect
import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations._io import atomic_write_bytes
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.jsonfast import loads_finite
from zerorouter_integrations.latent.base import Ability, LatentSpace
from zerorouter_integrations.predictor import QualityPredictor
from zerorouter_integrations.profiles import ModelProfile, ProfileDict

__all__ = [
    "DEFAULT_ARTIFACT",
    "FORMAT_VERSION",
    "AnchorSet",
    "RouterArtifact",
    "check_artifact",
    "space_from_dict",
    "space_to_dict",
]

FORMAT_VERSION = 1
#: Path of the artifact shipped inside the package (built by ``scripts/build_default_artifact.py``).
DEFAULT_ARTIFACT = Path(__file__).resolve().parent / "artifacts" / "default.json.gz"


_SPACE_MODULES = {
    "irt": ("zerorouter_integrations.latent.irt", "IRTSpace"),
    "kmeans": ("zerorouter_integrations.latent.clusters", "KMeansSpace"),
    "learned_map": ("zerorouter_integrations.latent.clusters", "LearnedMapSpace"),
    "knn": ("zerorouter_integrations.latent.reference", "KNNSpace"),
    "logreg": ("zerorouter_integrations.latent.reference", "LogisticSpace"),
}


def _space_class(kind: str) -> type:
    """The space class of ``kind``, importing only its module (loading the default stays fast)."""
    import importlib

    module, name = _SPACE_MODULES[kind]
    return getattr(importlib.import_module(module), name)


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, Ability):
        return {"__ability__": value.to_dict()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    raise TypeError(f"cannot serialize a {type(value).__name__} in a router artifact")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value.get("dtype", "float64"))
        if "__ability__" in value:
            return Ability.from_dict(value["__ability__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


#: Learned attributes needed only while fitting (the training prompts' coordinates): left out of artifacts.
_NOT_SHIPPED = frozenset({"train_Z_"})


def space_to_dict(space: LatentSpace) -> dict[str, Any]:
    """Constructor parameters + learned attributes of a fitted space, JSON-safe."""
    params = {
        name: getattr(space, name)
        for name in inspect.signature(type(space).__init__).parameters
        if name != "self" and hasattr(space, name)
    }
    learned = {
        k: v
        for k, v in vars(space).items()
        if k.endswith("_") and not k.startswith("_") and k not in _NOT_SHIPPED
    }
    try:
        return {"kind": space.kind, "params": _encode(params), "learned": _encode(learned)}
    except TypeError as exc:
        raise TypeError(f"{type(space).__name__} cannot be saved as JSON: {exc}") from exc


def space_from_dict(data: dict[str, Any]) -> LatentSpace:
    kind = data.get("kind")
    if kind not in _SPACE_MODULES:
        raise SchemaError(
            f"artifact space kind {kind!r} is unknown; expected one of {sorted(_SPACE_MODULES)}"
        )
    space = _space_class(kind)(**_decode(data.get("params", {})))
    for key, value in _decode(data.get("learned", {})).items():
        setattr(space, key, value)
    return space


def _find_nonfinite(obj: Any, path: str = "$") -> str | None:
    """JSON path of the first NaN/inf float in ``obj`` (or ``None``)."""
    if isinstance(obj, float):
        return None if np.isfinite(obj) else path
    if isinstance(obj, dict):
        for k, v in obj.items():
            found = _find_nonfinite(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            found = _find_nonfinite(v, f"{path}[{i}]")
            if found:
                return found
    return None


@dataclass
class AnchorSet:
    """The router's own anchor prompts: texts, reference answers and latent coordinates."""

    prompt_ids: list[str]
    texts: list[str]
    references: list[str | None]
    tasks: list[str]
    Z: np.ndarray

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_ids": self.prompt_ids,
            "texts": self.texts,
            "references": self.references,
            "tasks": self.tasks,
            "Z": np.asarray(self.Z).tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AnchorSet:
        return cls(
            list(d["prompt_ids"]),
            list(d["texts"]),
            list(d["references"]),
            list(d["tasks"]),
            np.asarray(d["Z"], dtype=float),
        )


@dataclass
class RouterArtifact:
    """Everything a :class:`~zerorouter_integrations.router.ZeroRouter` needs besides I/O."""

    predictor: QualityPredictor
    anchors: AnchorSet | None = None
    encoder: dict[str, Any] = field(default_factory=dict)  # QueryEncoder settings (max_seq_length, …)
    features: dict[str, Any] = field(default_factory=dict)  # PromptFeaturizer settings
    calibration_Z: np.ndarray | None = None  # latent coordinates of a calibration prompt set
    calibration_tokens: np.ndarray | None = None
    build: dict[str, Any] = field(default_factory=dict)  # provenance: script, tables, split, date

    def to_dict(self) -> dict[str, Any]:
        pred = self.predictor
        return {
            "format": FORMAT_VERSION,
            "space": space_to_dict(pred.space_),
            "profiles": [p.to_dict() for p in pred.profiles_.values()],
            "anchors": self.anchors.to_dict() if self.anchors is not None else None,
            "encoder": self.encoder,
            "features": self.features,
            "calibration_Z": None if self.calibration_Z is None else np.asarray(self.calibration_Z).tolist(),
            "calibration_tokens": None
            if self.calibration_tokens is None
            else np.asarray(self.calibration_tokens).tolist(),
            "build": self.build,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RouterArtifact:
        if not isinstance(d, dict) or d.get("format") != FORMAT_VERSION:
            raise SchemaError(
                f"router artifact format {d.get('format') if isinstance(d, dict) else d!r} is not "
                f"supported; expected {FORMAT_VERSION}"
            )
        space = space_from_dict(d["space"])
        pred = QualityPredictor(space)
        pred.space_ = space
        pred.profiles_ = ProfileDict((p["name"], ModelProfile.from_dict(p)) for p in d["profiles"])
        score_type = (d.get("build") or {}).get("score_type")
        if isinstance(score_type, str):  # what the outcomes it was fit on are (fit_artifact records it)
            pred.score_type_ = score_type
        return cls(
            predictor=pred,
            anchors=AnchorSet.from_dict(d["anchors"]) if d.get("anchors") else None,
            encoder=dict(d.get("encoder") or {}),
            features=dict(d.get("features") or {}),
            calibration_Z=None
            if d.get("calibration_Z") is None
            else np.asarray(d["calibration_Z"], dtype=float),
            calibration_tokens=None
            if d.get("calibration_tokens") is None
            else np.asarray(d["calibration_tokens"], dtype=float),
            build=dict(d.get("build") or {}),
        )

    def save(self, path: str | Path) -> Path:
        """Write gzipped JSON atomically (serialization happens first: a failure writes nothing)."""
        payload = self.to_dict()
        bad = _find_nonfinite(payload)
        if bad is not None:
            raise ValueError(f"router artifact holds a non-finite number at {bad}; nothing was written")
        data = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        return atomic_write_bytes(Path(path), gzip.compress(data, compresslevel=9, mtime=0))

    @classmethod
    def load(cls, path: str | Path) -> RouterArtifact:
        """Read and validate an artifact (see :func:`check_artifact`); any defect is a :class:`SchemaError`
        naming the file and the field."""
        f = Path(path)
        try:
            raw = f.read_bytes()
        except FileNotFoundError:
            raise SchemaError(f"{f}: router artifact not found") from None
        except OSError as exc:
            raise SchemaError(f"{f}: router artifact cannot be read: {exc}") from None
        nonfinite: list[str] = []

        def constant(name: str) -> float:
            nonfinite.append(name)
            return float("nan")

        try:
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            try:
                data = loads_finite(text)  # orjson: ~5x faster on the float arrays
            except ValueError:  # malformed or non-finite: the standard parser says where
                data = json.loads(text, parse_constant=constant)
        except (OSError, EOFError, zlib.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SchemaError(
                f"{f}: not a router artifact (gzipped JSON expected; truncated or corrupt?): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if nonfinite:
            at = _find_nonfinite(data) or "$"
            raise SchemaError(f"{f}: field {at} is {nonfinite[0]}; every number must be finite")
        check_artifact(data, f)
        try:
            return cls.from_dict(data)
        except SchemaError as exc:
            raise SchemaError(f"{f}: {exc}") from exc
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise SchemaError(f"{f}: invalid router artifact: {type(exc).__name__}: {exc}") from exc


def _fail(where: Path | str, field: str, problem: str) -> SchemaError:
    return SchemaError(f"{where}: field {field} {problem} (router artifact format {FORMAT_VERSION})")


def _check_number(where: Path | str, field: str, value: Any, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, field, f"is {value!r}; expected a number")
    if not math.isfinite(value) or value < 0:
        raise _fail(where, field, f"is {value!r}; expected a finite number >= 0")


def check_artifact(d: Any, where: Path | str = "<artifact>") -> None:
    """Validate a decoded artifact against schema version :data:`FORMAT_VERSION`.

    Checks the format version, required keys and their types, unique non-empty model names,
    finite non-negative prices, costs and latency priors, and consistent anchor lists; raises
    :class:`SchemaError` naming ``where`` and the field (``profiles[3].cost.intercept_usd``).
    """
    if not isinstance(d, dict):
        raise _fail(where, "$", f"is a {type(d).__name__}; expected a JSON object")
    if d.get("format") != FORMAT_VERSION:
        raise _fail(where, "format", f"is {d.get('format')!r}; this version reads format {FORMAT_VERSION}")
    space = d.get("space")
    if not isinstance(space, dict):
        raise _fail(where, "space", "is missing or not an object")
    if space.get("kind") not in _SPACE_MODULES:
        raise _fail(
            where, "space.kind", f"is {space.get('kind')!r}; expected one of {sorted(_SPACE_MODULES)}"
        )
    for key in ("params", "learned"):
        if not isinstance(space.get(key, {}), dict):
            raise _fail(where, f"space.{key}", "is not an object")
    profiles = d.get("profiles")
    if not isinstance(profiles, list) or not profiles:
        raise _fail(where, "profiles", "is missing or empty; expected a list of model profiles")
    seen: dict[str, int] = {}
    for i, p in enumerate(profiles):
        at = f"profiles[{i}]"
        if not isinstance(p, dict):
            raise _fail(where, at, "is not an object")
        name = p.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(where, f"{at}.name", f"is {name!r}; expected a non-empty string")
        if name in seen:
            raise _fail(where, f"{at}.name", f"repeats {name!r} (already profiles[{seen[name]}].name)")
        seen[name] = i
        if not isinstance(p.get("ability"), dict):
            raise _fail(where, f"{at}.ability", "is missing or not an object")
        cost = p.get("cost", {})
        if not isinstance(cost, dict):
            raise _fail(where, f"{at}.cost", "is not an object")
        for key in (
            "intercept_usd",
            "per_input_token_usd",
            "n_obs",
            "knee_input_tokens",
            "tail_per_input_token_usd",
        ):
            _check_number(where, f"{at}.cost.{key}", cost.get(key))
        for key in ("input_usd_per_token", "output_usd_per_token", "expected_output_tokens"):
            _check_number(where, f"{at}.{key}", p.get(key))
        prior = p.get("latency_prior") or {}
        if not isinstance(prior, dict):
            raise _fail(where, f"{at}.latency_prior", "is not an object")
        for key, value in prior.items():
            _check_number(where, f"{at}.latency_prior.{key}", value, optional=False)
        for key in ("capabilities", "dispatch"):
            if not isinstance(p.get(key) or {}, dict):
                raise _fail(where, f"{at}.{key}", "is not an object")
    anchors = d.get("anchors")
    if anchors is not None:
        if not isinstance(anchors, dict):
            raise _fail(where, "anchors", "is not an object")
        lengths = {}
        for key in ("prompt_ids", "texts", "references", "tasks", "Z"):
            if not isinstance(anchors.get(key), list):
                raise _fail(where, f"anchors.{key}", "is missing or not a list")
            lengths[key] = len(anchors[key])
        if len(set(lengths.values())) != 1:
            raise _fail(where, "anchors", f"has lists of different lengths {lengths}")
    for key in ("encoder", "features", "build"):
        if not isinstance(d.get(key) or {}, dict):
            raise _fail(where, key, "is not an object")
    for key in ("calibration_Z", "calibration_tokens"):
        if d.get(key) is not None and not isinstance(d[key], list):
            raise _fail(where, key, "is not a list")
