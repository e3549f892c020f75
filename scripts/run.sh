#!/usr/bin/env bash
# The README's run command: install, migrate, seed demo data, build and serve on one port.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
source scripts/env.sh

export PORT=${PORT:-3000}
export BASE_URL=${BASE_URL:-http://localhost:$PORT}
python -m paytime_app.cli migrate
if [ "${PAYTIME_ENV:-dev}" != "production" ]; then
  python -m paytime_app.cli seed-demo
fi
python -m paytime_app.cli banner
exec reflex run --env prod --single-port --frontend-port "$PORT" --backend-port "$PORT" --loglevel warning
