"""Every API route, given random input by a signed-in user, answers without a server error.

Requests are made in the fuzz world (tests/fuzz_world.py) by each of its accounts. Bodies are shaped
after each route's OpenAPI schema (its field names, with values of the declared type or of any other
JSON type); ids in paths and bodies come from the world; query parameters get random values of
their declared names. Whatever arrives, the answer is below 500, and a 4xx says what is wrong with a
stable `code`. A new route is covered automatically.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paytime_app.api import create_api
from paytime_app.services.paging import MAX_PAGE
from tests.api.test_route_matrix import api_routes
from tests.fuzz_world import ANY_JSON, NOT_IDS, World, build_world


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _shaped(schema: dict[str, Any], world: World, depth: int = 0, name: str = "") -> st.SearchStrategy[Any]:
    """Values of the schema's own type mixed with any JSON at all, down to a few levels; `name` is
    the field's, which says what an id should be the id of."""
    components = _SPEC_COMPONENTS
    schema = _resolve(schema, components)
    if depth > 3:
        return ANY_JSON
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return st.one_of([_shaped(option, world, depth + 1, name) for option in alternatives])
    kind = schema.get("type")
    if "enum" in schema:
        typed: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        typed = st.fixed_dictionaries(
            {}, optional={field: _shaped(schema, world, depth + 1, field) for field, schema in properties.items()}
        )
    elif kind == "array":
        typed = st.lists(_shaped(schema.get("items", {}), world, depth + 1, name), max_size=4)
    elif kind == "integer":
        typed = st.integers(min_value=-(2**64), max_value=2**64) | st.integers(min_value=-3, max_value=30)
    elif kind == "number":
        typed = st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "string" and schema.get("format") == "uuid":
        typed = world.id_like(name)
    elif kind == "string":
        typed = world.text()
    else:
        return ANY_JSON
    return st.one_of(typed, typed, ANY_JSON)  # mostly the declared type


_SPEC = create_api().openapi()
_SPEC_COMPONENTS = _SPEC.get("components", {}).get("schemas", {})


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every API route with its OpenAPI operation; a route left out of the schema still gets random
    path parameters and bodies."""
    operations = []
    for method, path in api_routes():
        operation = _SPEC["paths"].get(path, {}).get(method.lower())
        if operation is None:
            names = [part.split("}")[0].split(":")[0] for part in path.split("{")[1:]]
            operation = {"parameters": [{"name": name, "in": "path"} for name in names]}
        operations.append((method, path, operation))
    return operations


_OPERATIONS = _operations()


def _request(operation: dict[str, Any], world: World) -> st.SearchStrategy[dict[str, Any]]:
    parameters = operation.get("parameters", [])
    path_names = [p["name"] for p in parameters if p["in"] == "path"]
    query = {
        p["name"]: _shaped(p.get("schema", {}), world, name=p["name"]).map(str)
        for p in parameters
        if p["in"] == "query"
    }
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries({name: world.id_like(name) | NOT_IDS for name in path_names}),
            "query": st.fixed_dictionaries({}, optional=query),
            "body": _shaped(body_schema, world) if body_schema else ANY_JSON,
            # Header values travel as ASCII.
            "key": st.none()
            | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=130)
            | st.uuids().map(str),
        }
    )


@pytest.fixture
def client(engine):
    with TestClient(create_api(), follow_redirects=False, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(engine, monkeypatch) -> World:
    return build_world(monkeypatch)


@pytest.mark.parametrize(("method", "path", "operation"), _OPERATIONS, ids=[f"{m} {p}" for m, p, _ in _OPERATIONS])
def test_random_input_gets_a_client_error_with_a_code_never_a_server_error(client, world, method, path, operation):
    # CI replays the same examples (a red build names a regression, not a lucky draw); elsewhere each
    # run explores new ones, FUZZ_EXAMPLES=N as deep as wanted.
    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
        derandomize=os.environ.get("CI") == "true",
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(request=_request(operation, world), account=st.sampled_from(sorted(world.api_tokens)))
    def check(request: dict[str, Any], account: str) -> None:
        url = path.format(**request["path"])
        headers = {"Authorization": f"Bearer {world.api_tokens[account]}"}
        if request["key"] is not None:
            headers["Idempotency-Key"] = request["key"]
        response = client.request(method, url, params=request["query"], json=request["body"], headers=headers)
        assert response.status_code < 500, f"{method} {url} -> {response.status_code}: {response.text[:300]}"
        if 400 <= response.status_code < 500:
            code = response.json().get("code")
            assert isinstance(code, str), f"{method} {url} -> {response.status_code} without a code"
            assert code

    check()


_PAGED = [
    (m, p) for m, p, operation in _OPERATIONS if any(q["name"] == "page" for q in operation.get("parameters", []))
]


def test_every_paged_list_is_found():
    assert len(_PAGED) >= 8


@pytest.mark.parametrize(("method", "path"), _PAGED, ids=[f"{m} {p}" for m, p in _PAGED])
def test_a_page_beyond_any_offset_is_refused_in_words_and_the_deepest_page_is_empty(client, world, method, path):
    """Found by the test above: page 461168601842738792 overflowed the database's OFFSET (a 500)."""
    url = path.format(**{name: str(uuid.uuid4()) for name in ("event_id", "wallet_id")})
    headers = {"Authorization": f"Bearer {world.api_tokens['super_admin']}"}
    refused = client.request(method, url, params={"page": str(2**63)}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_input"
    deepest = client.request(method, url, params={"page": str(MAX_PAGE)}, headers=headers)
    assert deepest.status_code in (200, 404), deepest.text
