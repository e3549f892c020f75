"""Staff pages: users, the audit log and background jobs."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, field, search_form
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table, pager
from paytime_app.state.admin import AdminJobsState, AdminUsersState, AuditLogState
from paytime_app.state.auth import AuthState

ROLE_FILTERS = ["all", "customer", "seller", "manager", "viewer", "admin", "super_admin"]


def user_actions(row: rx.Var) -> rx.Component:
    return rx.cond(
        row["manageable"] == "yes",
        rx.hstack(
            rx.select.root(
                rx.select.trigger(aria_label="Role for " + row["email"]),
                rx.select.content(
                    rx.foreach(AdminUsersState.grantable_roles, lambda role: rx.select.item(role, value=role))
                ),
                value=row["role"],
                size="1",
                on_change=lambda role: AdminUsersState.change_role(row["id"], role),
            ),
            rx.cond(
                row["status"] == "active",
                rx.button(
                    "Disable",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    on_click=AdminUsersState.disable_user(row["id"]),
                    aria_label="Disable " + row["email"],
                ),
                rx.button(
                    "Enable",
                    size="1",
                    variant="soft",
                    on_click=AdminUsersState.enable_user(row["id"]),
                    aria_label="Enable " + row["email"],
                ),
            ),
            rx.button(
                "Reset 2FA",
                size="1",
                variant="ghost",
                on_click=AdminUsersState.reset_two_factor(row["id"]),
                aria_label="Reset 2FA for " + row["email"],
            ),
            spacing="2",
            wrap="wrap",
        ),
        rx.text("—", color=rx.color("gray", 9)),
    )


def user_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(row["name"], weight="medium"),
                rx.text(row["email"], size="1", color=rx.color("gray", 10)),
                spacing="1",
            )
        ),
        rx.table.cell(rx.badge(row["role"], variant="soft")),
        rx.table.cell(rx.badge(row["status"], color_scheme=rx.cond(row["status"] == "active", "green", "red"))),
        rx.table.cell(rx.text(row["joined"], size="2")),
        rx.table.cell(user_actions(row)),
    )


def new_user_form() -> rx.Component:
    """Admins create an account with a role; its owner gets an emailed link to choose a password."""
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Add a user", size="3"),
                rx.flex(
                    rx.box(field("Name", "name", auto_complete="off"), flex="1", min_width="180px"),
                    rx.box(field("Email", "email", type_="email", auto_complete="off"), flex="1", min_width="220px"),
                    rx.vstack(
                        rx.el.label(rx.text("Role", size="2", weight="medium")),
                        rx.select.root(
                            rx.select.trigger(aria_label="Role of the new user", placeholder="Choose a role"),
                            rx.select.content(
                                rx.foreach(
                                    AdminUsersState.grantable_roles,
                                    lambda role: rx.select.item(role.replace("_", " "), value=role),
                                )
                            ),
                            name="role",
                        ),
                        spacing="1",
                    ),
                    gap="12px",
                    wrap="wrap",
                    align="end",
                    width="100%",
                ),
                rx.button("Add user", type="submit"),
                spacing="3",
                width="100%",
            ),
            on_submit=AdminUsersState.submit_new_user,
            reset_on_submit=True,
        ),
        width="100%",
    )


def admin_users_page() -> rx.Component:
    return page_shell(
        page_header("Users", "Search accounts, change roles, disable access. Viewers can look but not change."),
        callout(AdminUsersState.notice, "green", "circle-check"),
        error_callout(AdminUsersState.error),
        rx.cond(AdminUsersState.grantable_roles.length() > 0, new_user_form(), rx.fragment()),
        rx.hstack(
            search_form(
                value=AdminUsersState.query,
                placeholder="Name or email",
                label="Search users",
                on_submit=AdminUsersState.search,
                flex="1",
                min_width="220px",
            ),
            rx.select.root(
                rx.select.trigger(aria_label="Filter by role"),
                rx.select.content(*[rx.select.item(role.replace("_", " "), value=role) for role in ROLE_FILTERS]),
                value=AdminUsersState.role_filter,
                on_change=AdminUsersState.filter_role,
            ),
            width="100%",
            wrap="wrap",
            margin_y="16px",
        ),
        rx.cond(
            AdminUsersState.is_loading,
            loading_rows(5),
            rx.cond(
                AdminUsersState.rows.length() > 0,
                rx.vstack(
                    rx.text(AdminUsersState.total, " users", size="2", color=rx.color("gray", 11)),
                    data_table(
                        ["User", "Role", "Status", "Joined", rx.cond(AuthState.role == "viewer", "", "Actions")],
                        AdminUsersState.rows,
                        user_row,
                    ),
                    pager(AdminUsersState.page, AdminUsersState.total_pages, AdminUsersState.go_to_page),
                    width="100%",
                ),
                empty_state("user-search", "No users match", "Try another name or email, or clear the role filter."),
            ),
        ),
    )


def audit_row(entry: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(entry["when"], size="2", white_space="nowrap")),
        rx.table.cell(rx.code(entry["action"])),
        rx.table.cell(rx.text(entry["actor"], size="2")),
        rx.table.cell(rx.text(entry["target"], size="1", color=rx.color("gray", 11))),
        rx.table.cell(rx.text(entry["ip"], size="1")),
        rx.table.cell(rx.text(entry["data"], size="1", color=rx.color("gray", 11))),
    )


def audit_log_page() -> rx.Component:
    return page_shell(
        page_header("Audit log", "Every privileged action: who, what, when and from where."),
        search_form(
            value=AuditLogState.query,
            placeholder="Action or actor email",
            label="Search the audit log",
            on_submit=AuditLogState.search,
            width="100%",
            margin_bottom="16px",
        ),
        rx.cond(
            AuditLogState.is_loading,
            loading_rows(5),
            rx.cond(
                AuditLogState.entries.length() > 0,
                rx.vstack(
                    data_table(
                        ["When", "Action", "Who", "Target", "From", "Details"], AuditLogState.entries, audit_row
                    ),
                    pager(AuditLogState.page, AuditLogState.total_pages, AuditLogState.go_to_page),
                    width="100%",
                ),
                empty_state(
                    "scroll-text",
                    "Nothing logged yet",
                    "Role changes, disabled accounts, 2FA resets and key rotations will appear here.",
                ),
            ),
        ),
    )


def job_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.code(row["kind"]),
                rx.text(row["details"], size="1", color=rx.color("gray", 10)),
                spacing="1",
            )
        ),
        rx.table.cell(
            rx.vstack(
                rx.badge(row["state"], color_scheme=rx.cond(row["state"] == "gave up", "red", "amber")),
                rx.text(row["attempts"], " attempts", size="1", color=rx.color("gray", 10), white_space="nowrap"),
                spacing="1",
            )
        ),
        rx.table.cell(rx.text(row["when"], size="2")),
        rx.table.cell(rx.text(row["error"], size="1", color=rx.color("gray", 11), word_break="break-word")),
        rx.table.cell(
            rx.cond(
                (row["state"] == "gave up") & (AuthState.role != "viewer"),
                rx.button(
                    "Run again",
                    size="1",
                    variant="soft",
                    white_space="nowrap",
                    on_click=AdminJobsState.retry(row["id"]),
                    aria_label="Run again " + row["kind"],
                ),
                rx.fragment(),
            )
        ),
    )


def admin_jobs_page() -> rx.Component:
    return page_shell(
        page_header(
            "Background jobs",
            "Work that failed: retrying with backoff, or given up after its last attempt. "
            "Run a job again once its cause is fixed.",
        ),
        callout(AdminJobsState.notice, "green", "circle-check"),
        error_callout(AdminJobsState.error),
        rx.cond(
            AdminJobsState.is_loading,
            loading_rows(4),
            rx.cond(
                AdminJobsState.rows.length() > 0,
                rx.vstack(
                    rx.text(
                        rx.cond(
                            AdminJobsState.total == 1,
                            "1 job needs attention",
                            AdminJobsState.total.to_string() + " jobs need attention",
                        ),
                        size="2",
                        color=rx.color("gray", 11),
                    ),
                    data_table(["Job", "State", "When", "Last error", ""], AdminJobsState.rows, job_row),
                    pager(AdminJobsState.page, AdminJobsState.total_pages, AdminJobsState.go_to_page),
                    width="100%",
                ),
                empty_state(
                    "circle-check",
                    "All background jobs are healthy",
                    "Mail, refunds, hold expiries and reconciliation run on their own; failures show up here.",
                ),
            ),
        ),
    )
