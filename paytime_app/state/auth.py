"""The base state: who is asking, re-derived from the HttpOnly session cookie on every page load."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import reflex as rx

from paytime_app.db import in_transaction
from paytime_app.models.users import Role
from paytime_app.routes import navigation_for

T = TypeVar("T")


class AuthState(rx.State):
    display_name: str = ""
    role: str = ""

    @rx.var
    def is_signed_in(self) -> bool:
        return self.role != ""

    @rx.var
    def role_label(self) -> str:
        return self.role.replace("_", " ").title()

    @rx.var
    def nav_links(self) -> list[dict[str, str]]:
        role = Role(self.role) if self.role else None
        return [{"label": link.label, "href": link.href, "icon": link.icon} for link in navigation_for(role)]

    @staticmethod
    async def call_service(service: Callable[..., T], /, **kwargs: Any) -> T:
        """Run one service call in its own transaction off the event loop."""
        return await asyncio.to_thread(functools.partial(in_transaction, service, **kwargs))
