"""The FastAPI app mounted around Reflex: webhooks, auth callbacks, downloads, REST v1, health."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from paytime_app import __version__
from paytime_app.api import (
    health,
    mailbox,
    media,
    v1_admin_payments,
    v1_auth,
    v1_bookings,
    v1_calls,
    v1_events,
    v1_friends,
    v1_ious,
    v1_money,
    v1_transfers,
    web_auth,
    webhooks,
)
from paytime_app.api.middleware import RequestIdMiddleware
from paytime_app.errors import DomainError

logger = logging.getLogger("paytime.api")


async def _domain_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    headers = {}
    if error.status_code == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if "retry_after_seconds" in error.details:
        headers["Retry-After"] = str(error.details["retry_after_seconds"])
    return JSONResponse(error.to_dict(), status_code=error.status_code, headers=headers)


async def _invalid_request(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields = [
        {"field": ".".join(str(part) for part in item["loc"][1:]), "message": item["msg"]} for item in error.errors()
    ]
    return JSONResponse(
        {"code": "invalid_input", "message": "Some fields are not valid.", "details": {"fields": fields}},
        status_code=422,
    )


async def _database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    # The database refused or dropped the connection (for example max_connections reached): a
    # retryable 503, not a 500; the transaction was rolled back, so nothing was half-written.
    logger.warning("database unavailable", exc_info=error)
    return JSONResponse(
        {"code": "database_unavailable", "message": "We are busy right now. Please try again in a moment."},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=error)
    return JSONResponse({"code": "internal_error", "message": "Something went wrong on our side."}, status_code=500)


def create_api() -> FastAPI:
    api = FastAPI(
        title="PayTime API", version=__version__, docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None
    )
    api.add_exception_handler(DomainError, _domain_error)
    api.add_exception_handler(RequestValidationError, _invalid_request)
    api.add_exception_handler(OperationalError, _database_unavailable)
    api.add_exception_handler(Exception, _unexpected)
    api.add_middleware(RequestIdMiddleware)
    # Routes are matched in order, by trying each one's pattern (a few µs a route here): the busiest
    # machine traffic comes first instead of paying for ~80 patterns before its own: webhooks, then a
    # ticket drop's POST /api/v1/bookings. Neither router shares a path with another
    # (tests/api/test_route_matrix.py checks), so the order changes nothing else.
    api.include_router(webhooks.router)
    api.include_router(v1_bookings.router)
    api.include_router(health.router)
    api.include_router(web_auth.router)
    api.include_router(v1_auth.router)
    api.include_router(v1_money.router)
    api.include_router(v1_calls.router)
    api.include_router(v1_friends.router)
    api.include_router(v1_transfers.router)
    api.include_router(v1_ious.router)
    api.include_router(v1_events.router)
    api.include_router(v1_admin_payments.router)
    api.include_router(mailbox.router)
    api.include_router(media.router)
    return api
