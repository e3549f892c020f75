"""Who may do what. Services call these with the actor re-derived from the session on every call."""

from __future__ import annotations

from paytime_app.errors import PermissionDenied
from paytime_app.models.users import Role, User

STAFF_READERS = frozenset({Role.VIEWER, Role.ADMIN, Role.SUPER_ADMIN})
USER_MANAGERS = frozenset({Role.ADMIN, Role.SUPER_ADMIN})
PAYMENT_MANAGERS = frozenset({Role.ADMIN, Role.SUPER_ADMIN})
JOB_MANAGERS = frozenset({Role.ADMIN, Role.SUPER_ADMIN})
# Roles an admin may hand out; only a super_admin grants or removes admin rights.
ROLES_ADMIN_MAY_GRANT = frozenset({Role.CUSTOMER, Role.SELLER, Role.MANAGER, Role.VIEWER})


def require_staff_reader(actor: User) -> None:
    """Raises PermissionDenied unless the actor is viewer, admin or super_admin."""
    if actor.role not in STAFF_READERS:
        raise PermissionDenied()


def require_user_manager(actor: User) -> None:
    """Raises PermissionDenied unless the actor is admin or super_admin (viewers read, never change)."""
    if actor.role not in USER_MANAGERS:
        raise PermissionDenied("Only admins can change users. Viewers can look but not change.")


def require_payment_manager(actor: User) -> None:
    """Raises PermissionDenied unless the actor is admin or super_admin (viewers read payments only)."""
    if actor.role not in PAYMENT_MANAGERS:
        raise PermissionDenied("Only admins can change payments. Viewers can look but not change.")


def require_job_manager(actor: User) -> None:
    """Raises PermissionDenied unless the actor is admin or super_admin (viewers read jobs only)."""
    if actor.role not in JOB_MANAGERS:
        raise PermissionDenied("Only admins can run a background job again. Viewers can look but not change.")


def may_manage(actor: User, target: User) -> bool:
    """Admins manage non-admin accounts; super_admins manage everyone; nobody manages themselves here."""
    if actor.id == target.id or actor.role not in USER_MANAGERS:
        return False
    return actor.role == Role.SUPER_ADMIN or target.role in ROLES_ADMIN_MAY_GRANT


def may_grant(actor: User, role: Role) -> bool:
    return actor.role == Role.SUPER_ADMIN or (actor.role == Role.ADMIN and role in ROLES_ADMIN_MAY_GRANT)
