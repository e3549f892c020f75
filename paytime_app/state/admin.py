"""Staff pages: users (admins change, viewers read), the audit log and background jobs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import reflex as rx

from paytime_app.errors import DomainError
from paytime_app.models.jobs import JobStatus
from paytime_app.models.users import Role
from paytime_app.services.audit import search_audit_log
from paytime_app.services.jobs import list_troubled_jobs, retry_dead_job
from paytime_app.services.paging import page_count
from paytime_app.services.users import (
    change_user_role,
    invite_user,
    reset_user_two_factor,
    search_users,
    set_user_active,
)
from paytime_app.settings import get_settings
from paytime_app.state.auth import AuthState

PAGE_SIZE = 25


class AdminUsersState(AuthState):
    rows: list[dict[str, str]] = []
    grantable_roles: list[str] = []
    query: str = ""
    role_filter: str = "all"
    page: int = 1
    total: int = 0
    total_pages: int = 1
    is_loading: bool = True
    error: str = ""
    notice: str = ""

    async def _fetch(self) -> None:
        role = Role(self.role_filter) if self.role_filter in Role.__members__.values() else None
        found = await self._call_as_viewer(
            search_users, query=self.query, role=role, page=self.page, page_size=PAGE_SIZE
        )
        self.total, self.total_pages, self.page = found.total, found.total_pages, found.page
        self.grantable_roles = [str(role) for role in found.grantable_roles]
        self.rows = [
            {
                "id": str(user.id),
                "name": user.display_name,
                "email": user.email,
                "role": str(user.role),
                "status": "active" if user.is_active else "disabled",
                "joined": user.created_at.strftime("%d %b %Y"),
                "manageable": "yes" if user.id in found.manageable_ids else "",
            }
            for user in found.users
        ]

    async def _reload(self) -> rx.event.EventSpec | None:
        self.is_loading = True
        try:
            return await self._refresh_staff_view(self._fetch)
        finally:
            self.is_loading = False

    @rx.event
    async def load_users(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.error = self.notice = ""
        await self._load_viewer()  # the header's name and links, on a direct visit too
        params = self.router.url.query_parameters
        self.query = params.get("q", "")[:100]
        self.role_filter = params.get("role", "all")
        self.page = int(params["page"]) if params.get("page", "").isdigit() else 1
        yield await self._reload()

    @rx.event
    async def search(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.query, self.page = str(form.get("q", ""))[:100], 1
        yield await self._reload()

    @rx.event
    async def filter_role(self, role: str) -> AsyncIterator[rx.event.EventSpec | None]:
        self.role_filter, self.page = str(role), 1
        yield await self._reload()

    @rx.event
    async def go_to_page(self, page: int) -> AsyncIterator[rx.event.EventSpec | None]:
        self.page = max(1, min(int(page), self.total_pages))
        yield await self._reload()

    async def _change(self, service: Callable[..., Any], user_id: str, success: str, **kwargs: Any) -> None:
        self.error = self.notice = ""
        try:
            await self._call_as_viewer(
                service, user_id=uuid.UUID(str(user_id)), ip_address=self.router.session.client_ip or None, **kwargs
            )
        except ValueError:
            self.error = "That user does not exist."
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = success
        await self._reload()

    @rx.event
    async def submit_new_user(self, form: dict[str, str]) -> None:
        self.error = self.notice = ""
        role = str(form.get("role", ""))
        if role not in Role.__members__.values():
            self.error = "Choose a role for the new account."
            return
        try:
            created = await self._call_as_viewer(
                invite_user,
                email=str(form.get("email", "")),
                display_name=str(form.get("name", "")),
                role=Role(role),
                base_url=get_settings().base_url,
                ip_address=self.router.session.client_ip or None,
            )
        except DomainError as error:
            self.error = error.message
            return
        self.notice = f"Account created for {created.email}; they were emailed a link to choose a password."
        await self._reload()

    @rx.event
    async def change_role(self, user_id: str, role: str) -> None:
        if role not in Role.__members__.values():
            self.error = "That role does not exist."
            return
        await self._change(change_user_role, user_id, "Role changed.", role=Role(role))

    @rx.event
    async def disable_user(self, user_id: str) -> None:
        await self._change(set_user_active, user_id, "Account disabled; its sessions have ended.", active=False)

    @rx.event
    async def enable_user(self, user_id: str) -> None:
        await self._change(set_user_active, user_id, "Account enabled.", active=True)

    @rx.event
    async def reset_two_factor(self, user_id: str) -> None:
        await self._change(reset_user_two_factor, user_id, "Two-factor authentication was reset.")


class StaffListMixin(rx.State, mixin=True):
    """A paged staff list: `_fetch` reads the current page, as the signed-in staff member."""

    page: int = 1
    total: int = 0
    is_loading: bool = True

    @rx.var
    def total_pages(self) -> int:
        return page_count(self.total, PAGE_SIZE)

    async def _fetch(self) -> None:
        raise NotImplementedError

    async def _reload(self) -> rx.event.EventSpec | None:
        self.is_loading = True
        try:
            return await self._refresh_staff_view(self._fetch)  # type: ignore[attr-defined]  AuthState's
        finally:
            self.is_loading = False

    @rx.event
    async def go_to_page(self, page: int) -> AsyncIterator[rx.event.EventSpec | None]:
        self.page = max(1, min(int(page), self.total_pages))
        yield await self._reload()


class AuditLogState(StaffListMixin, AuthState):
    entries: list[dict[str, str]] = []
    query: str = ""

    async def _fetch(self) -> None:
        rows, self.total = await self._call_as_viewer(
            search_audit_log, query=self.query, page=self.page, page_size=PAGE_SIZE
        )
        self.entries = [
            {
                "when": entry.created_at.strftime("%d %b %Y, %H:%M:%S UTC"),
                "action": entry.action,
                "actor": actor.email if actor else "system",
                "target": f"{entry.target_type or ''} {entry.target_id or ''}".strip(),
                "ip": entry.ip_address or "",
                "data": ", ".join(f"{key}: {value}" for key, value in entry.data.items()),
            }
            for entry, actor in rows
        ]

    @rx.event
    async def load_audit_log(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.query, self.page = self.router.url.query_parameters.get("q", "")[:100], 1
        await self._load_viewer()
        yield await self._reload()

    @rx.event
    async def search(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.query, self.page = str(form.get("q", ""))[:100], 1
        yield await self._reload()


class AdminJobsState(StaffListMixin, AuthState):
    """Background jobs that gave up or wait for another try; admins run a dead one again."""

    rows: list[dict[str, str]] = []
    error: str = ""
    notice: str = ""

    async def _fetch(self) -> None:
        jobs, self.total = await self._call_as_viewer(list_troubled_jobs, page=self.page, page_size=PAGE_SIZE)
        self.rows = [
            {
                "id": str(job.id),
                "kind": job.kind,
                "state": "gave up" if job.status == JobStatus.DEAD else "retrying",
                "attempts": f"{job.attempts} of {job.max_attempts}",
                "when": (
                    f"gave up {job.finished_at:%d %b %Y, %H:%M} UTC"
                    if job.status == JobStatus.DEAD and job.finished_at
                    else f"next try {job.run_at:%d %b %Y, %H:%M} UTC"
                ),
                "error": (job.last_error or "")[:300],
                "details": ", ".join(f"{key}: {value}" for key, value in job.payload.items()),
            }
            for job in jobs
        ]

    @rx.event
    async def load_jobs(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.error = self.notice = ""
        self.page = 1
        await self._load_viewer()
        yield await self._reload()

    @rx.event
    async def retry(self, job_id: str) -> AsyncIterator[rx.event.EventSpec | None]:
        self.error = self.notice = ""
        try:
            job = await self._call_as_viewer(
                retry_dead_job, job_id=uuid.UUID(str(job_id)), ip_address=self.router.session.client_ip or None
            )
        except ValueError:
            self.error = "That job does not exist."
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = f"The {job.kind} job will run again in a moment."
        yield await self._reload()
