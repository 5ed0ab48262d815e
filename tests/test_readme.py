"""The README is executable: every Python block and every shell command in it runs as printed.

How the README is read (keep new sections to these rules):

* Fenced blocks tagged ``python``/``py`` run each as one script in a fresh interpreter. Blocks tagged
  ``bash``/``sh``/``shell`` run command by command (a command is a line, continued by a trailing
  ``\\``; blank lines and ``#`` comment lines are skipped) with ``bash -e -o pipefail``. Other blocks
  (``text``, untagged) are not run.
* A block of any tag whose first line is ``# file: NAME`` (e.g. a LiteLLM ``config.yaml``) is written
  to ``NAME`` in the scratch clone when its turn comes, so later commands can read it as printed.
* A command, or a Python block whose first line, carries ``# (not run by tests: REASON)`` is skipped
  with that reason (keep this for installs and for the test command itself).
* Everything runs in a scratch clone: a folder of links to the repository's top-level entries, next to
  a link ``shared`` to the shared data, so relative paths (``../shared/data``) work and files the
  snippets write stay out of the repository. The blocks run in README order and share that folder,
  so a later block may read a file an earlier one wrote.
* The environment: the test's interpreter first on ``PATH`` (``python``, ``zerorouter``), the
  repository on ``PYTHONPATH``, and ``ZEROROUTER_API_BASE`` pointing at a replay server started by the
  test (routerbench_subset's recorded answers, any model name), so every model call is a real HTTP
  call through LiteLLM to 127.0.0.1 and nothing needs a key. A snippet that reads ``REDIS_URL`` gets
  the URL of a real ``redis-server`` (the ``redis_url`` fixture).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PYTHON_TAGS = {"python", "py"}
SHELL_TAGS = {"bash", "sh", "shell"}
SKIP_MARK = re.compile(r"#\s*\(not run by tests:\s*(?P<reason>[^)]*)\)")
FILE_MARK = re.compile(r"^#\s*file:\s*(?P<name>[\w./-]+)\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<tag>[\w+-]*)")
TIMEOUT_S = 600


@dataclass(frozen=True)
class Snippet:
    """One runnable unit of the README: a Python block or one shell command."""

    kind: str  # "python", "shell" or "file" (written to ``name``)
    code: str
    line: int  # 1-based line of the README where it starts
    skip: str | None = None  # the reason given by the skip mark, when present
    name: str | None = None  # the file a "file" snippet is written to

    @property
    def id(self) -> str:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")
        return f"L{self.line}-{self.kind}-{first[:40]}"


def _blocks(text: str) -> Iterator[tuple[str, str, int]]:
    """(tag, body, first body line) of every fenced block."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, tag, start = m["fence"], m["tag"].lower(), i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence[:3]):
            j += 1
        yield tag, "\n".join(lines[start:j]), start + 1
        i = j + 1


def _shell_commands(body: str, first_line: int) -> Iterator[tuple[str, int]]:
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        start = i
        cmd = lines[i]
        while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if cmd.strip() and not cmd.strip().startswith("#"):
            yield cmd.strip(), first_line + start


def readme_snippets(text: str) -> list[Snippet]:
    """Every runnable unit of a README text, in order (see the module docstring)."""
    out: list[Snippet] = []
    for tag, body, line in _blocks(text):
        head = body.strip().splitlines()[0] if body.strip() else ""
        file_mark = FILE_MARK.match(head)
        if file_mark:
            out.append(Snippet("file", body + "\n", line, name=file_mark["name"]))
        elif tag in PYTHON_TAGS:
            first = body.strip().splitlines()[0] if body.strip() else ""
            m = SKIP_MARK.search(first)
            out.append(Snippet("python", body, line, m["reason"].strip() if m else None))
        elif tag in SHELL_TAGS:
            for cmd, cline in _shell_commands(body, line):
                m = SKIP_MARK.search(cmd)
                out.append(Snippet("shell", cmd, cline, m["reason"].strip() if m else None))
    return out


SNIPPETS = readme_snippets(README.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the extraction itself
def test_extraction_reads_blocks_commands_continuations_and_skip_marks() -> None:
    text = (
        "intro\n```python\nimport math\nprint(math.pi)\n```\n"
        "```bash\n# a comment\nzerorouter route 'hi' \\\n  --json\n\npip install x  # (not run by tests: installs)\n```\n"
        "```text\nzerorouter eval TABLE_DIR [--json]\n```\n"
        "```python\n# (not run by tests: needs a GPU)\nimport torch\n```\n"
        "```yaml\n# file: config.yaml\nmodel_list: []\n```\n"
    )
    got = readme_snippets(text)
    assert [(s.kind, s.skip) for s in got] == [
        ("python", None),
        ("shell", None),
        ("shell", "installs"),
        ("python", "needs a GPU"),
        ("file", None),
    ]
    assert (got[4].name, got[4].code) == ("config.yaml", "# file: config.yaml\nmodel_list: []\n")
    assert got[0].code == "import math\nprint(math.pi)" and got[0].line == 3
    assert got[1].code == "zerorouter route 'hi'  --json" and got[1].line == 8


def test_the_readme_has_snippets_and_every_skip_says_why() -> None:
    kinds = {s.kind for s in SNIPPETS}
    assert {"python", "shell"} <= kinds, f"the README's runnable blocks were not found: {kinds}"
    skipped = [s for s in SNIPPETS if s.skip is not None]
    assert all(s.skip for s in skipped), [s.id for s in skipped if not s.skip]
    # installs and the test command only: keep this list tiny
    assert len(skipped) <= 4, [s.id for s in skipped]


# ----------------------------------------------------------------------------- running the README
@pytest.fixture(scope="module")
def readme_env(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[tuple[Path, dict]]:
    """(scratch clone, environment) with a replay server behind ``ZEROROUTER_API_BASE``."""
    from zerorouter_integrations.endpoints import API_BASE_ENV, API_KEY_ENV
    from zerorouter_integrations.testing import ReplayServer

    base = tmp_path_factory.mktemp("readme")
    clone = base / "zerorouter"
    clone.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv"):
            (clone / entry.name).symlink_to(entry)
    (base / "shared").mkdir()
    (base / "shared" / "data").symlink_to(data_dir)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HF_HUB_OFFLINE"] = "1"
    env.pop(API_KEY_ENV, None)  # the replay server needs no key: the placeholder must do
    tables = [data_dir / "routerbench_subset"]
    with ReplayServer(table_dirs=tables) as server:
        env[API_BASE_ENV] = server.base_url
        yield clone, env


def _tail(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else "…" + text[-n:]


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.id for s in SNIPPETS])
def test_readme_snippet_runs_as_printed(
    snippet: Snippet, readme_env: tuple[Path, dict], request: pytest.FixtureRequest
) -> None:
    if snippet.skip is not None:
        pytest.skip(f"README line {snippet.line}: {snippet.skip}")
    clone, env = readme_env
    if "REDIS_URL" in snippet.code:  # a real redis-server for the snippets that name one
        env = {**env, "REDIS_URL": request.getfixturevalue("redis_url")}
    if snippet.kind == "file":
        target = clone / str(snippet.name)
        assert not target.is_symlink(), (
            f"README line {snippet.line}: {snippet.name} would overwrite a repository file"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(snippet.code, encoding="utf-8")
        return
    if snippet.kind == "python":
        script = clone / f"readme_line_{snippet.line}.py"
        script.write_text(snippet.code + "\n", encoding="utf-8")
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", snippet.code]
    try:
        proc = subprocess.run(
            argv, cwd=clone, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"README line {snippet.line} ran over {TIMEOUT_S} s:\n{snippet.code}\n{exc}")
    assert proc.returncode == 0, (
        f"README line {snippet.line} failed (exit {proc.returncode}):\n{snippet.code}\n"
        f"--- stdout\n{_tail(proc.stdout)}\n--- stderr\n{_tail(proc.stderr)}"
    )
