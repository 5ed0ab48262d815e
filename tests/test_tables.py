"""Routing tables: loading the shared data, each schema error, splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import SchemaError, UnknownModelError
from zerorouter_integrations.tables import (
    SCORE_TYPES,
    Split,
    infer_score_type,
    load_table,
    question_groups,
    split_by_model,
    split_by_prompt,
)

DATA = find_data_dir()


def _write(tmp: Path, prompts: pd.DataFrame, outcomes: pd.DataFrame, models: pd.DataFrame) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    prompts.to_parquet(tmp / "prompts.parquet", index=False)
    outcomes.to_parquet(tmp / "outcomes.parquet", index=False)
    models.to_csv(tmp / "models.csv", index=False)
    return tmp


def _good():
    prompts = pd.DataFrame(
        {
            "prompt_id": ["p1", "p2", "p3"],
            "task": ["t", "t", "u"],
            "prompt": ["What is 2+2?", "Name a colour.", "what is 2+2?"],
            "reference": ["4", None, "4"],
        }
    )
    outcomes = pd.DataFrame(
        {
            "prompt_id": ["p1", "p1", "p2", "p3"],
            "model": ["a", "b", "a", "b"],
            "score": [1.0, 0.0, 0.5, 1.0],
            "cost_usd": [0.1, 0.01, None, 0.02],
            "input_tokens": [3, 3, 4, 3],
            "output_tokens": [1, 1, None, 2],
        }
    )
    models = pd.DataFrame(
        {
            "model": ["a", "b"],
            "input_usd_per_1m": [1.0, None],
            "output_usd_per_1m": [2.0, None],
            "litellm_model": ["openai/a", None],
        }
    )
    return prompts, outcomes, models


def test_loads_every_shared_table():
    for name in ("zeroeval", "routerbench_subset", "llmrouter_ulab"):
        t = load_table(DATA / name)
        assert len(t.prompts) > 1000 and len(t.model_names) >= 9
        S = t.scores()
        assert S.shape == (len(t.prompts), len(t.model_names))
        obs = ~np.isnan(S)
        assert obs.sum() == len(t.outcomes)
        assert ((S[obs] >= 0) & (S[obs] <= 1)).all()


def test_score_types_of_the_shared_tables():
    """0/1 benchmarks, partial credit and the open-ended table's judge win probabilities are told apart."""
    assert load_table(DATA / "zeroeval").score_type == "binary"
    assert load_table(DATA / "alpacaeval").score_type == "continuous"
    ulab = load_table(DATA / "llmrouter_ulab")
    assert ulab.score_type == "partial"
    by_task = ulab.score_types_by_task()
    assert by_task["gsm8k"] == "binary" and by_task["commongen"] == "continuous"
    assert set(by_task.values()) <= set(SCORE_TYPES)
    assert infer_score_type([0.0, 1.0, 0.5, 1.0]) == "partial"
    assert infer_score_type(np.array([0.2, np.nan, 0.7])) == "continuous"
    with pytest.raises(ValueError, match="no scores"):
        infer_score_type([np.nan])


def test_sparse_matrix_and_prices(tmp_path):
    t = load_table(_write(tmp_path, *_good()))
    S = t.scores(["p1", "p2", "p3"], ["a", "b"])
    assert np.isnan(S[1, 1]) and S[0, 0] == 1.0 and S[1, 0] == 0.5
    C = t.costs(["p2"], ["a"])
    assert np.isnan(C[0, 0])
    assert t.prices("a") == pytest.approx((1e-6, 2e-6))
    assert t.prices("b") == (None, None)
    with pytest.raises(UnknownModelError, match="'zz'"):
        t.scores(models=["zz"])


@pytest.mark.parametrize(
    "mutate, file, column, row",
    [
        (lambda p, o, m: o.drop(columns=["score"]), "outcomes.parquet", "score", None),
        (lambda p, o, m: p.drop(columns=["prompt"]), "prompts.parquet", "prompt", None),
        (lambda p, o, m: o.assign(score=[1.0, 0.0, 1.5, 1.0]), "outcomes.parquet", "score", 2),
        (lambda p, o, m: o.assign(score=[1.0, np.nan, 1.0, 1.0]), "outcomes.parquet", "score", 1),
        (lambda p, o, m: o.assign(score=[1.0, -0.1, 1.0, 1.0]), "outcomes.parquet", "score", 1),
        (lambda p, o, m: o.assign(cost_usd=[0.1, -1.0, 0.0, 0.0]), "outcomes.parquet", "cost_usd", 1),
        (lambda p, o, m: o.assign(cost_usd=[0.1, np.inf, 0.0, 0.0]), "outcomes.parquet", "cost_usd", 1),
        (lambda p, o, m: p.assign(prompt_id=["p1", "p1", "p3"]), "prompts.parquet", "prompt_id", 1),
        (lambda p, o, m: o.assign(model=["a", "a", "a", "b"]), "outcomes.parquet", "prompt_id", 1),
        (lambda p, o, m: m.assign(input_usd_per_1m=["1.0", "nan"]), "models.csv", "input_usd_per_1m", 1),
        (lambda p, o, m: m.assign(output_usd_per_1m=[2.0, -3.0]), "models.csv", "output_usd_per_1m", 1),
        (lambda p, o, m: m.assign(input_usd_per_1m=["1.0", "cheap"]), "models.csv", "input_usd_per_1m", 1),
        (lambda p, o, m: o.assign(model=["a", "b", "a", "zz"]), "outcomes.parquet", "model", 3),
        (lambda p, o, m: o.assign(prompt_id=["p1", "p1", "p2", "nope"]), "outcomes.parquet", "prompt_id", 3),
    ],
    ids=[
        "missing-score-col",
        "missing-prompt-col",
        "score-above-1",
        "score-nan",
        "score-negative",
        "negative-cost",
        "infinite-cost",
        "duplicate-prompt",
        "duplicate-outcome",
        "nan-price-string",
        "negative-price",
        "non-numeric-price",
        "unknown-model",
        "unknown-prompt",
    ],
)
def test_schema_errors_name_file_column_and_row(tmp_path, mutate, file, column, row):
    p, o, m = _good()
    frames = {"prompts.parquet": p, "outcomes.parquet": o, "models.csv": m}
    frames[file] = mutate(p, o, m)
    root = _write(tmp_path / "t", frames["prompts.parquet"], frames["outcomes.parquet"], frames["models.csv"])
    with pytest.raises(SchemaError) as err:
        load_table(root)
    msg = str(err.value)
    assert (file in msg and repr(column) in msg) or column in msg
    if row is not None:
        assert f"row {row}" in msg


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(SchemaError, match="not a folder"):
        load_table(tmp_path / "nope")
    p, o, m = _good()
    root = _write(tmp_path / "t", p, o, m)
    (root / "models.csv").unlink()
    with pytest.raises(SchemaError, match=r"models\.csv"):
        load_table(root)


def test_split_by_prompt_is_seeded_and_keeps_questions_together(tmp_path):
    t = load_table(DATA / "routerbench_subset")
    a = split_by_prompt(t, test_fraction=0.25, seed=3)
    b = split_by_prompt(t, test_fraction=0.25, seed=3)
    c = split_by_prompt(t, test_fraction=0.25, seed=4)
    assert a.test_prompt_ids == b.test_prompt_ids and a.test_prompt_ids != c.test_prompt_ids
    assert 0.15 < len(a.test_prompt_ids) / len(t.prompts) < 0.35
    groups = question_groups(t)
    test = t.prompts["prompt_id"].isin(set(a.test_prompt_ids)).to_numpy()
    for g in np.unique(groups):
        sides = set(test[groups == g].tolist())
        assert len(sides) == 1, f"question group {g} straddles the split"
    # The small table: identical questions (case/space-insensitive) share a group.
    small = load_table(_write(tmp_path, *_good()))
    g = question_groups(small)
    assert g[0] == g[2] != g[1]


def test_split_json_round_trip_and_validation(tmp_path):
    t = load_table(_write(tmp_path / "t", *_good()))
    s = Split(["p1"], ["b"])
    s.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json") == s
    s.validate_against(t)
    with pytest.raises(SchemaError, match="'nope'"):
        Split(["nope"], []).validate_against(t)
    with pytest.raises(UnknownModelError):
        Split([], ["zz"]).validate_against(t)
    (tmp_path / "bad.json").write_text(json.dumps({"test_prompt_ids": "p1"}))
    with pytest.raises(SchemaError, match="list of strings"):
        Split.load(tmp_path / "bad.json")
    (tmp_path / "bad2.json").write_text("{")
    with pytest.raises(SchemaError, match="not valid JSON"):
        Split.load(tmp_path / "bad2.json")
    for name, raw in (("latin1.json", b'{"test_prompt_ids": ["\xe9"]}'), ("deep.json", b"[" * 100_000)):
        (tmp_path / name).write_bytes(raw)  # not UTF-8; nested past the parser's recursion limit
        with pytest.raises(SchemaError, match=f"{name}: not valid JSON"):
            Split.load(tmp_path / name)
    assert split_by_model(load_table(DATA / "routerbench_subset"), n_new=2, seed=0) == split_by_model(
        load_table(DATA / "routerbench_subset"), n_new=2, seed=0
    )


def test_save_round_trip(tmp_path):
    t = load_table(_write(tmp_path / "t", *_good()))
    t.save(tmp_path / "copy")
    u = load_table(tmp_path / "copy")
    np.testing.assert_array_equal(np.nan_to_num(t.scores(), nan=-1), np.nan_to_num(u.scores(), nan=-1))
