"""Reflex configuration; PayTime's own settings live in paytime_app/settings.py."""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from paytime_app.redis_client import redis_url_with_db

port = int(os.environ.get("PORT", "3000"))
# Reflex keeps page state in Redis when PayTime has one, on PayTime's own DB number (no key prefix).
redis_url = os.environ.get("REDIS_URL") or None
if redis_url:
    redis_url = redis_url_with_db(redis_url, int(os.environ.get("REDIS_DB", "7")))

config = rx.Config(
    app_name="paytime_app",
    telemetry_enabled=False,
    frontend_port=port,
    backend_port=port,
    redis_url=redis_url,
    show_built_with_reflex=False,
    # The same proxy trust as PayTime's own routes, so pages and API see the same client address.
    trusted_proxy_hops=int(os.environ.get("TRUSTED_PROXY_HOPS", "0")),
    plugins=[
        rx.plugins.RadixThemesPlugin(
            theme=rx.theme(accent_color="teal", gray_color="slate", radius="medium", appearance="inherit")
        ),
    ],
    disable_plugins=[SitemapPlugin],
)
