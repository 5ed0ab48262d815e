"""Profile store on a Redis server, shared by every process on every host that can reach it.

Keys (all under ``prefix``, ``"zerorouter:"`` by default):

==============================  ==========  =====================================================
``<prefix>stats:<model>``       hash        the fields of :class:`ObservedStats` (absent = None)
``<prefix>models``              set         models that have stats (for :meth:`all_stats`)
``<prefix>req:<request_id>``    string      request payload as JSON, with a TTL (``SET PX``)
``<prefix>sess:<session_id>``   string      session payload as JSON, with a TTL
``<prefix>quality:<model>``     list        JSON ``{"features", "score", "request_id", "ts"}``
==============================  ==========  =====================================================

Stats are updated atomically on the server by one Lua script (:data:`RECORD_LUA`, run with
``EVALSHA``) that performs the same floating-point operations, in the same order, as
:mod:`zerorouter_integrations.feedback`; floats are stored with 17 significant digits, so a
SQLite and a Redis store fed the same events hold the same numbers. Change both together.

On Redis Cluster, give a prefix with a hash tag (``prefix="{zerorouter}:"``) so that a model's
stats and the model set live in one slot.
"""

from __future__ import annotations

import json
from typing import Any

from zerorouter_integrations.extras import need
from zerorouter_integrations.stores.base import ObservedStats, ProfileStore

__all__ = ["RECORD_LUA", "RedisStore"]

RECORD_LUA = r"""
-- Atomic feedback update; mirrors zerorouter_integrations/feedback.py (keep them in step).
-- KEYS[1] stats hash of the model, KEYS[2] set of model names
-- ARGV[1] 'call' | 'error', ARGV[2] model, ARGV[3] alpha, ARGV[4] now, then
--   call : ARGV[5] latency_s, ARGV[6] ttft_s or '', ARGV[7] output_tokens, ARGV[8] cost_usd or ''
--   error: ARGV[5] error_type, ARGV[6] cooldown_after, ARGV[7] cooldown_s, ARGV[8] retry_after_s or ''
-- A success closes the circuit (cooldown_until = 0).
local kind = ARGV[1]
local alpha = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local raw = redis.call('HGETALL', KEYS[1])
local s = {}
for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
local function num(field, default)
  local v = s[field]
  if v == nil then return default end
  return tonumber(v)
end
local function ewma(prev, x)
  if prev == nil then return x end
  return alpha * x + (1.0 - alpha) * prev
end
local function f17(x) return string.format('%.17g', x) end
local n_calls = num('n_calls', 0)
local n_errors = num('n_errors', 0)
local first_event = (n_calls + n_errors) == 0
local out = {'model', ARGV[2]}
local function put(field, value) out[#out + 1] = field; out[#out + 1] = value end
if kind == 'call' then
  local latency = tonumber(ARGV[5])
  local ttft = nil
  if ARGV[6] ~= '' then ttft = tonumber(ARGV[6]) end
  local otok = tonumber(ARGV[7])
  local cost = nil
  if ARGV[8] ~= '' then cost = tonumber(ARGV[8]) end
  put('n_calls', string.format('%d', n_calls + 1))
  put('ewma_latency_s', f17(ewma(num('ewma_latency_s', nil), latency)))
  put('ewma_output_tokens', f17(ewma(num('ewma_output_tokens', nil), otok)))
  if first_event then
    put('error_rate', f17(0.0))
  else
    put('error_rate', f17(ewma(num('error_rate', 0.0), 0.0)))
  end
  put('consecutive_errors', '0')
  put('cooldown_until', f17(0.0))
  if ttft ~= nil then
    put('ewma_ttft_s', f17(ewma(num('ewma_ttft_s', nil), ttft)))
  end
  local tps = nil
  if otok > 0 then
    if ttft ~= nil and latency > ttft then
      tps = otok / (latency - ttft)
    elseif latency > 0 then
      tps = otok / latency
    end
  end
  if tps ~= nil then
    put('ewma_tokens_per_s', f17(ewma(num('ewma_tokens_per_s', nil), tps)))
  end
  if cost ~= nil then
    put('ewma_cost_usd', f17(ewma(num('ewma_cost_usd', nil), cost)))
    if otok > 0 then
      put('ewma_cost_per_output_token', f17(ewma(num('ewma_cost_per_output_token', nil), cost / otok)))
    end
  end
elseif kind == 'error' then
  local after = tonumber(ARGV[6])
  local cooldown_s = tonumber(ARGV[7])
  local consecutive = num('consecutive_errors', 0) + 1
  local cooldown_until = num('cooldown_until', 0.0)
  if after > 0 and consecutive >= after then
    local t = now + cooldown_s
    if t > cooldown_until then cooldown_until = t end
  end
  if ARGV[8] ~= nil and ARGV[8] ~= '' then
    local ra = tonumber(ARGV[8])
    if ra > 0 and now + ra > cooldown_until then cooldown_until = now + ra end
  end
  put('n_errors', string.format('%d', n_errors + 1))
  if first_event then
    put('error_rate', f17(1.0))
  else
    put('error_rate', f17(ewma(num('error_rate', 0.0), 1.0)))
  end
  put('consecutive_errors', string.format('%d', consecutive))
  put('cooldown_until', f17(cooldown_until))
  put('last_error', ARGV[5])
else
  return redis.error_reply('unknown event kind ' .. tostring(kind))
end
redis.call('HSET', KEYS[1], unpack(out))
redis.call('SADD', KEYS[2], ARGV[2])
return redis.call('HGETALL', KEYS[1])
"""

_INT_FIELDS = ("n_calls", "n_errors", "consecutive_errors")
_FLOAT_FIELDS = (
    "ewma_latency_s",
    "ewma_ttft_s",
    "ewma_tokens_per_s",
    "ewma_cost_usd",
    "ewma_cost_per_output_token",
    "ewma_output_tokens",
    "error_rate",
    "cooldown_until",
)


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


def _stats_from_hash(model: str, h: dict[str, str]) -> ObservedStats:
    kwargs: dict[str, Any] = {}
    for f in _INT_FIELDS:
        if f in h:
            kwargs[f] = int(h[f])
    for f in _FLOAT_FIELDS:
        if f in h:
            kwargs[f] = float(h[f])
    if "last_error" in h:
        kwargs["last_error"] = h["last_error"]
    return ObservedStats(model=model, **kwargs)


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _opt(x: float | None) -> str:
    return "" if x is None else repr(float(x))


class RedisStore(ProfileStore):
    """Profile store on a Redis server (5.0 or newer).

    Parameters
    ----------
    url : str, default="redis://127.0.0.1:6379/0"
        Server URL (``redis://``, ``rediss://`` or ``unix://``); ignored when ``client`` is given.
        No connection is made until the first call.
    prefix : str, default="zerorouter:"
        Prefix of every key, so several routers can share one database.
    client : redis.Redis or None, default=None
        An existing synchronous client to use instead of one built from ``url``; it is not closed
        by :meth:`close`, and a store built on it cannot be pickled.

    Examples
    --------
    >>> store = RedisStore("redis://127.0.0.1:6379/0", prefix="myapp:")  # doctest: +SKIP
    >>> store.record_error("m", error_type="Timeout", cooldown_after=1).cooldown_until > 0  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "zerorouter:",
        client: Any | None = None,
    ):
        need("redis", "RedisStore (a redis:// profile store)")
        import redis  # the `redis` package; imported here so this module loads without it

        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a str, got {prefix!r}")
        self.prefix = prefix
        if client is None:
            if not isinstance(url, str) or "://" not in url:
                raise ValueError(f"url must be a Redis URL like 'redis://host:6379/0', got {url!r}")
            self.url: str | None = url
            self._client = redis.Redis.from_url(
                url, decode_responses=True, socket_connect_timeout=2.0, socket_timeout=5.0
            )
            self._owns_client = True
        else:
            self.url = None
            self._client = client
            self._owns_client = False
        self._record = self._client.register_script(RECORD_LUA)
        self._models_key = f"{prefix}models"

    def __repr__(self) -> str:
        where = self.url if self.url is not None else self._client
        return f"{type(self).__name__}({where!r}, prefix={self.prefix!r})"

    @property
    def client(self) -> Any:
        """The underlying ``redis.Redis`` client."""
        return self._client

    # ---------------------------------------------------------------- pickling: by URL
    def __getstate__(self) -> dict[str, Any]:
        if self.url is None:
            raise TypeError(
                "a RedisStore built from client= cannot be pickled; build it with "
                "RedisStore(url=..., prefix=...) to pass it to another process"
            )
        return {"url": self.url, "prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], prefix=state["prefix"])  # type: ignore[misc]

    # ---------------------------------------------------------------- keys
    def _stats_key(self, model: str) -> str:
        return f"{self.prefix}stats:{model}"

    def _req_key(self, request_id: str) -> str:
        return f"{self.prefix}req:{request_id}"

    def _sess_key(self, session_id: str) -> str:
        return f"{self.prefix}sess:{session_id}"

    def _quality_key(self, model: str) -> str:
        return f"{self.prefix}quality:{model}"

    # ---------------------------------------------------------------- feedback
    def _run(self, model: str, args: list[str]) -> ObservedStats:
        flat = self._record(keys=[self._stats_key(model), self._models_key], args=args)
        return _stats_from_hash(model, _pairs(flat))

    def _record_call(
        self,
        model: str,
        *,
        latency_s: float,
        ttft_s: float | None,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
        alpha: float,
        now: float,
    ) -> ObservedStats:
        return self._run(
            model,
            [
                "call",
                model,
                repr(alpha),
                repr(now),
                repr(latency_s),
                _opt(ttft_s),
                str(int(output_tokens)),
                _opt(cost_usd),
            ],
        )

    def _record_error(
        self,
        model: str,
        *,
        error_type: str,
        cooldown_after: int,
        cooldown_s: float,
        alpha: float,
        now: float,
        retry_after_s: float | None = None,
    ) -> ObservedStats:
        return self._run(
            model,
            [
                "error",
                model,
                repr(alpha),
                repr(now),
                error_type,
                str(int(cooldown_after)),
                repr(cooldown_s),
                _opt(retry_after_s),
            ],
        )

    def _get_stats(self, model: str) -> ObservedStats | None:
        h = self._client.hgetall(self._stats_key(model))
        if not h:
            return None
        return _stats_from_hash(model, {_text(k): _text(v) for k, v in h.items()})

    def _all_stats(self) -> dict[str, ObservedStats]:
        models = sorted(_text(m) for m in self._client.smembers(self._models_key))
        if not models:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for m in models:
            pipe.hgetall(self._stats_key(m))
        out: dict[str, ObservedStats] = {}
        for m, h in zip(models, pipe.execute()):
            if h:
                out[m] = _stats_from_hash(m, {_text(k): _text(v) for k, v in h.items()})
        return out

    # ---------------------------------------------------------------- requests / sessions
    def _set_json(self, key: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        text = json.dumps(payload)
        if ttl_s is None:
            self._client.set(key, text)
        else:
            self._client.set(key, text, px=max(1, int(round(ttl_s * 1000))))

    def _get_json(self, key: str) -> dict[str, Any] | None:
        text = self._client.get(key)
        return None if text is None else json.loads(_text(text))

    def _put_request(self, request_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        self._set_json(self._req_key(request_id), payload, ttl_s)

    def _get_request(self, request_id: str) -> dict[str, Any] | None:
        return self._get_json(self._req_key(request_id))

    def _set_session(self, session_id: str, payload: dict[str, Any], ttl_s: float | None) -> None:
        self._set_json(self._sess_key(session_id), payload, ttl_s)

    def _get_session(self, session_id: str) -> dict[str, Any] | None:
        return self._get_json(self._sess_key(session_id))

    # ---------------------------------------------------------------- quality
    def _append_quality(
        self, model: str, features: list[float], score: float, request_id: str | None, ts: float
    ) -> int:
        item = {"features": features, "score": score, "request_id": request_id, "ts": ts}
        return int(self._client.rpush(self._quality_key(model), json.dumps(item)))

    def _quality_observations(self, model: str) -> list[tuple[list[float], float]]:
        out = []
        for raw in self._client.lrange(self._quality_key(model), 0, -1):
            item = json.loads(_text(raw))
            out.append(([float(x) for x in item["features"]], float(item["score"])))
        return out

    # ---------------------------------------------------------------- lifecycle
    def reset(self) -> None:
        """Delete every key under this store's prefix (other prefixes are left alone)."""
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in self.prefix) + "*"
        batch: list[Any] = []
        for key in self._client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.unlink(*batch)
                batch.clear()
        if batch:
            self._client.unlink(*batch)

    def fault_types(self) -> tuple[type[BaseException], ...]:
        """Connection, timeout, loading and read-only errors of ``redis`` (and ``OSError``)."""
        from redis import exceptions as rex

        return (rex.ConnectionError, rex.TimeoutError, rex.BusyLoadingError, rex.ReadOnlyError, OSError)

    def close(self) -> None:
        """Write queued observations (up to 5 s), then close the connection pool if this store created
        it (a given ``client`` is left open)."""
        self._flush_for_close()
        if self._owns_client:
            self._client.close()
