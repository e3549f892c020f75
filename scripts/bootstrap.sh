#!/usr/bin/env bash
# Install what PayTime needs into the project folder: .venv (Python deps) and .tools (bun).
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" - <<'PY' || { echo "PayTime needs Python 3.11 or newer (set PYTHON=...)." >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
wanted=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "==> installing Python dependencies"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$wanted" > "$stamp"
fi

# Reflex builds the frontend with bun; Node 20 is too old for its npm path, and bun may only come
# from the npm registry here, so it is installed into .tools/ with npm.
BUN_VERSION=1.4.4
if [ "$(.tools/node_modules/.bin/bun --version 2>/dev/null)" != "$BUN_VERSION" ]; then
  command -v npm >/dev/null 2>&1 || { echo "PayTime needs Node.js and npm to install bun." >&2; exit 1; }
  echo "==> installing bun $BUN_VERSION from the npm registry"
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --silent "bun@$BUN_VERSION"
fi
