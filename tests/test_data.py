"""The shared data folder is found one way (explicit, ``$ZEROROUTER_DATA``, ``../shared/data``), and no
absolute path of any machine is written into the repository."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from zerorouter_integrations.data import DATA_ENV, data_dir_candidates, find_data_dir
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.testing import ReplayServer

ROOT = Path(__file__).resolve().parents[1]
#: Home-, root- and workspace-like absolute directories (spelled so this file does not match itself).
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:" + "|".join(("wo" + "rk", "ro" + "ot", "ho" + "me")) + r")/")


def _tracked_files() -> list[Path]:
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        out = subprocess.run(
            [git, "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True, timeout=60
        ).stdout
        return [ROOT / p for p in out.decode().split("\0") if p]
    skip = {".git", ".venv", "__pycache__", ".ruff_cache", ".pytest_cache"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)]


def test_no_absolute_machine_paths_in_tracked_files():
    hits = []
    for path in _tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary (artifacts, ONNX)
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert not hits, "absolute machine paths in the repository:\n" + "\n".join(hits)


def test_the_pattern_catches_what_it_should():
    assert MACHINE_PATH.search('DATA = Path("/' + 'work/shared/data")')
    assert MACHINE_PATH.search("cache in /" + "home/alice/.cache")
    assert not MACHINE_PATH.search("https://example.com/" + "home/page")
    assert not MACHINE_PATH.search("../shared/data")


def test_default_finds_the_shared_tables_next_to_the_repository(monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(ROOT)
    found = find_data_dir()
    assert (found / "zeroeval" / "prompts.parquet").is_file()
    assert find_data_dir(table="routerbench_subset") == found / "routerbench_subset"
    assert data_dir_candidates()[0] == ROOT.parent / "shared" / "data"


def test_environment_setting_wins_over_the_repository(monkeypatch, tmp_path):
    real = find_data_dir(table="zeroeval")
    mine = tmp_path / "mydata"
    (mine / "zeroeval").mkdir(parents=True)
    shutil.copy(real / "prompts.parquet", mine / "zeroeval" / "prompts.parquet")
    monkeypatch.setenv(DATA_ENV, str(mine))
    assert find_data_dir() == mine
    assert find_data_dir(table="zeroeval") == mine / "zeroeval"
    # a table the setting's folder lacks falls through to the next candidate (the repository's)
    assert find_data_dir(table="routerbench_subset") == real.parent / "routerbench_subset"


def test_explicit_folder_is_the_only_candidate(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(find_data_dir()))
    with pytest.raises(SchemaError, match=re.escape(str(tmp_path))) as ei:
        find_data_dir(tmp_path)
    assert DATA_ENV in str(ei.value) and "--data" in str(ei.value)


def test_missing_table_names_it_and_where_it_looked(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(SchemaError, match="no_such_table") as ei:
        find_data_dir(table="no_such_table")
    assert str(tmp_path) in str(ei.value)
    with pytest.raises(SchemaError, match="name of a folder"):
        find_data_dir(table="../zeroeval")


def test_replay_server_takes_a_table_name(monkeypatch):
    import httpx
    import pandas as pd

    monkeypatch.delenv(DATA_ENV, raising=False)
    table = find_data_dir(table="routerbench_subset")
    row = pd.read_parquet(table / "prompts.parquet").iloc[0]
    extras = pd.read_parquet(table / "outcome_extras.parquet")
    rec = extras[extras["prompt_id"] == row["prompt_id"]].iloc[0]
    with ReplayServer(table_dirs=["routerbench_subset"]) as srv:
        r = httpx.post(
            f"{srv.base_url}/chat/completions",
            json={"model": rec["model"], "messages": [{"role": "user", "content": row["prompt"]}]},
            headers={"Authorization": "Bearer sk-test"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"] == rec["response"]
        assert srv.requests[-1].source == "recorded"
    with pytest.raises(SchemaError, match="no_such_table"):
        ReplayServer(table_dirs=["no_such_table"])
