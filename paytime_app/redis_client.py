"""The Redis connection PayTime uses for rate limits and pub/sub, on its own DB number."""

from __future__ import annotations

import functools

import redis

from paytime_app.settings import get_settings


def redis_url_with_db(url: str, db: int) -> str:
    """Use the URL's own DB number when it names one, else PayTime's (Reflex has no key prefix)."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    if slash and path.split("?")[0].isdigit():
        return url
    return f"{scheme}://{host}/{db}"


@functools.cache
def get_redis() -> redis.Redis | None:
    settings = get_settings()
    if not settings.redis_url:
        return None
    return redis.Redis.from_url(
        redis_url_with_db(settings.redis_url, settings.redis_db),
        socket_timeout=2,
        socket_connect_timeout=2,
    )
