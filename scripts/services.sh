#!/usr/bin/env bash
# Make PostgreSQL and Redis reachable for the integration tests.
# Installs them from Debian's packages when missing, starts them when stopped.
# Under CI=true a service that still cannot be reached is a failure; elsewhere tests skip it.
set -uo pipefail

PG_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/8}
strict=${CI:-false}

pg_ready() { pg_isready -q -d "$PG_URL" 2>/dev/null; }
redis_ready() { redis-cli -u "$REDIS_URL" ping 2>/dev/null | grep -q PONG; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

install_packages() {
  command -v apt-get >/dev/null 2>&1 || return 1
  echo "==> installing $* from Debian's packages"
  as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! pg_ready; then
  command -v pg_ctlcluster >/dev/null 2>&1 || install_packages postgresql postgresql-contrib
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
      echo "==> starting PostgreSQL $version"
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    for _ in $(seq 1 20); do pg_ready && break; sleep 0.5; done
  fi
fi

if ! redis_ready; then
  command -v redis-server >/dev/null 2>&1 || install_packages redis-server
  if command -v redis-server >/dev/null 2>&1; then
    echo "==> starting Redis"
    as_root mkdir -p /var/lib/redis /var/log/redis
    as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/paytime-tests.log >/dev/null 2>&1 || true
    for _ in $(seq 1 20); do redis_ready && break; sleep 0.5; done
  fi
fi

status=0
pg_ready || { echo "PostgreSQL is not reachable at $PG_URL"; status=1; }
redis_ready || { echo "Redis is not reachable at $REDIS_URL"; status=1; }
if [ "$status" != 0 ] && [ "$strict" = "true" ]; then
  echo "CI=true: the integration tests need PostgreSQL and Redis; failing." >&2
  exit 1
fi
exit 0
