"""Batch routing: route-batch local and on a local Ray instance give the same rows; bad input is named."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from zerorouter_integrations.batch import OUTPUT_COLUMNS, BatchRouter, route_parquet
from zerorouter_integrations.cli import main
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.router import ZeroRouter
from zerorouter_integrations.tables import load_table

HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAS_RAY,
    reason="ray is not installed (pip install 'zerorouter-integrations[ray]'; the dev extra has it)",
)


@pytest.fixture(scope="module")
def prompts(data_dir, tmp_path_factory):
    t = load_table(data_dir / "routerbench_subset")
    df = t.prompts.groupby("task", group_keys=False).head(40)[["prompt_id", "prompt"]].reset_index(drop=True)
    path = tmp_path_factory.mktemp("batch") / "in.parquet"
    df.to_parquet(path)
    return df, path


@pytest.fixture(scope="module")
def local_out(prompts, tmp_path_factory):
    _, path = prompts
    out = tmp_path_factory.mktemp("out") / "local.parquet"
    stats = route_parquet(path, out, engine="local", batch_size=50, show_progress=False)
    return stats, pd.read_parquet(out)


def test_local_engine_matches_route_on_each_prompt(prompts, local_out):
    df, _ = prompts
    stats, out = local_out
    assert stats.rows == len(df) and list(out.columns) == list(OUTPUT_COLUMNS)
    assert out["prompt_id"].tolist() == df["prompt_id"].tolist()
    router = ZeroRouter.default(endpoints={})
    assert set(out["model"]) <= set(router.models) and out["model"].nunique() >= 2
    # Plain text requests: the choice route() makes (the mix side keyed by the request text in both).
    sample = df.sample(12, random_state=0)
    agree = 0
    for pid, text in zip(sample["prompt_id"], sample["prompt"]):
        row = out.loc[out["prompt_id"] == pid].iloc[0]
        d = router.route(text)
        chosen = next(c for c in d.candidates if c.model == row["model"])
        assert row["predicted_quality"] == pytest.approx(chosen.predicted_quality, abs=1e-6)
        assert row["predicted_cost_usd"] == pytest.approx(chosen.predicted_cost_usd, rel=1e-6)
        agree += d.chosen == row["model"]
    assert agree == len(sample)
    pol = json.loads(out["policy"].iloc[0])
    assert pol["reference_fraction"] == 0.95 and pol["reference"] == d.reference_model and pol["lam"] > 0


def test_batch_partitioning_does_not_change_rows(prompts, local_out, tmp_path):
    _, path = prompts
    _, out = local_out
    other = tmp_path / "b7.parquet"
    route_parquet(path, other, engine="local", batch_size=7, show_progress=False)
    pd.testing.assert_frame_equal(pd.read_parquet(other), out)


def test_messages_column_and_bad_input(tmp_path):
    msgs = [
        json.dumps([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}])
    ]
    fn = BatchRouter()
    out = fn(pd.DataFrame({"prompt_id": ["a"], "messages": msgs}))
    assert out["prompt_id"].tolist() == ["a"] and out["model"].iloc[0]
    with pytest.raises(SchemaError, match="'messages' row 0"):
        fn(pd.DataFrame({"prompt_id": ["a"], "messages": ["not json"]}))
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"id": ["a"], "text": ["x"]}).to_parquet(bad)
    with pytest.raises(SchemaError, match="prompt_id"):
        route_parquet(bad, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(ValueError, match="engine"):
        route_parquet(bad, tmp_path / "o.parquet", engine="spark")
    assert main(["route-batch", str(bad), "--out", str(tmp_path / "o.parquet")]) == 2


def test_cli_route_batch_with_a_budget(prompts, tmp_path, capsys):
    _, path = prompts
    out = tmp_path / "cli.parquet"
    assert main(["route-batch", str(path), "--out", str(out), "--budget", "0.5", "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["rows"] == 120 and line["engine"] == "local"
    df = pd.read_parquet(out)
    assert json.loads(df["policy"].iloc[0])["budget_usd_per_1k"] == 0.5


RAY_SCRIPT = """
import sys
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
try:
{body}
finally:
    ray.shutdown()
"""


def run_on_ray(body: str, tmp_path) -> None:
    """Run ``body`` on a fresh local Ray instance (num_cpus=2) in its own interpreter.

    Ray's workers do not start under pytest's output capture here, so the Ray side runs as a plain
    script (the repository first on its path), with a timeout instead of a hang.
    """
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = tmp_path / "on_ray.py"
    script.write_text(RAY_SCRIPT.format(body=textwrap.indent(textwrap.dedent(body), "    ")))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


@needs_ray
def test_ray_engine_gives_the_local_rows(prompts, local_out, tmp_path):
    _, path = prompts
    _, out = local_out
    ray_out = tmp_path / "ray.parquet"
    run_on_ray(
        f"""
        from zerorouter_integrations.batch import route_parquet
        stats = route_parquet({str(path)!r}, {str(ray_out)!r}, engine="ray", batch_size=32, concurrency=2)
        assert stats.engine == "ray", stats
        """,
        tmp_path,
    )
    got = pd.read_parquet(ray_out)
    assert got["prompt_id"].tolist() == out["prompt_id"].tolist()
    assert got["model"].tolist() == out["model"].tolist()
    np.testing.assert_allclose(got["predicted_quality"], out["predicted_quality"], rtol=1e-6)
    np.testing.assert_allclose(got["predicted_cost_usd"], out["predicted_cost_usd"], rtol=1e-6)


@needs_ray
def test_eval_features_on_ray_equal_the_local_ones(data_dir, tmp_path):
    from zerorouter_integrations.encoder import ROUTING_ENCODER, QueryEncoder
    from zerorouter_integrations.evaluation import table_features

    t = load_table(data_dir / "routerbench_subset")
    small = t.subset(prompt_ids=t.prompt_ids[:40])
    feats = tmp_path / "features.npy"
    run_on_ray(
        f"""
        import numpy as np
        from zerorouter_integrations.batch_ray import table_features_ray
        from zerorouter_integrations.tables import load_table
        t = load_table({str(data_dir / "routerbench_subset")!r})
        np.save({str(feats)!r}, table_features_ray(t.subset(prompt_ids=t.prompt_ids[:40]), concurrency=2))
        """,
        tmp_path,
    )
    want = table_features(small, encoder=QueryEncoder(**ROUTING_ENCODER), show_progress=False)
    np.testing.assert_allclose(np.load(feats), want, rtol=1e-5, atol=1e-6)
