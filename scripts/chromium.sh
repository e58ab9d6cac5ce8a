#!/usr/bin/env bash
# A headless browser for `make test` (the report is checked in Chromium) and `report --png`:
# nothing to do when Chrome or Chromium is there (on PATH, or BROWSER_PATH); otherwise Debian's
# `chromium` package is installed (as root), its apt log kept under build/.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "chromium: $*" >&2; }

if [ -n "${BROWSER_PATH:-}" ] && [ -x "$BROWSER_PATH" ]; then
    exit 0
fi
for name in chromium chromium-browser google-chrome google-chrome-stable chrome; do
    command -v "$name" >/dev/null && exit 0
done
if [ "$(id -u)" != 0 ]; then
    say "no Chrome or Chromium found; install Debian's chromium (sudo apt-get install chromium) or set BROWSER_PATH"
    exit 1
fi
mkdir -p build
say "installing chromium from Debian's packages (log: build/chromium-apt.log)"
started=$SECONDS
{
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq chromium
} >build/chromium-apt.log 2>&1 || { say "installing failed; see build/chromium-apt.log"; exit 1; }
say "installed in $((SECONDS - started)) s"
