"""Structure check for the three packages: import cycles, private names used across modules, long modules.

Usage::

    python scripts/check_structure.py            # check this repository; exit 1 and list findings if any
    python scripts/check_structure.py --root DIR --packages a,b

Three rules (issue 13), each finding one line ``path:line: rule: message``:

* ``cycle``: the modules of ``zerorouter_integrations``, ``langchain_router`` and ``llamaindex_router``
  import each other in a cycle. Every ``import`` counts, also those inside functions (a lazy import
  hides a cycle, it does not remove it); only imports under ``if TYPE_CHECKING:`` are ignored. A
  package's ``__init__`` is a module like any other; importing a submodule does not count as importing
  its parent package.
* ``private``: a module uses an underscore name of another module: ``from m import _x``, ``m._x`` on
  an imported module, or ``obj._x`` / ``a.b._x`` where no class or function of this module defines
  ``_x`` (a private member of someone else's object; without types the check cannot tell whose ``_x``
  it is when this module defines one too). ``self._x`` / ``cls._x`` and dunder names are fine; a private
  *module* (``pkg/_convert.py``) is private to its top-level package.
* ``size``: a module longer than ``MAX_LINES`` lines.

A finding is accepted only through :data:`ALLOW`, which maps ``"rule:path"`` (``size``) or
``"rule:path:name"`` (``private``: the private name; ``cycle``: the cycle's first module) to the reason.
An allow-list entry that no longer matches anything is itself reported (``stale``), so the list only
shrinks.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("zerorouter_integrations", "langchain_router", "llamaindex_router")
MAX_LINES = 500

ALLOW: dict[str, str] = {
    "private:zerorouter_integrations/litellm_ext.py:_common_checks_available_deployment": (
        "LiteLLM Routers before 1.110 expose their candidate deployments only through this private method (feature-detected, see the module docstring)"
    ),
    "size:zerorouter_integrations/litellm_ext.py": (
        "the LiteLLM Router strategy, changed today by the serve work (issue 17); split once that lands"
    ),
    "size:zerorouter_integrations/tables.py": (
        "the routing-table schema, changed today by the quality work (issue 15, score type); split after it"
    ),
}


@dataclass(frozen=True)
class Finding:
    """One violation: where, which rule, the allow-list key that would accept it, and what is wrong."""

    path: str
    line: int
    rule: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


@dataclass
class Module:
    """A parsed module of the checked packages."""

    name: str  # dotted: pkg.sub.mod (a package's __init__ is pkg.sub)
    path: Path
    rel: str  # path relative to the root, with forward slashes
    tree: ast.Module
    lines: int
    is_package: bool


def discover(root: Path, packages: Iterable[str]) -> dict[str, Module]:
    """Every ``.py`` file under each package folder of ``root``, parsed, by dotted module name."""
    mods: dict[str, Module] = {}
    for pkg in packages:
        base = root / pkg
        if not base.is_dir():
            raise SystemExit(f"package folder {base} not found (expected one of --packages under --root)")
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            text = path.read_text(encoding="utf-8")
            mods[".".join(parts)] = Module(
                name=".".join(parts),
                path=path,
                rel=path.relative_to(root).as_posix(),
                tree=ast.parse(text, filename=str(path)),
                lines=text.count("\n") + (0 if text.endswith("\n") or not text else 1),
                is_package=is_package,
            )
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node, except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name != "_"


def _absolute(mod: Module, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.name.split(".")
    if not mod.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _top(name: str) -> str:
    return name.split(".")[0]


def _private_module_part(target: str) -> str | None:
    """The first underscore component of a dotted module name (``a._b.c`` -> ``_b``), if any."""
    for part in target.split(".")[1:]:
        if _is_private(part):
            return part
    return None


class _Imports:
    """The modules one module imports (for cycles) and the local names bound to modules."""

    def __init__(self, mod: Module, mods: dict[str, Module]) -> None:
        self.edges: dict[str, int] = {}  # imported module -> first line
        self.module_aliases: dict[str, str] = {}  # local name -> dotted module (ours or third-party)
        self.imported_private: list[tuple[int, str, str]] = []  # line, module, name
        for node in _runtime_nodes(mod.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self._edge(alias.name, node.lineno, mods)
                    if alias.asname:
                        self.module_aliases[alias.asname] = alias.name
                    else:
                        self.module_aliases.setdefault(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom):
                source = _absolute(mod, node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    if sub in mods:
                        self._edge(sub, node.lineno, mods)
                        self.module_aliases[alias.asname or alias.name] = sub
                    else:
                        self._edge(source, node.lineno, mods)
                        if _is_private(alias.name) and source != mod.name:
                            self.imported_private.append((node.lineno, source, alias.name))

    def _edge(self, target: str, line: int, mods: dict[str, Module]) -> None:
        if target in mods:
            self.edges.setdefault(target, line)


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines: functions, classes, their methods, assigned names and ``x.attr = ...``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    for node in ast.walk(tree):  # dataclass / pydantic fields and slots
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    names.add(stmt.target.id)
    return names


def _cycles(mods: dict[str, Module], edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a self-import), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges.get(v, {}):
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(mods) + 100))
    for v in sorted(mods):
        if v not in index:
            visit(v)
    return out


def _cycle_path(comp: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first back to it)."""
    start = comp[0]
    members = set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges.get(v, {})):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def check(root: Path = ROOT, packages: Iterable[str] = PACKAGES, max_lines: int = MAX_LINES) -> list[Finding]:
    """All findings of the three rules (before the allow-list)."""
    packages = tuple(packages)
    mods = discover(root, packages)
    findings: list[Finding] = []
    edges: dict[str, dict[str, int]] = {}
    for name, mod in mods.items():
        imps = _Imports(mod, mods)
        edges[name] = imps.edges
        defined = _defined_names(mod.tree)
        if mod.lines > max_lines:
            findings.append(
                Finding(mod.rel, 1, "size", f"size:{mod.rel}", f"{mod.lines} lines (at most {max_lines})")
            )
        for line, source, pname in imps.imported_private:
            findings.append(
                Finding(
                    mod.rel, line, "private", f"private:{mod.rel}:{pname}", f"imports {pname} from {source}"
                )
            )
        for node in _runtime_nodes(mod.tree):
            target = None
            if isinstance(node, ast.Import):
                target = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = _absolute(mod, node)
                target = [src] + [f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in mods]
            for t in target or []:
                part = _private_module_part(t)
                if part and _top(t) != _top(mod.name) and _top(t) in packages:
                    findings.append(
                        Finding(
                            mod.rel,
                            node.lineno,
                            "private",
                            f"private:{mod.rel}:{part}",
                            f"imports the private module {t} of another package",
                        )
                    )
            if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
                continue
            value = node.value
            if isinstance(value, ast.Name) and value.id in ("self", "cls"):
                continue
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "super":
                continue
            if isinstance(value, ast.Name) and value.id in imps.module_aliases:
                owner = imps.module_aliases[value.id]
                if owner != mod.name:
                    findings.append(
                        Finding(
                            mod.rel,
                            node.lineno,
                            "private",
                            f"private:{mod.rel}:{node.attr}",
                            f"uses {owner}.{node.attr}",
                        )
                    )
                continue
            if node.attr not in defined:
                findings.append(
                    Finding(
                        mod.rel,
                        node.lineno,
                        "private",
                        f"private:{mod.rel}:{node.attr}",
                        f"uses {ast.unparse(value)}.{node.attr}, a private name this module does not define",
                    )
                )
    for comp in _cycles(mods, edges):
        path = _cycle_path(comp, edges)
        first = mods[comp[0]]
        findings.append(
            Finding(
                first.rel,
                edges[path[0]].get(path[1], 1) if len(path) > 1 else 1,
                "cycle",
                f"cycle:{first.rel}",
                "import cycle "
                + " -> ".join(path)
                + (f" (component: {', '.join(comp)})" if len(comp) > 2 else ""),
            )
        )
    return findings


def apply_allow_list(findings: list[Finding], allow: dict[str, str]) -> list[Finding]:
    """Findings the allow-list does not accept, plus one ``stale`` finding per unused entry."""
    for key, reason in allow.items():
        if not reason.strip():
            raise SystemExit(f"allow-list entry {key!r} has no reason; say why it is accepted")
    used = {f.key for f in findings if f.key in allow}
    left = [f for f in findings if f.key not in allow]
    for key in sorted(set(allow) - used):
        left.append(
            Finding(
                "scripts/check_structure.py", 1, "stale", key, f"allow-list entry {key!r} matches nothing"
            )
        )
    return left


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this one)")
    ap.add_argument("--packages", default=",".join(PACKAGES), help="comma-separated package folders")
    ap.add_argument("--max-lines", type=int, default=MAX_LINES)
    ap.add_argument("--no-allow-list", action="store_true", help="report every finding")
    args = ap.parse_args(argv)
    packages = [p for p in args.packages.split(",") if p]
    findings = check(args.root, packages, args.max_lines)
    if not args.no_allow_list:
        findings = apply_allow_list(findings, ALLOW)
    for f in sorted(findings, key=lambda f: (f.path, f.line, f.rule)):
        print(f)
    if findings:
        print(f"{len(findings)} structure finding(s)", file=sys.stderr)
        return 1
    print(f"structure ok: {', '.join(packages)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
