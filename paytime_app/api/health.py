"""`GET /api/health`: what a load balancer and an operator need to know."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from paytime_app.db import get_engine
from paytime_app.services.health import check_health

router = APIRouter()


@router.get("/api/health", tags=["operations"])
def health() -> JSONResponse:
    report = check_health(engine=get_engine())
    body = {"status": report.status, "database": report.database, "redis": report.redis, "version": report.version}
    return JSONResponse(body, status_code=503 if report.status == "down" else 200)
