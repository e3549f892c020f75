"""A correlation id for every websocket event, so its log lines can be followed."""

from __future__ import annotations

import logging

import reflex as rx
from reflex.middleware import Middleware

from paytime_app.observability import correlation_id, new_correlation_id

logger = logging.getLogger("paytime.events")


class EventCorrelationMiddleware(Middleware):
    async def preprocess(self, app: rx.App, state: rx.State, event: object) -> None:
        # The handler runs later in this same task, so the id set here reaches its log lines.
        correlation_id.set(new_correlation_id())
        logger.info("event", extra={"event": getattr(event, "name", "?")})
