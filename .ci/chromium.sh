#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the dashboard test (tests/test_dashboard.py drives it
# headless through playwright with executable_path=/usr/bin/chromium; no browser is downloaded).
# Exits non-zero if chromium is still not available afterwards.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    echo "chromium.sh: $(chromium --version 2>/dev/null || echo chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

echo "chromium.sh: chromium not found; installing the Debian package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null

if ! command -v chromium >/dev/null 2>&1; then
    echo "chromium.sh: chromium is still not on PATH after apt-get install" >&2
    exit 1
fi
echo "chromium.sh: installed $(chromium --version 2>/dev/null || echo chromium)"
