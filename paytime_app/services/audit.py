"""The audit log: every privileged action, with who, what, when and from where."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, func, or_, select

from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.users import User
from paytime_app.services.access import require_staff_reader
from paytime_app.services.paging import page_bounds


def record_audit(
    *,
    session: Session,
    action: str,
    actor: User | None,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    ip_address: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditLogEntry:
    """Append an entry in the caller's transaction, so it exists exactly when the action happened."""
    entry = AuditLogEntry(
        actor_id=actor.id if actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip_address=ip_address,
        data=data or {},
    )
    session.add(entry)
    return entry


def search_audit_log(
    *, session: Session, actor: User, query: str = "", page: int = 1, page_size: int = 50
) -> tuple[list[tuple[AuditLogEntry, User | None]], int]:
    """Newest entries first, filtered by action or actor email.

    Raises PermissionDenied unless the actor is staff.
    """
    require_staff_reader(actor)
    page, page_size = page_bounds(page, page_size)
    statement = select(AuditLogEntry, User).join(User, col(AuditLogEntry.actor_id) == User.id, isouter=True)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        statement = statement.where(or_(col(AuditLogEntry.action).ilike(pattern), col(User.email).ilike(pattern)))
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(
        statement.order_by(col(AuditLogEntry.created_at).desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return [(entry, user) for entry, user in rows], total
