"""Live onboarding from the shipped anchor set: graders, judge (both orders), early stop, CLI.

Models are served by the real replay server on 127.0.0.1 and called through the real LiteLLM; a
"strong" model answers from the anchors' references, a "weak" one answers the replay server's
deterministic text, and the judge prefers the longer answer.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from zerorouter_integrations.anchorset import ANCHOR_SET, Anchor, grade_anchor, load_anchor_set
from zerorouter_integrations.errors import OnboardingError
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = load_anchor_set()
#: every 4th anchor: all domains, a quarter of the calls
SUBSET = ANCHORS[::4]


def _strong_answer(anchor: Anchor) -> str:
    if anchor.grader == "choice":
        return f"The answer is ({anchor.reference})."
    if anchor.grader in ("number", "exact", "literal"):
        return json.dumps({"reasoning": "worked it out", "answer": anchor.reference})
    if anchor.grader == "judge":
        return "A thorough, careful answer. " * 20
    return "[BEGIN] pass [DONE]"


BY_PROMPT = {a.prompt: a for a in ANCHORS}


def _strong(body: dict) -> str | None:
    text = body["messages"][-1]["content"]
    anchor = BY_PROMPT.get(text)
    return _strong_answer(anchor) if anchor is not None else None


def _judge(body: dict) -> str:
    text = body["messages"][-1]["content"]
    m = re.search(r"\[Answer A\]\n(.*)\n\n\[Answer B\]\n(.*)\n\nReply with", text, re.S)
    if m is None:  # asked as the reference model: a short answer
        return "A short answer."
    return "A" if len(m.group(1)) >= len(m.group(2)) else "B"


# ----------------------------------------------------------------------------- the shipped set
def test_shipped_anchor_set_covers_the_domains_and_rebuilds_identically(
    tmp_path: Path, data_dir: Path
) -> None:
    assert len(ANCHORS) >= 200
    domains = {a.domain for a in ANCHORS}
    assert domains == {"math", "mcq", "commonsense", "code", "open"}
    assert sum(a.domain == "open" for a in ANCHORS) >= 40
    for a in ANCHORS:
        assert a.grader == "judge" or a.reference, a.id
        assert a.grader != "code" or a.tests, a.id
    assert len({a.id for a in ANCHORS}) == len(ANCHORS)
    out = tmp_path / "anchors.json.gz"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_anchor_set.py"),
            "--data",
            str(data_dir),
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == ANCHOR_SET.read_bytes()


def test_graders_score_right_and_wrong_answers() -> None:
    code = Anchor("t:1", "t", "mbpp", "code", "code", "Write add.", "x", tests="assert add(1, 2) == 3")
    assert grade_anchor(code, "[BEGIN]\ndef add(a, b):\n    return a + b\n[DONE]") == 1.0
    assert grade_anchor(code, "```python\ndef add(a, b):\n    return a - b\n```") == 0.0
    assert grade_anchor(code, "[BEGIN]\ndef add(a, b):\n    while True: pass\n[DONE]", timeout_s=1.0) == 0.0
    assert grade_anchor(code, "def add(a, b): return a + b", run_code=False) is None
    body = Anchor(
        "t:2",
        "t",
        "human_eval",
        "code",
        "code",
        "p",
        "x",
        tests="assert double(4) == 8",
        code_prefix="def double(n):\n",
    )
    assert grade_anchor(body, "[BEGIN]\n    return 2 * n\n[Done]") == 1.0
    literal = Anchor("t:3", "t", "crux", "code", "literal", "p", "{'1': 'b'}")
    assert grade_anchor(literal, json.dumps({"answer": "{'1': 'b'}"})) == 1.0
    assert grade_anchor(literal, json.dumps({"answer": "{'1': 'a'}"})) == 0.0
    choice = Anchor("t:4", "t", "mmlu", "mcq", "choice", "p", "C")
    assert (grade_anchor(choice, "So the answer is (C)."), grade_anchor(choice, "(B)")) == (1.0, 0.0)
    assert grade_anchor(Anchor("t:5", "t", "x", "open", "judge", "p"), "anything") is None


# ----------------------------------------------------------------------------- live runs
@pytest.fixture(scope="module")
def server():
    models = {
        "strong": ModelBehaviour(reply=_strong),
        "weak": ModelBehaviour(),
        "judge": ModelBehaviour(reply=_judge),
    }
    with ReplayServer(models) as srv:
        yield srv


@pytest.fixture(scope="module")
def router():
    from zerorouter_integrations.router import ZeroRouter

    return ZeroRouter.default(endpoints={})


def _ep(server: ReplayServer, name: str, **kw):
    from zerorouter_integrations.endpoints import server_endpoint

    return server_endpoint(name, server.base_url, litellm_model=f"openai/{name}", **kw)


def test_live_onboarding_grades_judges_both_orders_and_ranks_models(server, router) -> None:
    from zerorouter_integrations.live_onboarding import run_anchors

    judge = _ep(server, "judge")
    server.reset_counters()
    strong = run_anchors(
        "strong", _ep(server, "strong"), SUBSET, judge=judge, concurrency=4, show_progress=False
    )
    n_open = sum(a.grader == "judge" for a in SUBSET)
    # each open anchor: one reference answer and two verdicts (both orders)
    assert server.request_count("judge") == 3 * n_open
    orders = [r.body["messages"][-1]["content"] for r in server.requests if r.model == "judge"]
    assert sum("[Answer A]\nA thorough" in t for t in orders) == n_open
    assert sum("[Answer B]\nA thorough" in t for t in orders) == n_open
    weak = run_anchors("weak", _ep(server, "weak"), SUBSET, judge=judge, concurrency=4, show_progress=False)
    assert len(strong.scores) == len(SUBSET) and strong.failures == 0
    assert strong.mean_score > weak.mean_score + 0.3, (strong.summary(), weak.summary())
    graded = dict(zip(strong.prompts, strong.scores, strict=True))
    for a in SUBSET:  # the strong model wins every non-code anchor (the judge prefers its long answers)
        assert graded[a.prompt] == (0.0 if a.grader == "code" else 1.0), a.id
    no_judge = run_anchors("strong", _ep(server, "strong"), SUBSET, run_code=False, show_progress=False)
    assert set(no_judge.skipped) == {"open-ended (no --judge)", "code (not run)"}
    assert len(no_judge.scores) == sum(a.grader not in ("judge", "code") for a in SUBSET)


def test_first_calls_failing_alike_stop_the_run_and_quote_the_cause(router) -> None:
    with ReplayServer(["locked"], require_api_key="sk-right") as srv:
        ep = _ep(srv, "locked")
        with pytest.raises(OnboardingError, match="Incorrect API key provided") as err:
            router.onboard_live("locked", ep, concurrency=2, stop_after=4, show_progress=False)
        assert "first 4 call(s)" in str(err.value)
        assert len(srv.requests) <= 4 + 2 + 2  # the first calls, what was in flight, no more
        assert "locked" not in router.models


def test_cli_onboard_live_with_prices_and_a_judge(server, tmp_path: Path, capsys) -> None:
    from zerorouter_integrations.cli import main
    from zerorouter_integrations.router import ZeroRouter

    out = tmp_path / "router.json.gz"
    argv = ["onboard", "--model", "strong", "--live", "--litellm-model", "openai/strong"]
    argv += ["--api-base", server.base_url, "--judge", "openai/judge", "-k", "60", "--no-code"]
    argv += ["--input-usd-per-1m", "0.5", "--output-usd-per-1m", "1.5", "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "onboarded 'strong'" in captured.out and "$0.5 / $1.5 per 1M tokens" in captured.out
    assert "anchor(s) graded on 'strong'" in captured.err
    profile = ZeroRouter.load(out, endpoints={}).profiles["strong"]
    assert (profile.input_usd_per_token, profile.output_usd_per_token) == (0.5e-6, 1.5e-6)
    bad = ["onboard", "--model", "x", "--live", "--litellm-model", "openai/x", "--api-base", server.base_url]
    assert main([*bad, "--input-usd-per-1m", "1", "--out", str(out)]) == 2
    assert "give both" in capsys.readouterr().err


def test_cli_onboard_live_from_a_litellm_config(server, tmp_path: Path, capsys) -> None:
    from zerorouter_integrations.cli import main
    from zerorouter_integrations.router import ZeroRouter

    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        "model_list:\n"
        "  - model_name: my-strong\n"
        f"    litellm_params: {{model: openai/strong, api_base: {server.base_url}}}\n"
        "    model_info: {input_cost_per_token: 0.000002, output_cost_per_token: 0.000008}\n"
        "  - model_name: my-judge\n"
        f"    litellm_params: {{model: openai/judge, api_base: {server.base_url}, api_key: os.environ/JUDGE_KEY}}\n"
    )
    out = tmp_path / "router.json.gz"
    server.reset_counters()
    argv = ["onboard", "--live", "--config", str(cfg), "--model", "my-strong", "--judge", "my-judge"]
    assert main([*argv, "-k", "60", "--no-code", "--out", str(out)]) == 0
    assert "$2 / $8 per 1M tokens" in capsys.readouterr().out
    assert server.request_count("strong") > 0 and server.request_count("judge") > 0
    assert ZeroRouter.load(out, endpoints={}).profiles["my-strong"].output_usd_per_token == 8e-6
    assert main(["onboard", "--live", "--config", str(cfg), "--model", "nope", "--out", str(out)]) == 2
    assert "deployment named 'nope'" in capsys.readouterr().err
