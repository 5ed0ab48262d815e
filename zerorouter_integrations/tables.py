"""Routing tables: prompts × models × score, with cost, loaded and validated.

A routing table is a folder with three files (the schema of ``shared/data``, which users can also
build from their own logs):

* ``prompts.parquet``: ``prompt_id`` (str, unique), ``task`` (str), ``prompt`` (str), ``reference`` (str or null)
* ``outcomes.parquet``: ``prompt_id``, ``model``, ``score`` (float in [0, 1], never null), ``cost_usd``
  (float ≥ 0 or null), ``input_tokens`` / ``output_tokens`` (nullable ints)
* ``models.csv``: ``model`` (unique), ``input_usd_per_1m`` / ``output_usd_per_1m`` (≥ 0 or empty = unknown),
  ``litellm_model`` (optional)

Optional ``prompt_extras.parquet`` / ``outcome_extras.parquet`` are loaded on demand.

Tables are sparse: not every model is scored on every prompt and costs may be null. Matrices built
from a table hold NaN where there is no observation.

Splits (:class:`Split`) are what the evaluation contract exchanges as ``SPLIT.json``:
``{"test_prompt_ids": [...], "new_models": [...]}``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zerorouter_integrations.errors import SchemaError, UnknownModelError
from zerorouter_integrations.extras import missing_extra
from zerorouter_integrations.stable_hash import stable_uniform

try:
    import pandas as pd
except ImportError as exc:  # the base install: Parquet routing tables come with an extra
    raise missing_extra("tables", "routing tables (zerorouter_integrations.tables)", "pandas") from exc

__all__ = [
    "SCORE_TYPES",
    "RoutingTable",
    "Split",
    "infer_score_type",
    "load_table",
    "question_groups",
    "split_by_model",
    "split_by_prompt",
]

_PROMPT_COLUMNS = ("prompt_id", "task", "prompt")
_OUTCOME_COLUMNS = ("prompt_id", "model", "score")
_MODEL_COLUMNS = ("model",)
_PRICE_COLUMNS = ("input_usd_per_1m", "output_usd_per_1m")


def _first_bad_row(mask: np.ndarray | pd.Series) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def _require_columns(df: pd.DataFrame, required: Iterable[str], file: Path) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(
            f"{file}: missing column(s) {missing}; expected at least {list(required)}, found {list(df.columns)}"
        )


def _check_unique(df: pd.DataFrame, keys: list[str], file: Path) -> None:
    dup = df.duplicated(subset=keys, keep="first").to_numpy()
    if dup.any():
        row = _first_bad_row(dup)
        value = tuple(df.iloc[row][k] for k in keys)
        raise SchemaError(
            f"{file}: duplicate key {keys}={value if len(value) > 1 else value[0]!r} at row {row}; "
            "each key must appear once"
        )


def _check_strings(df: pd.DataFrame, column: str, file: Path, *, allow_null: bool = False) -> None:
    values = df[column]
    null = values.isna().to_numpy()
    if not allow_null and null.any():
        row = _first_bad_row(null)
        raise SchemaError(f"{file}: column {column!r} is null at row {row}; expected a string")
    bad = ~null & ~values.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if bad.any():
        row = _first_bad_row(bad)
        raise SchemaError(
            f"{file}: column {column!r} row {row} holds {values.iloc[row]!r} "
            f"({type(values.iloc[row]).__name__}); expected a string"
        )


def _numeric(df: pd.DataFrame, column: str, file: Path) -> np.ndarray:
    """Column as float64; empty cells become NaN, anything non-numeric is an error."""
    raw = df[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    unparsable = np.isnan(values) & ~raw.isna().to_numpy()
    # A literal "nan"/"NaN" string or a float NaN that pandas did not treat as missing.
    if raw.dtype == object:
        unparsable |= raw.map(
            lambda v: isinstance(v, str) and v.strip().lower() in {"nan", "inf", "-inf"}
        ).to_numpy(dtype=bool)
    if unparsable.any():
        row = _first_bad_row(unparsable)
        raise SchemaError(
            f"{file}: column {column!r} row {row} holds {raw.iloc[row]!r}; expected a number (or an empty cell)"
        )
    return values


def _optional_strings(values: pd.Series) -> pd.Series:
    """Object series of str, with ``None`` (never NaN) where the cell is empty."""
    return pd.Series(
        [
            None if (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA) else str(v)
            for v in values
        ],
        dtype=object,
    )


def _check_range(
    values: np.ndarray, column: str, file: Path, *, lo: float, hi: float, allow_nan: bool
) -> None:
    nan = np.isnan(values)
    if not allow_nan and nan.any():
        row = _first_bad_row(nan)
        raise SchemaError(
            f"{file}: column {column!r} is null/NaN at row {row}; expected a number in [{lo}, {hi}]"
        )
    bad = ~nan & ((values < lo) | (values > hi) | ~np.isfinite(values))
    if bad.any():
        row = _first_bad_row(bad)
        raise SchemaError(
            f"{file}: column {column!r} row {row} holds {values[row]!r}; expected a number in [{lo}, {hi}]"
        )


#: What a table's scores are, as :func:`infer_score_type` names them.
SCORE_TYPES = {
    "binary": "0/1 correctness",
    "partial": "mostly 0/1 with partial credit (F1, fractional grading)",
    "continuous": "continuous in [0, 1]: judge scores or win probabilities against a reference",
}


def infer_score_type(scores: Iterable[float]) -> str:
    """The kind of a set of scores in [0, 1] (a key of :data:`SCORE_TYPES`).

    ``"binary"`` when every score is 0 or 1; ``"partial"`` when at least half are 0 or 1 and the
    rest fractional (partial credit); ``"continuous"`` otherwise (e.g. a judge's win probability).
    Predictions are always on the scores' own scale: the expected score in [0, 1].
    """
    y = np.asarray(list(scores) if not isinstance(scores, np.ndarray) else scores, dtype=float)
    y = y[~np.isnan(y)]
    if y.size == 0:
        raise ValueError("no scores to infer a score type from")
    exact = np.isin(y, (0.0, 1.0)).mean()
    if exact == 1.0:
        return "binary"
    return "partial" if exact >= 0.5 else "continuous"


@dataclass
class RoutingTable:
    """A validated routing table (see the module docstring for the schema).

    Attributes
    ----------
    prompts : pandas.DataFrame
        One row per prompt, indexed 0..n-1, columns ``prompt_id``, ``task``, ``prompt``, ``reference``.
    outcomes : pandas.DataFrame
        One row per scored (prompt, model) pair.
    models : pandas.DataFrame
        One row per model, with prices (NaN when unknown).
    name : str
        The folder name (or a given label).
    path : pathlib.Path or None
        Where the table was loaded from.
    """

    prompts: pd.DataFrame
    outcomes: pd.DataFrame
    models: pd.DataFrame
    name: str = "table"
    path: Path | None = None
    _extras: dict[str, pd.DataFrame | None] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ loading / validation
    @classmethod
    def load(cls, path: str | Path, *, validate: bool = True) -> RoutingTable:
        """Load ``prompts.parquet``, ``outcomes.parquet`` and ``models.csv`` from a folder.

        Raises
        ------
        SchemaError
            When a file is missing or malformed; the message names the file, the column and the first bad row.
        """
        root = Path(path)
        if not root.is_dir():
            raise SchemaError(
                f"{root}: not a folder; expected a routing-table folder with prompts.parquet, "
                "outcomes.parquet and models.csv"
            )
        files = {
            "prompts": root / "prompts.parquet",
            "outcomes": root / "outcomes.parquet",
            "models": root / "models.csv",
        }
        for label, f in files.items():
            if not f.is_file():
                raise SchemaError(f"{f}: file not found; a routing table needs {label} in {f.name}")
        try:
            prompts = pd.read_parquet(files["prompts"])
        except Exception as exc:  # pragma: no cover - pyarrow's message is the useful part
            raise SchemaError(f"{files['prompts']}: cannot read as parquet: {exc}") from exc
        try:
            outcomes = pd.read_parquet(files["outcomes"])
        except Exception as exc:  # pragma: no cover
            raise SchemaError(f"{files['outcomes']}: cannot read as parquet: {exc}") from exc
        try:
            models = pd.read_csv(
                files["models"],
                dtype={"model": str, "litellm_model": str},
                keep_default_na=False,
                na_values=[""],
            )
        except Exception as exc:  # pragma: no cover
            raise SchemaError(f"{files['models']}: cannot read as CSV: {exc}") from exc
        table = cls(prompts=prompts, outcomes=outcomes, models=models, name=root.name, path=root)
        if validate:
            table = table._validated(files)
        return table

    @classmethod
    def from_frames(
        cls,
        prompts: pd.DataFrame,
        outcomes: pd.DataFrame,
        models: pd.DataFrame | None = None,
        *,
        name: str = "table",
    ) -> RoutingTable:
        """Build and validate a table from in-memory frames (``models`` defaults to the outcome models, unpriced)."""
        if models is None:
            names = sorted(pd.unique(outcomes["model"].astype(str)))
            models = pd.DataFrame({"model": names, "input_usd_per_1m": np.nan, "output_usd_per_1m": np.nan})
        files = {"prompts": Path("<prompts>"), "outcomes": Path("<outcomes>"), "models": Path("<models>")}
        return cls(prompts=prompts, outcomes=outcomes, models=models, name=name)._validated(files)

    def _validated(self, files: dict[str, Path]) -> RoutingTable:
        p, o, m = self.prompts, self.outcomes, self.models
        _require_columns(p, _PROMPT_COLUMNS, files["prompts"])
        _require_columns(o, _OUTCOME_COLUMNS, files["outcomes"])
        _require_columns(m, _MODEL_COLUMNS, files["models"])
        for col in _PROMPT_COLUMNS:
            _check_strings(p, col, files["prompts"])
        if "reference" in p.columns:
            _check_strings(p, "reference", files["prompts"], allow_null=True)
        _check_unique(p, ["prompt_id"], files["prompts"])
        _check_strings(o, "prompt_id", files["outcomes"])
        _check_strings(o, "model", files["outcomes"])
        _check_unique(o, ["prompt_id", "model"], files["outcomes"])
        _check_strings(m, "model", files["models"])
        _check_unique(m, ["model"], files["models"])

        score = _numeric(o, "score", files["outcomes"])
        _check_range(score, "score", files["outcomes"], lo=0.0, hi=1.0, allow_nan=False)
        cost = (
            _numeric(o, "cost_usd", files["outcomes"]) if "cost_usd" in o.columns else np.full(len(o), np.nan)
        )
        _check_range(cost, "cost_usd", files["outcomes"], lo=0.0, hi=math.inf, allow_nan=True)
        for col in ("input_tokens", "output_tokens"):
            if col in o.columns:
                _check_range(
                    _numeric(o, col, files["outcomes"]),
                    col,
                    files["outcomes"],
                    lo=0,
                    hi=math.inf,
                    allow_nan=True,
                )
        prices = {}
        for col in _PRICE_COLUMNS:
            prices[col] = _numeric(m, col, files["models"]) if col in m.columns else np.full(len(m), np.nan)
            _check_range(prices[col], col, files["models"], lo=0.0, hi=math.inf, allow_nan=True)

        known_prompts = pd.Index(p["prompt_id"])
        unknown = ~o["prompt_id"].isin(known_prompts).to_numpy()
        if unknown.any():
            row = _first_bad_row(unknown)
            raise SchemaError(
                f"{files['outcomes']}: column 'prompt_id' row {row} holds {o['prompt_id'].iloc[row]!r}, "
                f"which is not in {files['prompts'].name}"
            )
        unknown = ~o["model"].isin(pd.Index(m["model"])).to_numpy()
        if unknown.any():
            row = _first_bad_row(unknown)
            raise SchemaError(
                f"{files['outcomes']}: column 'model' row {row} holds {o['model'].iloc[row]!r}, "
                f"which is not in {files['models'].name}"
            )

        prompts = pd.DataFrame(
            {
                "prompt_id": p["prompt_id"].astype(str).to_numpy(),
                "task": p["task"].astype(str).to_numpy(),
                "prompt": p["prompt"].astype(str).to_numpy(),
                "reference": _optional_strings(p["reference"])
                if "reference" in p.columns
                else np.full(len(p), None, dtype=object),
            }
        )
        outcomes = pd.DataFrame(
            {
                "prompt_id": o["prompt_id"].astype(str).to_numpy(),
                "model": o["model"].astype(str).to_numpy(),
                "score": score,
                "cost_usd": cost,
                "input_tokens": _numeric(o, "input_tokens", files["outcomes"])
                if "input_tokens" in o.columns
                else np.full(len(o), np.nan),
                "output_tokens": _numeric(o, "output_tokens", files["outcomes"])
                if "output_tokens" in o.columns
                else np.full(len(o), np.nan),
            }
        )
        models = pd.DataFrame(
            {
                "model": m["model"].astype(str).to_numpy(),
                "input_usd_per_1m": prices["input_usd_per_1m"],
                "output_usd_per_1m": prices["output_usd_per_1m"],
                "litellm_model": _optional_strings(m["litellm_model"])
                if "litellm_model" in m.columns
                else np.full(len(m), None, dtype=object),
            }
        )
        return RoutingTable(prompts=prompts, outcomes=outcomes, models=models, name=self.name, path=self.path)

    # ------------------------------------------------------------------ accessors
    @property
    def prompt_ids(self) -> list[str]:
        return self.prompts["prompt_id"].tolist()

    @property
    def model_names(self) -> list[str]:
        """Models that have at least one outcome, in ``models.csv`` order."""
        present = set(self.outcomes["model"].unique())
        return [m for m in self.models["model"] if m in present]

    @property
    def score_type(self) -> str:
        """What the scores are: ``"binary"``, ``"partial"`` or ``"continuous"`` (:func:`infer_score_type`)."""
        return infer_score_type(self.outcomes["score"].to_numpy())

    def score_types_by_task(self) -> dict[str, str]:
        """:attr:`score_type` of each task's outcomes (a table may mix, e.g. MMLU 0/1 with MT-Bench judge scores)."""
        task = self.outcomes["prompt_id"].map(dict(zip(self.prompts["prompt_id"], self.prompts["task"])))
        return {
            str(t): infer_score_type(g.to_numpy())
            for t, g in self.outcomes["score"].groupby(task.to_numpy(), sort=True)
        }

    def texts(self, prompt_ids: Sequence[str] | None = None) -> list[str]:
        """Prompt texts, in the order of ``prompt_ids`` (default: table order)."""
        if prompt_ids is None:
            return self.prompts["prompt"].tolist()
        idx = self._prompt_index(prompt_ids)
        return self.prompts["prompt"].to_numpy()[idx].tolist()

    def _prompt_index(self, prompt_ids: Sequence[str]) -> np.ndarray:
        pos = pd.Index(self.prompts["prompt_id"]).get_indexer(list(prompt_ids))
        if (pos < 0).any():
            bad = list(prompt_ids)[int(np.flatnonzero(pos < 0)[0])]
            raise KeyError(f"prompt_id {bad!r} is not in table {self.name!r}")
        return pos

    def check_models(self, models: Iterable[str]) -> list[str]:
        """Return ``models`` as a list, raising :class:`UnknownModelError` for a name the table lacks."""
        known = set(self.models["model"])
        out = list(models)
        for name in out:
            if name not in known:
                raise UnknownModelError(name, sorted(known))
        return out

    def matrix(
        self, column: str, prompt_ids: Sequence[str] | None = None, models: Sequence[str] | None = None
    ) -> np.ndarray:
        """A (n_prompts × n_models) float matrix of an outcome column, NaN where unobserved."""
        prompt_ids = self.prompt_ids if prompt_ids is None else list(prompt_ids)
        models = self.model_names if models is None else self.check_models(models)
        o = self.outcomes
        rows = pd.Index(prompt_ids).get_indexer(o["prompt_id"])
        cols = pd.Index(models).get_indexer(o["model"])
        keep = (rows >= 0) & (cols >= 0)
        out = np.full((len(prompt_ids), len(models)), np.nan)
        out[rows[keep], cols[keep]] = o[column].to_numpy(dtype=float)[keep]
        return out

    def scores(
        self, prompt_ids: Sequence[str] | None = None, models: Sequence[str] | None = None
    ) -> np.ndarray:
        return self.matrix("score", prompt_ids, models)

    def costs(
        self, prompt_ids: Sequence[str] | None = None, models: Sequence[str] | None = None
    ) -> np.ndarray:
        return self.matrix("cost_usd", prompt_ids, models)

    def prices(self, model: str) -> tuple[float | None, float | None]:
        """(input, output) USD per token, ``None`` when unknown."""
        row = self.models.loc[self.models["model"] == model]
        if row.empty:
            raise UnknownModelError(model, self.models["model"].tolist())
        pin, pout = row.iloc[0]["input_usd_per_1m"], row.iloc[0]["output_usd_per_1m"]
        return (None if np.isnan(pin) else pin / 1e6, None if np.isnan(pout) else pout / 1e6)

    def extras(self, kind: str) -> pd.DataFrame | None:
        """``prompt_extras`` or ``outcome_extras`` when the folder has it, else ``None`` (cached)."""
        if kind not in ("prompt_extras", "outcome_extras"):
            raise ValueError(f"kind must be 'prompt_extras' or 'outcome_extras', got {kind!r}")
        if kind not in self._extras:
            f = self.path / f"{kind}.parquet" if self.path is not None else None
            self._extras[kind] = pd.read_parquet(f) if f is not None and f.is_file() else None
        return self._extras[kind]

    def subset(
        self,
        *,
        prompt_ids: Sequence[str] | None = None,
        models: Sequence[str] | None = None,
        exclude_prompt_ids: Iterable[str] = (),
        exclude_models: Iterable[str] = (),
    ) -> RoutingTable:
        """A table restricted to some prompts / models (outcomes filtered accordingly)."""
        p, o, m = self.prompts, self.outcomes, self.models
        if prompt_ids is not None:
            p = p[p["prompt_id"].isin(set(prompt_ids))]
        ex_p = set(exclude_prompt_ids)
        if ex_p:
            p = p[~p["prompt_id"].isin(ex_p)]
        if models is not None:
            m = m[m["model"].isin(set(self.check_models(models)))]
        ex_m = set(exclude_models)
        if ex_m:
            m = m[~m["model"].isin(ex_m)]
        o = o[o["prompt_id"].isin(set(p["prompt_id"])) & o["model"].isin(set(m["model"]))]
        out = RoutingTable(
            prompts=p.reset_index(drop=True),
            outcomes=o.reset_index(drop=True),
            models=m.reset_index(drop=True),
            name=self.name,
            path=self.path,
        )
        out._extras = self._extras
        return out

    def save(self, path: str | Path) -> Path:
        """Write the three schema files into ``path`` (created). Each file is written atomically."""
        from zerorouter_integrations._io import atomic_write_bytes

        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        import io

        for name, df in (("prompts.parquet", self.prompts), ("outcomes.parquet", self.outcomes)):
            buf = io.BytesIO()
            df.to_parquet(buf, index=False)
            atomic_write_bytes(root / name, buf.getvalue())
        atomic_write_bytes(root / "models.csv", self.models.to_csv(index=False).encode())
        return root

    def __repr__(self) -> str:
        return (
            f"RoutingTable(name={self.name!r}, prompts={len(self.prompts)}, models={len(self.model_names)}, "
            f"outcomes={len(self.outcomes)})"
        )


def load_table(path: str | Path) -> RoutingTable:
    """Load and validate a routing-table folder (see :meth:`RoutingTable.load`)."""
    return RoutingTable.load(path)


# ---------------------------------------------------------------------- splits
@dataclass
class Split:
    """Held-out prompts and held-out ("new") models: the ``SPLIT.json`` of the evaluation contract."""

    test_prompt_ids: list[str] = field(default_factory=list)
    new_models: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"test_prompt_ids": list(self.test_prompt_ids), "new_models": list(self.new_models)}

    @classmethod
    def from_dict(cls, data: dict) -> Split:
        if not isinstance(data, dict):
            raise SchemaError(
                f"split must be a JSON object with 'test_prompt_ids' and 'new_models', got "
                f"{type(data).__name__}"
            )
        unknown = set(data) - {"test_prompt_ids", "new_models"}
        if unknown:
            raise SchemaError(
                f"split has unknown key(s) {sorted(unknown)}; expected 'test_prompt_ids' and 'new_models'"
            )
        out = {}
        for key in ("test_prompt_ids", "new_models"):
            value = data.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SchemaError(f"split key {key!r} must be a list of strings, got {value!r:.80}")
            out[key] = value
        return cls(**out)

    @classmethod
    def load(cls, path: str | Path) -> Split:
        f = Path(path)
        if not f.is_file():
            raise SchemaError(f"{f}: split file not found")
        try:
            data = json.loads(f.read_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise SchemaError(
                f'{f}: not valid JSON ({exc}); expected {{"test_prompt_ids": [...], "new_models": [...]}} in UTF-8'
            ) from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        from zerorouter_integrations._io import atomic_write_bytes

        atomic_write_bytes(Path(path), json.dumps(self.to_dict(), indent=1).encode())

    def validate_against(self, table: RoutingTable) -> None:
        """Raise :class:`SchemaError` / :class:`UnknownModelError` for ids or models the table lacks."""
        known = set(table.prompt_ids)
        for pid in self.test_prompt_ids:
            if pid not in known:
                raise SchemaError(f"split: test prompt id {pid!r} is not in table {table.name!r}")
        table.check_models(self.new_models)


_WS = re.compile(r"\s+")


def question_groups(table: RoutingTable) -> np.ndarray:
    """A group id per prompt such that identical questions share a group.

    The question is the bare question from ``prompt_extras`` (``question_only``, ``question`` or
    ``query``) when the table has it, else the prompt; it is compared after lower-casing and
    collapsing white space.
    """
    text = table.prompts["prompt"]
    extras = table.extras("prompt_extras")
    if extras is not None:
        for col in ("question_only", "question", "query"):
            if col in extras.columns:
                q = table.prompts[["prompt_id"]].merge(
                    extras[["prompt_id", col]], on="prompt_id", how="left"
                )[col]
                text = q.where(q.notna() & (q.astype(str).str.len() > 0), text)
                break
    norm = [_WS.sub(" ", str(t)).strip().lower() for t in text]
    return pd.factorize(pd.Series(norm))[0]


def _stable_hash(value: str, seed: int) -> float:
    return stable_uniform(f"{seed}:{value}")


def split_by_prompt(
    table: RoutingTable, *, test_fraction: float = 0.2, seed: int = 0, stratify_by_task: bool = True
) -> Split:
    """Hold out about ``test_fraction`` of the prompts, keeping identical questions on one side.

    The draw is deterministic in ``seed`` (a stable hash of each question group), stratified by task.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    groups = question_groups(table)
    rng = np.random.default_rng(seed)
    tasks = table.prompts["task"].to_numpy() if stratify_by_task else np.zeros(len(groups), dtype=int)
    test = np.zeros(len(groups), dtype=bool)
    for task in pd.unique(tasks):
        in_task = np.flatnonzero(tasks == task)
        task_groups = pd.unique(groups[in_task])
        order = rng.permutation(len(task_groups))
        n_test = int(round(test_fraction * len(task_groups)))
        chosen = set(task_groups[order[:n_test]].tolist())
        test[in_task] = np.isin(groups[in_task], list(chosen))
    # A question group that spans tasks must not straddle the split.
    test_groups = set(groups[test].tolist())
    test = np.isin(groups, list(test_groups))
    return Split(test_prompt_ids=table.prompts["prompt_id"].to_numpy()[test].tolist(), new_models=[])


def split_by_model(
    table: RoutingTable, *, n_new: int = 1, seed: int = 0, candidates: Sequence[str] | None = None
) -> list[str]:
    """Pick ``n_new`` models to hold out (leave-models-out), deterministic in ``seed``."""
    pool = list(candidates) if candidates is not None else table.model_names
    if not 0 < n_new < len(pool):
        raise ValueError(f"n_new must be between 1 and {len(pool) - 1} for {len(pool)} models, got {n_new!r}")
    rng = np.random.default_rng(seed)
    return [pool[i] for i in sorted(rng.choice(len(pool), size=n_new, replace=False))]
