"""The ASGI app `bench/webhook_ingest.py` serves: PayTime's real API plus a bare route on the same server.

`POST /bare` answers `{"ok": true}` through the same middleware, server and worker as the webhook
route, so the ratio between the two is what the webhook's own work costs.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from paytime_app.api import create_api
from paytime_app.observability import configure_logging
from paytime_app.settings import get_settings

settings = get_settings()
configure_logging(level=settings.log_level, json_output=settings.log_json)

app = create_api()


@app.post("/bare")
async def bare() -> JSONResponse:
    return JSONResponse({"ok": True})
