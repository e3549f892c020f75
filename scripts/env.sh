# Sourced by the scripts: puts the project's own tools first on PATH.
PROJECT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$PROJECT_ROOT/.venv/bin:$PROJECT_ROOT/.tools/node_modules/.bin:$PATH"
export REFLEX_TELEMETRY_ENABLED=false
