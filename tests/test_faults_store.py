"""Issue 14, item 4: store faults never cost an answer (locked SQLite, Redis stopped and restarted)."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest

from zerorouter_integrations.stores import RedisStore, SQLiteStore, open_store
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer
from zerorouter_integrations.testing.fixtures import replay_router

POOL = ["gpt-3.5-turbo-1106", "claude-instant-v1", "mistralai/mixtral-8x7b-chat"]
PROMPTS = [f"Question {i}: what is {i} + {i * 3}?" for i in range(12)]


@pytest.fixture(scope="module")
def server():
    with ReplayServer({m: ModelBehaviour() for m in POOL}) as srv:
        yield srv


def _wait(cond, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _n_calls(store) -> int:
    return sum(s.n_calls for s in store.all_stats().values())


def test_locked_sqlite_queues_observations_and_writes_them_later(server, tmp_path, caplog):
    store = SQLiteStore(tmp_path / "locked.db", timeout_s=0.05)
    router = replay_router(server, POOL, store=store)
    first = router.complete(PROMPTS[0])
    locker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    with caplog.at_level(logging.WARNING, logger="zerorouter_integrations.stores"):
        answers = [router.complete(p) for p in PROMPTS[1:6]]
    assert all(a.content for a in answers)
    h = router.health()["store"]
    assert not h["ok"] and h["queued"] >= 5 and h["dropped"] == 0
    assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1  # one warning per outage
    # a late grade of a request routed while the store was locked still finds its request
    router.record_quality(answers[0].request_id, 1.0)
    locker.execute("ROLLBACK")
    locker.close()
    assert _wait(lambda: router.health()["store"]["queued"] == 0)
    assert router.health()["store"]["ok"]
    assert _n_calls(store) == 6  # nothing lost, nothing counted twice
    assert len(store.quality_observations(answers[0].model)) == 1
    assert store.get_request(first.request_id)["model"] == first.model
    router.close()


def test_redis_stopped_and_restarted_inside_the_test(server, tmp_path, caplog):
    from zerorouter_integrations.testing.redis_server import RedisServer

    try:
        redis = RedisServer(tmp_path / "redis").start()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        store = RedisStore(redis.url, prefix="faults:")
        router = replay_router(server, POOL, store=store)
        peer = RedisStore(redis.url, prefix="faults:")  # another replica's view
        for p in PROMPTS[:3]:
            router.complete(p)
        assert _n_calls(peer) == 3
        redis.stop()
        with caplog.at_level(logging.WARNING, logger="zerorouter_integrations.stores"):
            down = [router.complete(p) for p in PROMPTS[3:9]]  # Redis down: every call still answers
            routed = router.route(PROMPTS[9])  # routing on the last known state
        assert all(a.content for a in down) and routed.chosen in POOL
        h = router.health()["store"]
        assert not h["ok"] and h["queued"] >= 6
        assert sum("unavailable" in r.getMessage() for r in caplog.records) == 1
        redis.start()
        assert _wait(lambda: router.health()["store"]["queued"] == 0)
        assert _n_calls(peer) == 9  # resynced: nothing lost, nothing double-counted
        assert router.health()["store"]["ok"] and router.health()["store"]["written_late"] >= 6
        router.close()
        peer.close()
    finally:
        redis.stop()


def test_close_flushes_and_counts_what_is_lost(tmp_path):
    store = SQLiteStore(tmp_path / "close.db", timeout_s=0.05)
    locker = sqlite3.connect(tmp_path / "close.db", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    for _ in range(3):
        store.record_call("m", latency_s=0.5, output_tokens=5)
    assert store.health()["queued"] == 3
    assert store.get_stats("m").n_calls == 3  # the local view includes the queued events
    locker.execute("ROLLBACK")
    store.close()  # flushes before closing
    assert store.health()["queued"] == 0 and store.health()["dropped"] == 0
    again = SQLiteStore(tmp_path / "close.db")
    assert again.get_stats("m").n_calls == 3
    again.close()


def test_construction_errors_name_the_path_or_url(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(Exception, match="a-file"):
        SQLiteStore(blocker / "sub" / "x.db")
    with pytest.raises(ValueError, match="mongodb"):
        open_store("mongodb://127.0.0.1/x")


def test_redis_server_moves_off_a_port_taken_before_its_first_start(tmp_path) -> None:
    """The throwaway server the tests and benchmarks share retries on a fresh port when its probed
    port was taken in the meantime (here: by a listening socket that never answers PING)."""
    import shutil
    import socket

    from zerorouter_integrations.testing.redis_server import RedisServer, redis_answers

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not on PATH")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = RedisServer(tmp_path / "redis", persist=False)
        server.port = taken
        with server:
            assert server.port != taken
            assert redis_answers(server.port)
        assert not server.running


def test_outbox_writes_each_item_once_when_close_flushes_during_a_retry() -> None:
    """The retry thread and flush() (what close() runs) drain the same queue: every queued write
    reaches the backend exactly once, in order (a race here once wrote the head twice and then
    popped an empty queue)."""
    import threading

    from zerorouter_integrations.stores.outbox import Outbox

    written: list[int] = []
    gate = threading.Event()

    def apply(op: str, args: tuple, kwargs: dict) -> None:
        gate.wait(5)
        time.sleep(0.002)  # slow backend: both drainers are inside a write at once
        written.append(args[0])

    box = Outbox(apply, (ConnectionError,), "test", retry_s=0.001)
    for i in range(50):
        box.put("record_call", (i,), {})  # starts the retry thread (blocked on the gate)
    flusher = threading.Thread(target=box.flush, kwargs={"timeout_s": 10})
    flusher.start()
    gate.set()
    flusher.join(15)
    deadline = time.monotonic() + 10
    while box.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert written == list(range(50))
    assert box.health()["queued"] == 0 and box.written_late == 50 and box.dropped == 0


def test_outbox_full_while_writing_its_head_counts_it_written_not_dropped() -> None:
    """put() on a full queue drops the oldest item; if that item was being written at that moment
    and the write succeeds, it is counted as written and nothing newer is lost in its place."""
    import threading

    from zerorouter_integrations.stores.outbox import Outbox

    written: list[int] = []
    inside, release = threading.Event(), threading.Event()

    def apply(op: str, args: tuple, kwargs: dict) -> None:
        if args[0] == 0:
            inside.set()
            release.wait(5)
        written.append(args[0])

    box = Outbox(apply, (ConnectionError,), "test", maxlen=2, retry_s=0.001)
    box.put("record_call", (0,), {})
    assert inside.wait(5)  # item 0 is being written by the retry thread
    box.put("record_call", (1,), {})
    box.put("record_call", (2,), {})  # full: drops item 0 from the queue while it is in flight
    release.set()
    assert box.flush(timeout_s=10) == 0
    assert written == [0, 1, 2]
    assert box.written_late == 3 and box.dropped == 0
