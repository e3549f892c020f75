"""Run Reflex state event handlers without a browser, with a chosen cookie, as the websocket would."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlencode

from reflex.state import State

from paytime_app import paytime_app as _app  # noqa: F401  registers every state and page
from paytime_app.cookies import SESSION_COOKIE


def make_state(
    state_class: type,
    *,
    session_token: str | None = None,
    path: str = "/",
    query: dict[str, str] | None = None,
    sid: str = "sid-under-test",
) -> Any:
    root = State(_reflex_internal_init=True)
    cookie = f"{SESSION_COOKIE}={session_token}" if session_token else ""
    router_data = {
        "pathname": path,
        # As in a browser: the address bar carries the query string, `query` also the route's parts.
        "asPath": f"{path}?{urlencode(query)}" if query else path,
        "query": dict(query or {}),
        "ip": "198.51.100.9",
        "token": "tab-under-test",
        "sid": sid,
        "headers": {"cookie": cookie, "user-agent": "pytest-state-harness", "origin": "http://localhost:3000"},
    }
    root.router_data = root._update_router_vars(router_data, {})
    return root.get_substate(state_class.get_full_name().split(".")[1:])


async def run_handler(state: Any, name: str, *args: Any) -> list[Any]:
    """Call the handler's function like Reflex does; returns the events it yielded or returned."""
    function = type(state).event_handlers[name].fn
    outcome = function(state, *args)
    if inspect.isasyncgen(outcome):
        return [event async for event in outcome if event is not None]
    if inspect.iscoroutine(outcome):
        outcome = await outcome
    return [outcome] if outcome is not None else []
