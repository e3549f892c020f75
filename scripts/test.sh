#!/usr/bin/env bash
# The README's test command: install what tests need, lint, then every test.
# Service/API/state tests run on SQLite and PostgreSQL; the browser journeys run in a second pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
source scripts/env.sh

if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Chromium from Debian's packages (for the browser tests)"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd=sudo
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium >/dev/null
fi
scripts/services.sh

echo "==> lint"
ruff check .
ruff format --check .

echo "==> unit, service, API and state tests"
pytest -m "not e2e" -n 2 "$@"

echo "==> browser journeys"
pytest -m e2e tests/e2e -p no:xdist "$@"
