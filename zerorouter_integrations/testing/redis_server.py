"""A throwaway ``redis-server`` on 127.0.0.1 that a test or a benchmark can stop and restart.

>>> with RedisServer() as srv:          # doctest: +SKIP
...     store = RedisStore(srv.url)
...     srv.stop(); srv.start()         # same port, same data (append-only file)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["RedisServer", "free_port", "redis_answers"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_answers(port: int) -> bool:
    """Whether a Redis server on 127.0.0.1:``port`` answers ``PING``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``redis-server`` on a free 127.0.0.1 port, persisted to an append-only file in ``workdir``.

    Parameters
    ----------
    workdir : path or None
        Where the append-only file and the log go (a new temporary folder by default).
    persist : bool, default=True
        Keep the data across :meth:`stop` / :meth:`start` (``appendfsync always``).
    """

    def __init__(self, workdir: str | Path | None = None, *, persist: bool = True):
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError(
                "redis-server is not on PATH (apt-get install redis-server, or .ci/redis.sh)"
            )
        self.binary = binary
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="zr-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persist = persist
        self.port = free_port()
        self._started_once = False
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 15.0) -> RedisServer:
        """Start (or restart) the server on the same port; returns ``self`` once it answers PING.

        On the very first start a port taken between probing and binding is replaced by a fresh one
        (up to three tries); a restart always keeps the port, so clients reconnect to the same URL.
        """
        if self._proc is not None and self._proc.poll() is None:
            return self
        tries = 1 if self._started_once else 3
        for attempt in range(tries):
            if self._launch(timeout_s):
                self._started_once = True
                return self
            log = self._log_tail()
            self.stop()
            if attempt + 1 < tries:
                self.port = free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port}; its log:\n{log}")

    def _launch(self, timeout_s: float) -> bool:
        persist = (
            ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        )
        self._proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persist),
                *(
                    "--dir",
                    str(self.workdir),
                    "--daemonize",
                    "no",
                    "--logfile",
                    str(self.workdir / "redis.log"),
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if redis_answers(self.port):
                return True
            time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        log = self.workdir / "redis.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
