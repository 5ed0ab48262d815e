"""Shared pytest fixtures.

``redis_url``: a real ``redis-server`` started once per test session on a free 127.0.0.1 port,
without persistence, in a temporary folder. Tests that use it are skipped when no ``redis-server``
binary is on ``PATH``; when the ``CI`` environment variable is set they fail instead, so CI can
never pass by silently skipping them (``.ci/redis.sh`` installs the binary).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path as _Path

import pytest


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a throwaway ``redis-server`` (database 0) that lives for the whole test session."""
    if shutil.which("redis-server") is None:
        reason = "redis-server not found on PATH (apt-get install redis-server, or run .ci/redis.sh)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the Redis tests must run", pytrace=False)
        pytest.skip(reason)
    from zerorouter_integrations.testing.redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=False)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server.url
    finally:
        server.stop()


# ---------------------------------------------------------------------------- routing-core fixtures
@pytest.fixture(scope="session")
def data_dir() -> _Path:
    """The shared benchmark data (``$ZEROROUTER_DATA`` or ``../shared/data`` next to the repository)."""
    from zerorouter_integrations.data import find_data_dir
    from zerorouter_integrations.errors import SchemaError

    try:
        return find_data_dir(table="zeroeval").parent
    except SchemaError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory):
    """The real bundled MiniLM encoder, with a per-session disk cache."""
    from zerorouter_integrations.encoder import QueryEncoder

    return QueryEncoder(max_seq_length=128, cache_dir=tmp_path_factory.mktemp("emb"), show_progress=False)


@pytest.fixture(scope="session")
def small_table(data_dir):
    """A real slice of zeroeval: 360 prompts (120 per task), every model."""
    import numpy as np

    from zerorouter_integrations.tables import load_table

    t = load_table(data_dir / "zeroeval")
    rng = np.random.default_rng(0)
    ids = []
    for task in ("gsm", "math-l5", "crux"):
        pool = t.prompts.loc[t.prompts["task"] == task, "prompt_id"].to_numpy()
        ids += sorted(rng.choice(pool, size=120, replace=False).tolist())
    return t.subset(prompt_ids=ids)


@pytest.fixture(scope="session")
def small_features(small_table, encoder):
    from zerorouter_integrations.features import PromptFeaturizer

    return PromptFeaturizer(encoder).transform(small_table.texts())
