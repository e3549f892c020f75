import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import build_engine, use_engine


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def test_health_reports_database_and_version(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["redis"] == "not_configured"
    assert body["version"]
    assert len(response.headers["x-request-id"]) >= 8


def test_health_is_503_when_database_is_down(client):
    use_engine(build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["database"] == "down"


def test_request_id_is_echoed_only_when_well_formed(client):
    assert client.get("/api/health", headers={"X-Request-ID": "trace-1234abcd"}).headers["x-request-id"] == (
        "trace-1234abcd"
    )
    forged = client.get("/api/health", headers={"X-Request-ID": "x\nlevel=error"}).headers["x-request-id"]
    assert forged != "x\nlevel=error"
    assert forged.isalnum()


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404


def test_docs_are_served_at_api_docs(client):
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/openapi.json").json()["info"]["title"] == "PayTime API"
