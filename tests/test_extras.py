"""The base install's boundary: what works without the extras, and the error that names the extra.

The heavy libraries that moved to extras (issue 16) are made unimportable in a fresh interpreter by a
``sys.meta_path`` finder (the state of a ``pip install -e .`` virtualenv, which
``tests/test_light_install.py`` builds for real when ``ZEROROUTER_INSTALL_TEST=1``). In it: deciding,
onboarding from CSV / JSONL anchor files (cost fit included) and the CLI's ``route`` work; tables,
fitting, the demo and both adapters raise :class:`MissingExtraError` with the ``pip install`` line.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from zerorouter_integrations.cli_onboard import read_anchor_file
from zerorouter_integrations.errors import MissingExtraError, SchemaError, ZeroRouterError
from zerorouter_integrations.extras import EXTRAS, missing_extra, need

ROOT = Path(__file__).resolve().parents[1]
EXTRA_ONLY = (
    "scipy",
    "sklearn",
    "pandas",
    "pyarrow",
    "matplotlib",
    "langchain_core",
    "llama_index",
    "torch",
    "redis",
    "mcp",
)

BLOCK = f"""
import sys
class _Base:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {EXTRA_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, _Base())
"""


def _base(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "base_install.py"
    script.write_text(BLOCK + code, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


def test_need_and_the_error():
    need("tables", "anything")  # the dev install has every extra
    err = missing_extra("fit", "zerorouter fit", "scipy")
    assert isinstance(err, ImportError) and isinstance(err, ZeroRouterError)
    assert str(err) == (
        "zerorouter fit needs 'scipy', which the base install leaves out: pip install 'zerorouter-integrations[fit]'"
    )
    assert err.extra == "fit" and err.name == "scipy"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is MissingExtraError and str(back) == str(err) and back.extra == "fit"
    with pytest.raises(ValueError, match="unknown extra 'nope'"):
        need("nope", "x")
    # every extra named in the table exists in pyproject.toml
    text = (ROOT / "pyproject.toml").read_text()
    for extra in EXTRAS:
        assert f"\n{extra} = [" in text, extra


def test_anchor_files_without_pandas(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text(
        'prompt,score,cost_usd\n"What is 2+2, exactly?",1,0.001\nName a prime.,0.5,\n', encoding="utf-8"
    )
    got = read_anchor_file(str(csv))
    assert got["prompt"] == ["What is 2+2, exactly?", "Name a prime."]
    assert (
        got["score"] == [1.0, 0.5]
        and got["cost_usd"][0] == 0.001
        and got["cost_usd"][1] != got["cost_usd"][1]
    )
    jl = tmp_path / "a.jsonl"
    jl.write_text('{"prompt": "p1", "score": 0}\n\n{"prompt": "p2", "score": 1.0}\n', encoding="utf-8")
    assert read_anchor_file(str(jl)) == {"prompt": ["p1", "p2"], "score": [0.0, 1.0]}
    bad = tmp_path / "b.csv"
    bad.write_text("prompt,score\nx,high\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"row 1 has score='high'; expected a number"):
        read_anchor_file(str(bad))
    bad.write_text("prompt,grade\nx,1\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"missing column\(s\) \['score'\]"):
        read_anchor_file(str(bad))
    badj = tmp_path / "b.jsonl"
    badj.write_text('{"prompt": "x", "score": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SchemaError, match="line 2 is a list; expected a JSON object"):
        read_anchor_file(str(badj))


def test_the_base_install_decides_and_onboards(tmp_path):
    (tmp_path / "anchors.jsonl").write_text(
        "\n".join(
            json.dumps({"prompt": f"What is {i} + {i}?", "score": i % 2, "cost_usd": 1e-4 * (1 + i % 4)})
            for i in range(40)
        ),
        encoding="utf-8",
    )
    code = f"""
import json, sys
from zerorouter_integrations.cli import main
from zerorouter_integrations.router import ZeroRouter
d = ZeroRouter.default().route("Write a Python function that reverses a list.")
rc = main(["onboard", "--model", "my-model", "--anchors", {str(tmp_path / "anchors.jsonl")!r},
           "--input-usd-per-1m", "0.2", "--output-usd-per-1m", "0.8", "--out", {str(tmp_path / "r.json.gz")!r}])
r = ZeroRouter.load({str(tmp_path / "r.json.gz")!r}, models=["my-model", "gpt-4o-mini"], endpoints={{}})
d2 = r.route("What is 3 + 3?")
p = r.profiles["my-model"]
print(json.dumps({{"chosen": d.chosen, "rc": rc, "pool": sorted(c.model for c in d2.candidates),
                  "cost_obs": p.cost.n_obs, "loaded": [m for m in {EXTRA_ONLY!r} if m in sys.modules]}}))
"""
    out = _base(code, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["chosen"] and rec["rc"] == 0
    assert rec["pool"] == ["gpt-4o-mini-2024-07-18", "my-model"] and rec["cost_obs"] == 40
    assert rec["loaded"] == []


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        ("import zerorouter_integrations.tables", "tables"),
        ("from langchain_router import ZeroRouterChat", "langchain"),
        ("import langchain_router.chat_model", "langchain"),
        ("from llamaindex_router import ZeroRouterLLM", "llamaindex"),
        (
            "from zerorouter_integrations.router import ZeroRouter\nZeroRouter.default(store='redis://127.0.0.1:1/0')",
            "redis",
        ),
        (
            "from zerorouter_integrations.router import ZeroRouter\n"
            "ZeroRouter.default().route_batch(['What is 2 + 2?', 'Name a prime.'], quality_target=0.5)",
            "fit",
        ),
        (
            "from zerorouter_integrations.latent.irt import IRTSpace\n"
            "import numpy as np\n"
            "IRTSpace(n_dims=2).fit(np.random.rand(30, 4), (np.random.rand(30, 3) > .5) * 1.0, ['a', 'b', 'c'])",
            "fit",
        ),
    ],
)
def test_what_needs_an_extra_says_which(code, extra, tmp_path):
    out = _base(
        f"try:\n    exec({code!r})\nexcept ImportError as e:\n    print(type(e).__name__, '|', e)\n", tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("MissingExtraError |"), line
    assert f"pip install 'zerorouter-integrations[{extra}]'" in line


@pytest.mark.parametrize(
    ("command", "extra"),
    [(["demo"], "demo"), (["eval", "t", "--split", "s"], "fit"), (["fit", "t", "--out", "a.json.gz"], "fit")],
)
def test_cli_names_the_extra_in_one_line(command, extra, tmp_path):
    out = _base(
        f"from zerorouter_integrations.cli import main\nraise SystemExit(main({command!r}))\n", tmp_path
    )
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.stderr.strip() == (
        f"zerorouter {command[0]}: error: zerorouter {command[0]} needs "
        f"'{EXTRAS[extra][0]}', which the base install leaves out: pip install 'zerorouter-integrations[{extra}]'"
    )


def test_the_base_install_calls_models_with_tools_without_mcp(tmp_path):
    """LiteLLM before 1.110 imports its MCP gateway (the ``mcp`` package, not in the base) on any call
    with tools; the dispatcher tells it to skip the gateway, so function tools work without it."""
    code = """
import json, sys
from zerorouter_integrations.dispatch import Dispatcher, ModelEndpoint
from zerorouter_integrations.testing import ReplayServer
tool = {"type": "function", "function": {"name": "magic_function", "description": "Apply magic.",
        "parameters": {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]}}}
msgs = [{"role": "user", "content": "What is magic_function(3)?"}]
with ReplayServer(models=["ok"]) as srv:
    d = Dispatcher({"ok": ModelEndpoint(name="ok", litellm_model="openai/ok", api_base=srv.base_url, api_key="sk-x")})
    one = d.complete(["ok"], msgs, tools=[tool], tool_choice="auto")
    last = list(d.stream(["ok"], msgs, tools=[tool]))[-1]
print(json.dumps({"calls": [one.tool_calls[0]["function"]["name"], last.result.tool_calls[0]["function"]["name"]],
                  "mcp": "mcp" in sys.modules}))
"""
    out = _base(code, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec == {"calls": ["magic_function", "magic_function"], "mcp": False}
