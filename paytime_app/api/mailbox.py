"""The dev mailbox's attachment downloads: rendered on request, for the message's recipient only."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from paytime_app.cookies import SESSION_COOKIE
from paytime_app.models.sessions import SessionKind
from paytime_app.services.mail import download_dev_attachment
from paytime_app.services.sessions import call_as_user

router = APIRouter(tags=["dev mailbox"])


@router.get("/api/downloads/mail/{mail_id}/attachments/{index}")
def dev_mail_attachment(mail_id: uuid.UUID, index: int, request: Request) -> Response:
    """An attachment of a dev-mailbox message; 404 for anyone but its recipient, and wherever SMTP is set."""
    filename, content_type, content = call_as_user(
        download_dev_attachment,
        token=request.cookies.get(SESSION_COOKIE),
        session_kind=SessionKind.BROWSER,
        mail_id=mail_id,
        index=index,
    )
    return Response(
        content,
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "private, no-store"},
    )
