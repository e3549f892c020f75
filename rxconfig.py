"""Reflex configuration; PayTime's own settings live in paytime_app/settings.py."""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

port = int(os.environ.get("PORT", "3000"))

config = rx.Config(
    app_name="paytime_app",
    telemetry_enabled=False,
    frontend_port=port,
    backend_port=port,
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
