"""`zerorouter` CLI: every command, and each bad-input case exits non-zero with a one-line reason."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest

from zerorouter_integrations.cli import main
from zerorouter_integrations.tables import Split, load_table


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"zerorouter {command}: error:"), err[0]
    return err[0]


def test_route_prints_a_decision(capsys):
    assert (
        main(["route", "What is 12 * 7?", "--models", "gpt-4-1106-preview,gpt-3.5-turbo-1106", "--json"]) == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert d["chosen"] in ("gpt-4-1106-preview", "gpt-3.5-turbo-1106")
    assert {c["model"] for c in d["candidates"]} == {"gpt-4-1106-preview", "gpt-3.5-turbo-1106"}
    assert (
        main(
            [
                "route",
                "What is 12 * 7?",
                "--models",
                "gpt-4-1106-preview,gpt-3.5-turbo-1106",
                "--budget",
                "1.0",
            ]
        )
        == 0
    )
    assert "pred. quality" in capsys.readouterr().out


def test_route_bad_inputs(capsys, tmp_path):
    assert main(["route", "hi", "--models", "gpt-4-1106-preview,not-a-model"]) == 2
    assert "not-a-model" in _one_line_error(capsys, "route")
    assert main(["route", "hi", "--artifact", str(tmp_path / "missing.json.gz")]) == 2
    assert "not found" in _one_line_error(capsys, "route")


@pytest.fixture(scope="module")
def small_table_dir(data_dir, tmp_path_factory):
    t = load_table(data_dir / "routerbench_subset")
    ids = t.prompts.groupby("task", group_keys=False).head(40)["prompt_id"].tolist()
    return t.subset(prompt_ids=ids).save(tmp_path_factory.mktemp("cli") / "rb")


def test_fit_then_onboard_then_route(small_table_dir, tmp_path, capsys):
    split = Split(test_prompt_ids=[], new_models=["claude-v2"])
    split.save(tmp_path / "split.json")
    art = tmp_path / "router.json.gz"
    assert (
        main(
            [
                "fit",
                str(small_table_dir),
                "--out",
                str(art),
                "--split",
                str(tmp_path / "split.json"),
                "--anchors",
                "20",
            ]
        )
        == 0
    )
    assert art.is_file() and "10 model profiles" in capsys.readouterr().out
    t = load_table(small_table_dir)
    ids = t.prompt_ids[:30]
    s = t.scores(ids, ["claude-v2"])[:, 0]
    df = pd.DataFrame({"prompt": t.texts(ids), "score": s, "cost_usd": t.costs(ids, ["claude-v2"])[:, 0]})
    df = df[~np.isnan(df["score"])]
    df.to_csv(tmp_path / "anchors.csv", index=False)
    out = tmp_path / "router2.json.gz"
    assert (
        main(
            [
                "onboard",
                "--artifact",
                str(art),
                "--model",
                "claude-v2",
                "--anchors",
                str(tmp_path / "anchors.csv"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "onboarded 'claude-v2'" in capsys.readouterr().out
    assert (
        main(
            [
                "route",
                "Which is larger, 3 or 5?",
                "--artifact",
                str(out),
                "--models",
                "claude-v2,gpt-3.5-turbo-1106",
                "--json",
            ]
        )
        == 0
    )
    d = json.loads(capsys.readouterr().out)
    assert {c["model"] for c in d["candidates"]} == {"claude-v2", "gpt-3.5-turbo-1106"}


def test_fit_and_onboard_bad_inputs(small_table_dir, tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope"), "--out", str(tmp_path / "a.json.gz")]) == 2
    assert "not a folder" in _one_line_error(capsys, "fit")
    assert not (tmp_path / "a.json.gz").exists()
    Split([], ["no-such-model"]).save(tmp_path / "s.json")
    assert (
        main(
            [
                "fit",
                str(small_table_dir),
                "--out",
                str(tmp_path / "a.json.gz"),
                "--split",
                str(tmp_path / "s.json"),
            ]
        )
        == 2
    )
    assert "no-such-model" in _one_line_error(capsys, "fit")
    assert (
        main(
            [
                "onboard",
                "--model",
                "x",
                "--anchors",
                str(tmp_path / "missing.csv"),
                "--out",
                str(tmp_path / "o.json.gz"),
            ]
        )
        == 2
    )
    assert "not found" in _one_line_error(capsys, "onboard")
    pd.DataFrame({"prompt": ["a"], "grade": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    assert (
        main(
            [
                "onboard",
                "--model",
                "x",
                "--anchors",
                str(tmp_path / "bad.csv"),
                "--out",
                str(tmp_path / "o.json.gz"),
            ]
        )
        == 2
    )
    assert "'score'" in _one_line_error(capsys, "onboard")
    pd.DataFrame({"prompt": ["a"], "score": [3.0]}).to_csv(tmp_path / "bad2.csv", index=False)
    assert (
        main(
            [
                "onboard",
                "--model",
                "x",
                "--anchors",
                str(tmp_path / "bad2.csv"),
                "--out",
                str(tmp_path / "o.json.gz"),
            ]
        )
        == 2
    )
    assert "[0, 1]" in _one_line_error(capsys, "onboard")
    assert not (tmp_path / "o.json.gz").exists()


def test_demo_runs_on_held_out_prompts(data_dir, tmp_path, capsys):
    assert main(["demo", "--data", str(data_dir), "--limit", "25", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "saving" in out and "zeroeval" in out and "routerbench_subset" in out and "alpacaeval" in out
    assert (tmp_path / "demo" / "demo.png").read_bytes()[:4] == b"\x89PNG"


def test_demo_bad_inputs(tmp_path, capsys):
    assert main(["demo", "--data", str(tmp_path), "--limit", "5"]) == 2
    assert "data not found" in _one_line_error(capsys, "demo")
    assert main(["demo", "--limit", "0"]) == 2
    assert "--limit" in _one_line_error(capsys, "demo")


def test_serve_replay_serves_and_rejects_bad_flags(data_dir):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zerorouter_integrations.cli",
            "serve-replay",
            "--table-dir",
            str(data_dir / "routerbench_subset"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C must reach the child as in a terminal: a shell that runs the suite in the background
        # starts it with SIGINT ignored, and a child inherits that (Python then never raises KeyboardInterrupt)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        base = proc.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:") and base.endswith("/v1")
        body = json.dumps(
            {"model": "gpt-4-1106-preview", "messages": [{"role": "user", "content": "Say hi"}]}
        )
        req = urllib.request.Request(
            base + "/chat/completions",
            data=body.encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
        )
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    data = json.loads(resp.read())
                break
            except OSError:
                assert time.time() < deadline
                time.sleep(0.2)
        assert data["model"] == "gpt-4-1106-preview" and data["choices"][0]["message"]["content"]
        assert data["usage"]["completion_tokens"] > 0
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    bad = subprocess.run(
        [sys.executable, "-m", "zerorouter_integrations.cli", "serve-replay", "--port", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "--port" in bad.stderr
