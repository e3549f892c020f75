"""Every protected state event handler, given random input by a signed-in user, fails only in words.

Any client can call any handler over the websocket with any arguments, and every page can be opened
with any route parameters. In the fuzz world (tests/fuzz_world.py), each handler of the security
matrix is called by one of the world's accounts with its matrix arguments varied (form fields kept
or dropped, their values replaced by the world's ids and words or by awkward text; other arguments
replaced in kind), on a page whose route and query parameters are drawn the same way. Whatever
arrives, the handler must not raise: a refusal is a message on the page, never an exception.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paytime_app.models.sessions import UserSession
from paytime_app.models.users import User
from tests.fuzz_world import AWKWARD_TEXT, World, build_world
from tests.state.harness import make_state, run_handler
from tests.state.test_security_matrix import protected_calls

# What the pages read from their route and query string.
ROUTE_PARAMETERS = ("event_id", "booking_id", "provider_reference", "page", "page_size", "sort", "q", "role", "step")


# The security matrix's calls: here their arguments only give each handler's shape.
TEMPLATES = protected_calls(
    User(id=uuid.uuid4(), email="someone@example.com", display_name="Someone"), UserSession(id=uuid.uuid4())
)


def _varied(template: Any, world: World, name: str = "") -> st.SearchStrategy[Any]:
    if isinstance(template, dict):
        return st.fixed_dictionaries(
            {}, optional={key: _varied(value, world, key) for key, value in template.items()}
        ) | st.just(template)
    if isinstance(template, bool):
        return st.booleans()
    if isinstance(template, int):
        return st.integers(min_value=-(2**70), max_value=2**70) | st.integers(min_value=-2, max_value=20)
    if isinstance(template, str):
        return world.id_like(name) | world.text() | AWKWARD_TEXT
    return st.just(template)  # uploads and the like keep their shape


@pytest.mark.parametrize("state_class", sorted(TEMPLATES, key=lambda state: state.__name__), ids=lambda s: s.__name__)
def test_random_input_to_a_handler_is_refused_in_words(engine, monkeypatch, state_class):
    world = build_world(monkeypatch)
    handlers = TEMPLATES[state_class]
    route_values = world.text() | st.integers(min_value=-5, max_value=2**70).map(str)

    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")) * 2,
        derandomize=os.environ.get("CI") == "true",
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(handlers)), label="handler")
        account = data.draw(st.sampled_from(sorted(world.browser_tokens)), label="account")
        query = data.draw(
            st.fixed_dictionaries({}, optional={key: world.id_like(key) | route_values for key in ROUTE_PARAMETERS}),
            label="route",
        )
        args = [
            data.draw(_varied(argument, world), label=f"argument {index}")
            for index, argument in enumerate(handlers[name])
        ]
        state = make_state(state_class, session_token=world.browser_tokens[account], query=query)
        asyncio.run(run_handler(state, name, *args))

    check()
