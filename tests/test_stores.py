"""Profile stores and feedback math, on a real SQLite file and a real redis-server."""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.feedback import apply_call, apply_error, in_cooldown, tokens_per_s
from zerorouter_integrations.stores import (
    MemoryStore,
    ObservedStats,
    ProfileStore,
    RedisStore,
    SQLiteStore,
    open_store,
)

BACKENDS = ["sqlite", "redis"]


def _make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> ProfileStore:
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "profiles.db")
    url = request.getfixturevalue("redis_url")
    return RedisStore(url, prefix=f"test-{uuid.uuid4().hex[:12]}:")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ProfileStore]:
    s = _make_store(request.param, request, tmp_path)
    try:
        yield s
    finally:
        s.reset()
        s.close()


def _wait_until_gone(get, key: str, limit_s: float = 5.0) -> object:
    """Poll ``get(key)`` until it returns None or ``limit_s`` passes; return the last value."""
    deadline = time.monotonic() + limit_s
    value = get(key)
    while value is not None and time.monotonic() < deadline:
        time.sleep(0.05)
        value = get(key)
    return value


# ---------------------------------------------------------------------- pure feedback math
def test_apply_call_is_pure_and_first_observation_initializes() -> None:
    s0 = ObservedStats("m")
    s1 = apply_call(
        s0,
        latency_s=2.0,
        ttft_s=0.5,
        input_tokens=7,
        output_tokens=30,
        cost_usd=0.003,
        alpha=0.1,
        now=0.0,
    )
    assert s0 == ObservedStats("m")
    assert (s1.n_calls, s1.ewma_latency_s, s1.ewma_ttft_s, s1.ewma_tokens_per_s) == (1, 2.0, 0.5, 20.0)
    assert s1.ewma_cost_usd == 0.003 and s1.ewma_cost_per_output_token == pytest.approx(1e-4)
    assert s1.error_rate == 0.0 and s1.ewma_output_tokens == 30.0


def test_tokens_per_s_rules() -> None:
    assert tokens_per_s(2.0, 0.5, 30) == 20.0  # streamed: decode time only
    assert tokens_per_s(2.0, 2.0, 30) == 15.0  # non-stream (ttft == latency): whole call
    assert tokens_per_s(2.0, None, 30) == 15.0
    assert tokens_per_s(2.0, 0.5, 0) is None  # nothing measurable
    assert tokens_per_s(0.0, None, 5) is None


def test_first_event_error_sets_error_rate_to_one() -> None:
    s = apply_error(
        ObservedStats("m"), error_type="Timeout", cooldown_after=3, cooldown_s=30.0, alpha=0.1, now=0.0
    )
    assert (s.n_errors, s.error_rate, s.consecutive_errors, s.last_error) == (1, 1.0, 1, "Timeout")
    assert not in_cooldown(s, 0.0) and not in_cooldown(None, 0.0)


# ---------------------------------------------------------------------- both backends
def test_record_call_and_error_math(store: ProfileStore) -> None:
    assert store.get_stats("m") is None
    store.record_call("m", latency_s=2.0, ttft_s=0.5, output_tokens=30, cost_usd=0.003, alpha=0.5)
    s = store.record_call("m", latency_s=4.0, output_tokens=20, alpha=0.5)
    assert s.ewma_latency_s == pytest.approx(3.0)
    assert s.ewma_ttft_s == pytest.approx(0.5)  # no ttft: unchanged
    assert s.ewma_tokens_per_s == pytest.approx(0.5 * 5.0 + 0.5 * 20.0)
    assert s.ewma_cost_usd == pytest.approx(0.003)  # unknown cost: unchanged
    s = store.record_error("m", error_type="Timeout", alpha=0.5)
    assert (s.n_calls, s.n_errors, s.consecutive_errors) == (2, 1, 1)
    assert s.error_rate == pytest.approx(0.5) and s.last_error == "Timeout"
    s = store.record_call("m", latency_s=1.0, ttft_s=1.0, output_tokens=10, cost_usd=0.001, alpha=0.5)
    expected = ObservedStats(
        "m",
        n_calls=3,
        n_errors=1,
        ewma_latency_s=2.0,
        ewma_ttft_s=0.75,
        ewma_tokens_per_s=11.25,
        ewma_cost_usd=0.002,
        ewma_cost_per_output_token=1e-4,
        ewma_output_tokens=17.5,
        error_rate=0.25,
        consecutive_errors=0,
        cooldown_until=0.0,
        last_error="Timeout",
    )
    for field in dataclasses.fields(ObservedStats):
        got, want = getattr(s, field.name), getattr(expected, field.name)
        assert got == (pytest.approx(want) if isinstance(want, float) else want), field.name
    assert store.get_stats("m") == s
    assert set(store.all_stats()) == {"m"}


def test_cooldown_after_consecutive_errors_and_expiry(store: ProfileStore) -> None:
    t0 = 1_000_000.0
    for i in range(2):
        s = store.record_error(
            "m", error_type="RateLimitError", cooldown_after=3, cooldown_s=30.0, now=t0 + i
        )
        assert s.cooldown_until == 0.0 and not in_cooldown(s, t0 + i)
    s = store.record_error("m", error_type="RateLimitError", cooldown_after=3, cooldown_s=30.0, now=t0 + 2)
    assert s.consecutive_errors == 3 and s.cooldown_until == t0 + 32
    assert in_cooldown(s, t0 + 31.9) and not in_cooldown(s, t0 + 32.0)  # expires on its own
    s = store.record_call("m", latency_s=1.0, now=t0 + 3)  # a success closes the circuit
    assert s.consecutive_errors == 0 and s.cooldown_until == 0.0
    s = store.record_error("m", error_type="Timeout", cooldown_after=3, cooldown_s=30.0, now=t0 + 4)
    assert s.consecutive_errors == 1 and s.cooldown_until == 0.0
    s = store.record_error("m", error_type="Timeout", cooldown_after=0, now=t0 + 5)  # 0: never
    assert s.cooldown_until == 0.0
    # Retry-After: skipped at least that long, whatever the streak
    s = store.record_error("m", error_type="rate_limit", cooldown_after=0, now=t0 + 6, retry_after_s=12.5)
    assert s.cooldown_until == t0 + 18.5
    # real clock: a zero-length cooldown is already over
    s = store.record_error("other", error_type="Timeout", cooldown_after=1, cooldown_s=0.0)
    assert 0 < s.cooldown_until <= time.time() and not in_cooldown(s, time.time())


def test_requests_round_trip_and_expire(store: ProfileStore) -> None:
    payload = {"chosen": "gpt-4o-mini", "features": [0.1, -2.5], "nested": {"k": None}}
    store.put_request("r1", payload)
    assert store.get_request("r1") == payload
    store.put_request("r1", {"v": 2})
    assert store.get_request("r1") == {"v": 2}
    assert store.get_request("missing") is None
    store.put_request("short", {"x": 1}, ttl_s=0.2)
    assert _wait_until_gone(store.get_request, "short") is None
    assert store.get_request("r1") == {"v": 2}
    store.put_request("forever", {"x": 1}, ttl_s=None)
    assert store.get_request("forever") == {"x": 1}


def test_sessions_round_trip_and_expire(store: ProfileStore) -> None:
    store.set_session("s1", {"model": "m", "turns": 3})
    assert store.get_session("s1") == {"model": "m", "turns": 3}
    assert store.get_session("nope") is None
    store.set_session("s2", {"model": "m"}, ttl_s=0.2)
    assert _wait_until_gone(store.get_session, "s2") is None
    assert store.get_session("s1") == {"model": "m", "turns": 3}


def test_quality_observations_append_and_read(store: ProfileStore) -> None:
    assert store.quality_observations("m") == []
    assert store.append_quality("m", [0.5, -1.0], 1.0, request_id="r1") == 1
    assert store.append_quality("m", (0.25, 2.0), 0.0) == 2
    assert store.append_quality("other", [1.0], 0.5) == 1
    assert store.quality_observations("m") == [([0.5, -1.0], 1.0), ([0.25, 2.0], 0.0)]
    assert store.quality_observations("other") == [([1.0], 0.5)]


def test_reset_clears_everything(store: ProfileStore) -> None:
    store.record_call("m", latency_s=1.0)
    store.record_error("m", error_type="Timeout")
    store.put_request("r", {"a": 1})
    store.set_session("s", {"a": 1})
    store.append_quality("m", [1.0], 1.0)
    store.reset()
    assert store.all_stats() == {} and store.get_stats("m") is None
    assert store.get_request("r") is None and store.get_session("s") is None
    assert store.quality_observations("m") == []
    assert store.record_call("m", latency_s=1.0).n_calls == 1  # usable after reset


def test_invalid_arguments_name_the_value(store: ProfileStore) -> None:
    with pytest.raises(ValueError, match="latency_s"):
        store.record_call("m", latency_s=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        store.record_call("m", latency_s=1.0, alpha=0.0)
    with pytest.raises(ValueError, match="output_tokens"):
        store.record_call("m", latency_s=1.0, output_tokens=-3)
    with pytest.raises(ValueError, match="error_type"):
        store.record_error("m", error_type="")
    with pytest.raises(ValueError, match="ttl_s"):
        store.put_request("r", {}, ttl_s=0)
    with pytest.raises(ValueError, match="model"):
        store.get_stats("")
    assert store.get_stats("m") is None  # nothing was written by the failed calls


async def test_async_twins(store: ProfileStore) -> None:
    s = await store.arecord_call("m", latency_s=1.0, output_tokens=4)
    s = await store.arecord_error("m", error_type="Timeout", cooldown_after=1, now=50.0)
    assert (s.n_calls, s.n_errors, s.cooldown_until) == (1, 1, 80.0)
    assert await store.aget_stats("m") == s
    assert await store.aall_stats() == {"m": s}
    await store.aput_request("r", {"a": 1})
    assert await store.aget_request("r") == {"a": 1}
    await store.aset_session("s", {"b": 2})
    assert await store.aget_session("s") == {"b": 2}
    assert await store.aappend_quality("m", [1.0], 0.5) == 1
    assert await store.aquality_observations("m") == [([1.0], 0.5)]
    await store.areset()
    assert await store.aall_stats() == {}


def test_threads_lose_no_update(store: ProfileStore) -> None:
    n_threads, per_thread = 8, 500
    start = threading.Barrier(n_threads)

    def work(i: int) -> None:
        start.wait()
        for _ in range(per_thread):
            store.record_call("shared", latency_s=0.01 * (i + 1), output_tokens=5, cost_usd=1e-5)

    with ThreadPoolExecutor(n_threads) as pool:
        for fut in [pool.submit(work, i) for i in range(n_threads)]:
            fut.result()  # re-raises any exception from the thread
    s = store.get_stats("shared")
    assert s is not None and s.n_calls == n_threads * per_thread and s.n_errors == 0


def _process_worker(store: ProfileStore, n: int) -> None:
    try:
        for _ in range(n):
            store.record_call("shared", latency_s=0.02, output_tokens=3)
    finally:
        store.close()


def test_processes_lose_no_update(store: ProfileStore) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_worker, args=(store, 500)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    s = store.get_stats("shared")
    assert s is not None and s.n_calls == 1000


# ---------------------------------------------------------------------- backends agree
def _events(seed: int, n: int) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out: list[tuple[str, dict]] = []
    for i in range(n):
        model = rng.choice(["a", "b", "c"])
        alpha = rng.choice([0.1, 0.3, 1.0, rng.uniform(0.01, 1.0)])
        now = 1_700_000_000.0 + i * rng.uniform(0.0, 3.0)
        if rng.random() < 0.25:
            out.append(
                (
                    "error",
                    dict(
                        model=model,
                        error_type=rng.choice(["Timeout", "RateLimitError"]),
                        cooldown_after=rng.choice([0, 1, 2, 3]),
                        cooldown_s=rng.uniform(0.0, 60.0),
                        alpha=alpha,
                        now=now,
                    ),
                )
            )
        else:
            latency = rng.uniform(0.0, 20.0)
            ttft = rng.choice([None, latency, rng.uniform(0.0, latency), latency + 1.0])
            out.append(
                (
                    "call",
                    dict(
                        model=model,
                        latency_s=latency,
                        ttft_s=ttft,
                        input_tokens=rng.randint(0, 4000),
                        output_tokens=rng.choice([0, rng.randint(1, 2000)]),
                        cost_usd=rng.choice([None, 0.0, rng.uniform(0.0, 0.05)]),
                        alpha=alpha,
                        now=now,
                    ),
                )
            )
    return out


def test_sqlite_redis_and_python_math_agree(redis_url: str, tmp_path: Path) -> None:
    sqlite_store = SQLiteStore(tmp_path / "a.db")
    redis_store = RedisStore(redis_url, prefix=f"agree-{uuid.uuid4().hex[:8]}:")
    reference: dict[str, ObservedStats] = {}
    try:
        for kind, kw in _events(seed=7, n=400):
            model = kw.pop("model")
            stats = reference.get(model) or ObservedStats(model)
            if kind == "call":
                reference[model] = apply_call(stats, **kw)
                got = [s.record_call(model, **kw) for s in (sqlite_store, redis_store)]
            else:
                reference[model] = apply_error(stats, **kw)
                got = [s.record_error(model, **kw) for s in (sqlite_store, redis_store)]
            assert got[0] == reference[model]
            _assert_close(got[1], reference[model])
        assert sqlite_store.all_stats() == reference
        redis_all = redis_store.all_stats()
        assert set(redis_all) == set(reference)
        for model, want in reference.items():
            _assert_close(redis_all[model], want)
    finally:
        redis_store.reset()
        redis_store.close()
        sqlite_store.close()


def _assert_close(got: ObservedStats, want: ObservedStats) -> None:
    for field in dataclasses.fields(ObservedStats):
        a, b = getattr(got, field.name), getattr(want, field.name)
        if isinstance(b, float) and a is not None:
            assert a == pytest.approx(b, rel=0, abs=1e-9), field.name
        else:
            assert a == b, field.name


# ---------------------------------------------------------------------- backend specifics
def test_sqlite_file_is_wal_and_versioned(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "p.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        conn.execute("UPDATE schema_version SET version = 99")
    conn.close()
    with pytest.raises(SchemaError, match="99"):
        SQLiteStore(path)
    other = tmp_path / "notes.db"  # a file that is not SQLite: refused by name, left as it was
    other.write_bytes(b"my notes, not a database\n" * 100)
    with pytest.raises(SchemaError, match=r"notes\.db: not a SQLite database"):
        SQLiteStore(other)
    assert other.read_bytes() == b"my notes, not a database\n" * 100


def test_sqlite_refuses_memory_and_use_after_close(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MemoryStore"):
        SQLiteStore(":memory:")
    s = SQLiteStore(tmp_path / "c.db")
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.get_stats("m")


def test_sqlite_pickles_by_path(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "p.db", timeout_s=5.0)
    s.record_call("m", latency_s=1.0)
    t = pickle.loads(pickle.dumps(s))
    assert (t.path, t.timeout_s) == (s.path, 5.0) and t.get_stats("m") == s.get_stats("m")
    t.close()
    s.close()


def test_redis_reset_keeps_other_prefixes(redis_url: str) -> None:
    a = RedisStore(redis_url, prefix="pa-*[x]:")
    b = RedisStore(redis_url, prefix="pa-b:")
    try:
        a.record_call("m", latency_s=1.0)
        b.record_call("m", latency_s=1.0)
        a.reset()
        assert a.all_stats() == {} and b.get_stats("m") is not None
        t = pickle.loads(pickle.dumps(b))
        assert t.get_stats("m") == b.get_stats("m")
        t.close()
    finally:
        b.reset()
        a.close()
        b.close()


def test_redis_store_with_given_client_bytes_responses(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)  # decode_responses=False: bytes come back
    s = RedisStore(client=client, prefix=f"bytes-{uuid.uuid4().hex[:8]}:")
    try:
        s.record_error("m", error_type="Timeout")
        s.put_request("r", {"a": 1})
        s.append_quality("m", [1.0], 1.0)
        assert s.get_stats("m").last_error == "Timeout"
        assert s.get_request("r") == {"a": 1} and s.quality_observations("m") == [([1.0], 1.0)]
        with pytest.raises(TypeError, match="url"):
            pickle.dumps(s)
    finally:
        s.reset()
        s.close()
        client.close()


def test_open_store_picks_backend(tmp_path: Path) -> None:
    assert isinstance(open_store(":memory:"), MemoryStore)
    assert isinstance(open_store("sqlite:///:memory:"), MemoryStore)
    s = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    assert isinstance(s, SQLiteStore) and Path(s.path) == tmp_path / "x.db"
    s.close()
    s = open_store(tmp_path / "y.db")
    assert isinstance(s, SQLiteStore)
    s.close()
    r = open_store("redis://127.0.0.1:1/0")  # no connection until first use
    assert isinstance(r, RedisStore) and r.url == "redis://127.0.0.1:1/0"
    r.close()
    with pytest.raises(ValueError, match="postgres"):
        open_store("postgres://db/x")


def test_memory_store_matches_math_and_pickles_as_a_copy() -> None:
    m = MemoryStore()
    m.record_call("m", latency_s=2.0, output_tokens=10)
    m.put_request("r1", {"model": "m"})
    assert m.get_stats("m").ewma_tokens_per_s == 5.0
    c = pickle.loads(pickle.dumps(m))  # a copy of the contents (not shared)
    assert c.get_stats("m") == m.get_stats("m") and c.get_request("r1") == {"model": "m"}
    c.record_call("m", latency_s=1.0, output_tokens=10)
    assert c.get_stats("m").n_calls == 2 and m.get_stats("m").n_calls == 1


def test_observed_stats_dict_round_trip() -> None:
    s = ObservedStats("m", n_calls=3, ewma_latency_s=1.5, last_error="Timeout")
    assert ObservedStats.from_dict(s.to_dict()) == s
    assert ObservedStats.from_dict({**s.to_dict(), "future_field": 1}) == s
    with pytest.raises(SchemaError, match="model"):
        ObservedStats.from_dict({"n_calls": 1})
