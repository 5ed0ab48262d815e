"""scripts/check_structure.py: the repository is clean, and each rule fails on a package that breaks it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_structure.py"


def _load():
    spec = importlib.util.spec_from_file_location("check_structure", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["check_structure"] = mod
    spec.loader.exec_module(mod)
    return mod


cs = _load()


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def _rules(findings) -> list[tuple[str, str]]:
    return sorted((f.rule, f.key) for f in findings)


def test_repository_is_clean():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "structure ok" in out.stdout


def test_every_allow_list_entry_has_a_reason():
    assert cs.ALLOW
    for key, reason in cs.ALLOW.items():
        assert key.split(":")[0] in ("size", "private", "cycle"), key
        assert len(reason.strip()) > 10, key


def test_import_cycle_is_found_also_through_a_lazy_import(tmp_path):
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "def f():\n    from pkg import c\n    return c\n",
            "pkg/c.py": "import pkg.a\n",
            "pkg/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n",
        },
    )
    found = cs.check(root, ["pkg"])
    assert _rules(found) == [("cycle", "cycle:pkg/a.py")]
    assert "pkg.a -> pkg.b -> pkg.c -> pkg.a" in found[0].message


def test_type_checking_imports_and_relative_imports(tmp_path):
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from .b import f\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import g\ndef f(): ...\n",
        },
    )
    assert cs.check(root, ["pkg"]) == []
    (root / "pkg" / "b.py").write_text("from . import a\ndef f(): ...\n")
    assert _rules(cs.check(root, ["pkg"])) == [("cycle", "cycle:pkg/a.py")]


def test_private_names_of_other_modules(tmp_path):
    root = _package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": """
                class Router:
                    def _prepare(self):
                        return self._state
                    def __init__(self):
                        self._state = 1
                def _helper():
                    return 1
                """,
            "pkg/b.py": """
                from pkg.a import _helper
                from pkg import a
                def run(router):
                    a._helper()
                    return router._prepare()
                """,
            "pkg/c.py": """
                class Own:
                    def _mine(self):
                        return 1
                def use(other: Own):
                    return other._mine() + Own.__name__.__len__()
                """,
            "other/__init__.py": "import pkg._secret\n",
            "pkg/_secret.py": "",
        },
    )
    keys = _rules(cs.check(root, ["pkg", "other"]))
    assert keys == [
        ("private", "private:other/__init__.py:_secret"),
        ("private", "private:pkg/b.py:_helper"),
        ("private", "private:pkg/b.py:_helper"),
        ("private", "private:pkg/b.py:_prepare"),
    ]


def test_long_module_and_the_allow_list(tmp_path):
    root = _package(tmp_path, {"pkg/__init__.py": "", "pkg/long.py": "x = 1\n" * 12})
    found = cs.check(root, ["pkg"], max_lines=10)
    assert _rules(found) == [("size", "size:pkg/long.py")]
    assert "12 lines" in found[0].message
    assert cs.apply_allow_list(found, {"size:pkg/long.py": "a long formulation docstring"}) == []
    stale = cs.apply_allow_list([], {"size:pkg/gone.py": "was long"})
    assert [f.rule for f in stale] == ["stale"]
    with pytest.raises(SystemExit, match="no reason"):
        cs.apply_allow_list(found, {"size:pkg/long.py": " "})


def test_command_line_fails_and_lists_the_finding(tmp_path):
    _package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "import pkg.a\n"})
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path), "--packages", "pkg", "--no-allow-list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "pkg/a.py:1: cycle: import cycle pkg.a -> pkg.b -> pkg.a" in out.stdout
