"""The optional parts of the install: which extra brings which library, and the error that says so.

``pip install zerorouter-integrations`` (or ``pip install -e .``) is the light base: routing, dispatch
through LiteLLM, onboarding from scored anchors (in memory, CSV, JSONL) or live, the CLI, the memory
and SQLite stores.
Everything else is an extra, and code that needs one raises :class:`MissingExtraError` (an
``ImportError``) naming the command that installs it:

============  ===========================================  ================================================
extra         brings                                       needed by
============  ===========================================  ================================================
tables        pandas, pyarrow                              Parquet routing tables (``load_table``), the
                                                           replay server's tables, Parquet anchor files,
                                                           log importers, ``zerorouter route-batch`` files
fit           tables + plots + scipy, scikit-learn         fitting and evaluating routers (``zerorouter
                                                           fit`` / ``eval``, ``fit_from_logs``, cascade
                                                           fitting) and ``route_batch``'s integer program
plots         matplotlib                                   the plots of ``zerorouter eval`` and the demo
demo          tables + plots                               ``zerorouter demo``
redis         redis                                        ``RedisStore`` (``store="redis://…"``)
langchain     langchain-core                               ``langchain_router``
llamaindex    llama-index-core                             ``llamaindex_router``
serve         starlette, uvicorn                           ``zerorouter serve``
torch         torch, sentence-transformers, onnx           other encoders than the shipped int8 MiniLM
ray           ray[data]                                    ``--engine ray``
all           every extra above
============  ===========================================  ================================================
"""

from __future__ import annotations

import importlib.util

from zerorouter_integrations.errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "missing_extra", "need"]

#: extra → the importable top-level modules it brings (the first missing one is named in the error).
EXTRAS: dict[str, tuple[str, ...]] = {
    "tables": ("pandas", "pyarrow"),
    "fit": ("scipy", "sklearn", "pandas", "pyarrow", "matplotlib"),
    "plots": ("matplotlib",),
    "demo": ("pandas", "pyarrow", "matplotlib"),
    "redis": ("redis",),
    "langchain": ("langchain_core",),
    "llamaindex": ("llama_index.core",),
    "serve": ("starlette", "uvicorn"),
    "torch": ("torch", "sentence_transformers"),
    "ray": ("ray",),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing, or a broken install
        return False


def missing_extra(extra: str, purpose: str, module: str | None = None) -> MissingExtraError:
    """The error for ``purpose`` needing ``extra`` (``module``: the one that is missing, if known)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; expected one of {sorted(EXTRAS)}")
    what = module or next((m for m in EXTRAS[extra] if not _installed(m)), EXTRAS[extra][0])
    return MissingExtraError(
        f"{purpose} needs {what!r}, which the base install leaves out: "
        f"pip install 'zerorouter-integrations[{extra}]'",
        extra=extra,
        name=what,
    )


def need(extra: str, purpose: str) -> None:
    """Raise :class:`MissingExtraError` for ``purpose`` unless every module of ``extra`` is installed.

    Cheap (``importlib.util.find_spec``, nothing is imported): call it first in code that needs an
    optional library, then import that library as usual.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; expected one of {sorted(EXTRAS)}")
    for module in EXTRAS[extra]:
        if not _installed(module):
            raise missing_extra(extra, purpose, module)
