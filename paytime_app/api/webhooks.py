"""`POST /api/webhooks/{provider}`: providers tell us what happened to a payment.

The signature is checked on the raw body before anything is parsed or written; a duplicate is a 200
no-op; a payment locked by someone else is a 503 so the provider retries later.
"""

from __future__ import annotations

import logging
from functools import cache, partial

from anyio import CapacityLimiter, to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from paytime_app.errors import DomainError
from paytime_app.services.payments import ingest_webhook

router = APIRouter(tags=["webhooks"])
logger = logging.getLogger("paytime.webhooks")

MAX_WEBHOOK_BYTES = 256 * 1024
# Webhooks are short database transactions: a few threads keep a worker's core busy, while dozens
# contending for the interpreter lock would spend their time handing it over. Excess requests wait
# in line on the event loop, which costs nothing.
WEBHOOK_THREADS = 6


@cache
def _webhook_threads() -> CapacityLimiter:
    return CapacityLimiter(WEBHOOK_THREADS)  # created on the worker's event loop, on first use


@router.post("/api/webhooks/{provider}")
async def receive_webhook(provider: str, request: Request) -> JSONResponse:
    raw_body = await request.body()
    if len(raw_body) > MAX_WEBHOOK_BYTES:
        return JSONResponse({"code": "payload_too_large", "message": "Webhook body too large."}, status_code=413)
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        outcome = await to_thread.run_sync(
            partial(ingest_webhook, provider=provider[:20], headers=headers, raw_body=raw_body),
            limiter=_webhook_threads(),
        )
    except DomainError as refusal:
        logger.warning(
            "webhook refused", extra={"provider": provider[:20], "code": refusal.code, "reason": refusal.message}
        )
        raise
    return JSONResponse({"status": outcome.status, "payment": outcome.payment_reference})
