#!/usr/bin/env bash
# warpd's two set-up commands, on Debian 12 with Python 3.11, as root or not:
#   bash config/setup.sh run    install what warpd needs and run it on the
#                               embedded default (config/demo.toml)
#   bash config/setup.sh test   install everything the suite needs and run
#                               ruff, mypy and the whole test suite
# Debian packages come from apt (with sudo when not root); Python packages go
# into ./.venv. Re-running is cheap: nothing already present is fetched again.
set -euo pipefail

mode=${1:-}
case "$mode" in
  run|test) ;;
  *) echo "usage: bash config/setup.sh run|test" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

# Runtime: PostgreSQL's binaries for the embedded cluster, RTPEngine for the
# media of calls (the daemon runs its own), SIPp for the README's demo calls;
# the tests use the same RTPEngine and SIPp as real peers.
packages=(postgresql python3-venv procps rtpengine-daemon sip-tester)
# The consoles' browser tests drive Debian's headless Chromium (Playwright never
# downloads one); only the test command needs it.
[ "$mode" = test ] && packages+=(chromium chromium-driver)
# The events tests publish to a real RabbitMQ (the local one, else a node they start).
[ "$mode" = test ] && packages+=(rabbitmq-server)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else
    echo "need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
  echo "== apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null; then python=$candidate; break; fi
  done
fi
"$python" -c 'import sys; assert sys.version_info[:2] >= (3, 11), sys.version' || {
  echo "warpd needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv with $python"
  "$python" -m venv .venv
fi
extra=""
[ "$mode" = test ] && extra="[test]"
echo "== pip install -e .$extra"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".$extra"

if [ "$mode" = run ]; then
  echo "== warpd on the embedded default: http://127.0.0.1:8080/ready, Ctrl-C stops it"
  exec .venv/bin/warpd --config config/demo.toml run
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
# Three workers: most tests wait on peers and timers, not the CPU (a serial
# run keeps 2 cores under half busy); a file's tests stay in one worker.
exec .venv/bin/pytest -p no:cacheprovider -n 3 --dist loadfile "${@:2}"
