#!/usr/bin/env bash
# Lint, format and type checks, run by .ci/run before the tests (and by every developer before merging).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m ruff check .
"$PY" -m ruff format --check .
"$PY" -m mypy  # the three packages; configuration in pyproject.toml ([tool.mypy])
