"""Start ``zerorouter serve`` as a real process on a free 127.0.0.1 port (for the gateway tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """``zerorouter serve --config CONFIG ...`` in a subprocess; ``url`` is its base URL (``.../v1``)."""

    def __init__(self, config: Path, *args: str, env: dict | None = None, log: Path | None = None):
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = self.root + "/v1"
        self.log = log or config.parent / f"serve-{self.port}.log"
        full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
        cmd: Sequence[str] = [
            sys.executable,
            "-m",
            "zerorouter_integrations.cli",
            "serve",
            "--config",
            str(config),
            "--port",
            str(self.port),
            *args,
        ]
        self._log_file = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 240.0) -> ServeProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zerorouter serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.root + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"zerorouter serve did not answer /health in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self._log_file.flush()
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()

    def __enter__(self) -> ServeProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
