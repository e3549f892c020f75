"""The ASGI app `bench/webhook_ingest.py` serves: PayTime's real API plus a bare route on the same server.

`POST /bare` answers `{"ok": true}` through the same middleware, server and worker as the webhook
route, so the ratio between the two is what the webhook's own work costs. Like the webhook route (the
first of the app's routes), it is matched first: neither pays for trying the other routes' patterns.
At start-up the worker settles its heap as the app's workers do (`steady_heap`, a lifespan task of
the Reflex app): what start-up built is frozen out of the garbage collector's full collections.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from paytime_app.api import create_api
from paytime_app.lifespan import steady_heap
from paytime_app.observability import configure_logging
from paytime_app.settings import get_settings

settings = get_settings()
configure_logging(level=settings.log_level, json_output=settings.log_json)

app = create_api()
app.router.lifespan_context = lambda _app: steady_heap()


@app.post("/bare")
async def bare() -> JSONResponse:
    return JSONResponse({"ok": True})


app.router.routes.insert(0, app.router.routes.pop())  # the route just added, moved to the front
