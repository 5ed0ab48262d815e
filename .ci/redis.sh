#!/usr/bin/env bash
# Make sure a redis-server binary is on PATH for the Redis store tests (tests/conftest.py starts and
# stops its own throwaway server, so this script only installs the Debian package when missing).
# Exits non-zero if redis-server is still not available afterwards.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    echo "redis.sh: $(redis-server --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

echo "redis.sh: redis-server not found; installing the Debian package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null

# The package may start a system service; the tests do not need it, so do not rely on it.
if ! command -v redis-server >/dev/null 2>&1; then
    echo "redis.sh: redis-server is still not on PATH after apt-get install" >&2
    exit 1
fi
echo "redis.sh: installed $(redis-server --version)"
