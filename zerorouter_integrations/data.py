"""Where the shared benchmark tables live: one rule for tests, benchmarks, the demo and the replay server.

The shared data folder (the ``shared/data`` schema: one sub-folder per routing table, each with
``prompts.parquet``, ``models.csv`` and ``outcomes.parquet``) is found, in this order:

1. the folder passed explicitly (``--data DIR`` on the CLI);
2. the environment variable ``ZEROROUTER_DATA`` (the one documented setting);
3. ``../shared/data`` next to the repository this package was imported from (a source checkout);
4. ``../shared/data`` (and ``./shared/data``) relative to the current directory.

No path of any particular machine is built in.
"""

from __future__ import annotations

import os
from pathlib import Path

from zerorouter_integrations.errors import SchemaError

__all__ = ["DATA_ENV", "data_dir_candidates", "find_data_dir"]

#: The environment variable naming the shared data folder.
DATA_ENV = "ZEROROUTER_DATA"

_REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir_candidates(explicit: str | os.PathLike[str] | None = None) -> list[Path]:
    """The folders :func:`find_data_dir` looks at, in order (an explicit folder is the only one)."""
    if explicit is not None:
        return [Path(explicit)]
    out: list[Path] = []
    env = os.environ.get(DATA_ENV)
    if env:
        out.append(Path(env))
    cwd = Path.cwd()
    for c in (_REPO_ROOT.parent / "shared" / "data", cwd.parent / "shared" / "data", cwd / "shared" / "data"):
        if c not in out:
            out.append(c)
    return out


def _holds(folder: Path, table: str | None) -> bool:
    if table is not None:
        return (folder / table / "prompts.parquet").is_file()
    return folder.is_dir() and any(folder.glob("*/prompts.parquet"))


def find_data_dir(explicit: str | os.PathLike[str] | None = None, *, table: str | None = None) -> Path:
    """The shared data folder, or with ``table`` that table's folder inside it.

    ``explicit`` wins when given (it must hold the tables); otherwise ``$ZEROROUTER_DATA``, then
    ``../shared/data`` next to the repository, then relative to the current directory.

    Raises:
        SchemaError: no candidate holds the tables (``table``'s ``prompts.parquet``, or any table);
            the message lists where it looked and how to point at the data.
    """
    candidates = data_dir_candidates(explicit)
    if table is not None and ("/" in table or "\\" in table or table in ("", ".", "..")):
        raise SchemaError(f"table must be the name of a folder inside the data folder, got {table!r}")
    for c in candidates:
        if _holds(c, table):
            return c / table if table is not None else c
    what = f"table {table!r} of the shared benchmark data" if table else "shared benchmark data"
    raise SchemaError(
        f"{what} not found (no {table or '*'}/prompts.parquet); pass the data folder explicitly (--data DIR) or set {DATA_ENV} "
        f"(looked in: {', '.join(str(c) for c in candidates)})"
    )
