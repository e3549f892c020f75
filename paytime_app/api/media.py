"""Uploaded media served with cache headers: event cover images.

A cover's URL carries its random name, which changes with every upload, so a published event's cover
is cached by everyone for a year. A draft's cover is the organizer's (and admins') only, like the draft:
it is read with their session cookie or access token, cached privately, and looks missing to others.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import FileResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import unit_of_work
from paytime_app.errors import DomainError, NotFound
from paytime_app.models.sessions import SessionKind
from paytime_app.services.covers import cover_path
from paytime_app.services.events import get_cover_file
from paytime_app.services.sessions import authenticate_token

router = APIRouter(prefix="/api/media", tags=["media"])
_bearer = HTTPBearer(auto_error=False)
PUBLIC_CACHE = "public, max-age=31536000, immutable"
PRIVATE_CACHE = "private, max-age=300"


def _viewer(session: Any, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Any:
    """Whoever the request proves to be, or None: an image is never refused for a stale cookie."""
    if credentials is not None:
        token, kind = credentials.credentials, SessionKind.API
    else:
        token, kind = request.cookies.get(SESSION_COOKIE), SessionKind.BROWSER
    if not token:
        return None
    try:
        return authenticate_token(session=session, token=token, kind=kind)[0]
    except DomainError:
        return None


@router.get("/events/{event_id}/{file_name}", response_class=FileResponse)
def event_cover(
    event_id: uuid.UUID,
    file_name: Annotated[str, Path(max_length=40)],
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> FileResponse:
    """An event's cover (`{name}.webp`, up to 1600 px) or its 640 x 360 thumbnail (`{name}-thumb.webp`)."""
    with unit_of_work() as session:
        key, thumb, public = get_cover_file(
            session=session, actor=_viewer(session, request, credentials), event_id=event_id, file_name=file_name
        )
    path = cover_path(key, thumb=thumb)
    if not path.is_file():
        raise NotFound("That image does not exist.")
    return FileResponse(
        path,
        media_type="image/webp",
        headers={
            "Cache-Control": PUBLIC_CACHE if public else PRIVATE_CACHE,
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
