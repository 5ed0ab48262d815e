"""Evaluation metrics and the `zerorouter eval` contract, checked against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from zerorouter_integrations.cli import main
from zerorouter_integrations.metrics import (
    Curve,
    apgr,
    audc,
    cost_to_reach,
    curve_from_choices,
    references,
    sweep_choices,
    upper_hull,
)
from zerorouter_integrations.tables import Split, load_table


def test_upper_hull_is_concave_and_monotone():
    pts = np.array([[1, 0.5], [2, 0.55], [3, 0.8], [4, 0.7], [5, 0.9], [2.5, 0.6]])
    h = upper_hull(pts)
    np.testing.assert_allclose(h, [[1, 0.5], [3, 0.8], [5, 0.9]])
    assert np.all(np.diff(h[:, 1]) > 0)


def test_audc_cost_to_reach_and_apgr_by_hand():
    c = Curve(points=np.array([[1.0, 0.5], [3.0, 0.9]]), hull=np.array([[1.0, 0.5], [3.0, 0.9]]))
    # Linear from (1, .5) to (3, .9): mean over [1, 3] is 0.7; over [0, 4]: (0.5 + 2*0.7 + 0.9) / 4 = 0.7
    assert audc(c, 1.0, 3.0) == pytest.approx(0.7, abs=1e-9)
    assert audc(c, 0.0, 4.0) == pytest.approx((1 * 0.5 + 2 * 0.7 + 1 * 0.9) / 4, abs=1e-6)
    assert cost_to_reach(c, 0.8) == pytest.approx(2.5)
    assert cost_to_reach(c, 0.95) is None
    assert cost_to_reach(c, 0.3) == 1.0
    # The random mix between the same two points recovers exactly half the gap on average.
    assert apgr(c, c_weak=1.0, q_weak=0.5, c_strong=3.0, q_strong=0.9) == pytest.approx(0.5, abs=1e-9)


def test_references_by_hand():
    Y = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1.0]])
    C = np.array([[3, 1, 2], [3, 1, 2], [3, 1, 2], [3, 1, 2.0]])
    r = references(Y, C, ["a", "b", "c"])
    assert r["best_single"]["model"] == "c" and r["best_single"]["quality"] == 0.75
    assert r["cheapest"]["model"] == "b" and r["cheapest"]["cost"] == 1.0
    # Oracle: row0 → c (2), row1 → c (2), row2 → b (1), row3 → b (1): quality 1, cost 1.5
    assert r["oracle"] == {"quality": 1.0, "cost": 1.5}
    # Sweeping the true table recovers the oracle point.
    pts = curve_from_choices(sweep_choices(Y, C), Y, C)
    assert upper_hull(pts)[-1].tolist() == [1.5, 1.0]


def _slice(data_dir, tmp_path, n=150):
    t = load_table(data_dir / "routerbench_subset")
    ids = t.prompts.groupby("task", group_keys=False).head(n // 3)["prompt_id"].tolist()
    small = t.subset(prompt_ids=ids)
    root = small.save(tmp_path / "rb_small")
    rng = np.random.default_rng(0)
    test = sorted(rng.choice(ids, size=len(ids) // 3, replace=False).tolist())
    split = Split(test_prompt_ids=test, new_models=["claude-v1"])
    split.save(tmp_path / "split.json")
    return small, root, split


def test_eval_cli_json_contract_matches_hand_computation(data_dir, tmp_path, capsys):
    small, root, split = _slice(data_dir, tmp_path)
    out = tmp_path / "out"
    rc = main(
        [
            "eval",
            str(root),
            "--split",
            str(tmp_path / "split.json"),
            "--anchors",
            "30",
            "--routers",
            "zerorouter,knn",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["routers"]) == {"zerorouter", "knn"}
    for r in report["routers"].values():
        assert {"audc", "qnc", "cost_at_95", "best_quality", "curve"} <= set(r)
        curve = np.asarray(r["curve"])
        assert curve.ndim == 2 and curve.shape[1] == 2 and np.all(np.diff(curve[:, 0]) >= 0)
    # Hand computation of the references from the raw outcomes.
    o = small.outcomes
    o = o[o["prompt_id"].isin(split.test_prompt_ids)]
    wide_s = o.pivot(index="prompt_id", columns="model", values="score")
    wide_c = o.pivot(index="prompt_id", columns="model", values="cost_usd")
    pool = [m for m in wide_s.columns if (wide_s[m].notna() & wide_c[m].notna()).mean() >= 0.99]
    assert sorted(report["pool"]) == sorted(pool)
    complete = (wide_s[pool].notna() & wide_c[pool].notna()).all(axis=1)
    S, Cc = wide_s.loc[complete, pool], wide_c.loc[complete, pool]
    assert report["n_test_prompts"] == int(complete.sum())
    assert report["n_dropped_test_prompts"] == len(split.test_prompt_ids) - int(complete.sum())
    means = pd.DataFrame({"q": S.mean(), "c": Cc.mean()}).sort_values(["q", "c"], ascending=[False, True])
    best = report["references"]["best_single"]
    assert best["model"] == means.index[0]
    assert best["quality"] == pytest.approx(means["q"].iloc[0], abs=1e-12)
    assert best["cost"] == pytest.approx(means["c"].iloc[0], abs=1e-15)
    top = S.max(axis=1)
    oracle_cost = [Cc.loc[i, S.loc[i] >= top[i]].min() for i in S.index]
    assert report["references"]["oracle"]["quality"] == pytest.approx(top.mean(), abs=1e-12)
    assert report["references"]["oracle"]["cost"] == pytest.approx(np.mean(oracle_cost), abs=1e-15)
    for name in ("report.md", "report.csv", "report.json", "deferral.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "deferral.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "case",
    [
        "missing-table",
        "bad-schema",
        "missing-split",
        "bad-split-json",
        "unknown-model",
        "unknown-router",
        "unknown-prompt",
    ],
)
def test_eval_cli_bad_input_exits_nonzero_with_one_line(case, data_dir, tmp_path, capsys):
    _small, root, split = _slice(data_dir, tmp_path, n=30)
    split_path = tmp_path / "split.json"
    args = ["eval", str(root), "--split", str(split_path)]
    if case == "missing-table":
        args[1] = str(tmp_path / "nope")
    elif case == "bad-schema":
        pd.DataFrame({"prompt_id": ["x"]}).to_parquet(root / "outcomes.parquet")
    elif case == "missing-split":
        args[3] = str(tmp_path / "nope.json")
    elif case == "bad-split-json":
        split_path.write_text("[1, 2]")
    elif case == "unknown-model":
        Split(split.test_prompt_ids, ["not-a-model"]).save(split_path)
    elif case == "unknown-router":
        args += ["--routers", "zerorouter,magic"]
    elif case == "unknown-prompt":
        Split(["nope:1"], []).save(split_path)
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("zerorouter eval: error:")
