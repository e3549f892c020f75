"""IOUs: what I owe and what I'm owed, totals per currency and per friend, open one, settle it."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import amount_fields, callout
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table
from paytime_app.state.ious import IousState

STATUS_FILTERS = [
    ("all", "All"),
    ("pending", "Pending"),
    ("overdue", "Overdue"),
    ("paid", "Paid"),
    ("cancelled", "Cancelled"),
]
STATUS_COLORS = {"pending": "amber", "overdue": "red", "paid": "green", "cancelled": "gray"}


def total_card(title: str, amounts: rx.Var, empty: str, tone: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(title, size="2", color=rx.color("gray", 11)),
            rx.cond(
                amounts.length() > 0,
                rx.hstack(
                    rx.foreach(
                        amounts, lambda amount: rx.text(amount, size="6", weight="bold", color=rx.color(tone, 11))
                    ),
                    spacing="4",
                    wrap="wrap",
                ),
                rx.text(empty, size="4", weight="medium", color=rx.color("gray", 10)),
            ),
            spacing="1",
        ),
        width="100%",
    )


def labelled(label: str, control: rx.Component, html_for: str = "") -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=html_for)
        if html_for
        else rx.text(label, size="2", weight="medium"),
        control,
        spacing="1",
        width="100%",
    )


def open_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("I owe a friend", size="4", as_="h2"),
                rx.cond(
                    IousState.friends.length() > 0,
                    rx.vstack(
                        labelled(
                            "Friend",
                            rx.select.root(
                                rx.select.trigger(
                                    placeholder="Choose a friend", aria_label="Friend you owe", width="100%"
                                ),
                                rx.select.content(
                                    rx.foreach(IousState.friends, lambda f: rx.select.item(f["name"], value=f["id"]))
                                ),
                                name="lender_id",
                                required=True,
                            ),
                        ),
                        amount_fields(amount_id="iou-amount", placeholder="2500.00"),
                        labelled(
                            "Due date",
                            rx.input(
                                id="iou-due",
                                name="due_date",
                                type="date",
                                default_value=IousState.default_due,
                                min=IousState.min_due,
                                size="3",
                                width="100%",
                            ),
                            "iou-due",
                        ),
                        labelled(
                            "How you'll pay",
                            rx.radio_group.root(
                                rx.vstack(
                                    *[
                                        rx.hstack(
                                            rx.radio_group.item(value=value, id=f"method-{value}"),
                                            rx.el.label(label, html_for=f"method-{value}"),
                                            align="center",
                                        )
                                        for value, label in (
                                            ("cash", "Cash, in person"),
                                            ("wallet", "From my PayTime wallet"),
                                            ("auto_wallet", "Automatically from my wallet on the due date"),
                                        )
                                    ],
                                    spacing="1",
                                ),
                                name="method",
                                default_value="cash",
                            ),
                        ),
                        labelled(
                            "Note or meeting place",
                            rx.input(
                                id="iou-note",
                                name="note",
                                placeholder="Optional, e.g. Suya at Wuse market",
                                max_length=200,
                                size="3",
                                width="100%",
                            ),
                            "iou-note",
                        ),
                        rx.button("Record IOU", type="submit", size="3", width="100%"),
                        spacing="3",
                        width="100%",
                    ),
                    rx.vstack(
                        rx.text("You can only owe friends. Add a friend first.", size="2", color=rx.color("gray", 10)),
                        rx.link(rx.button("Find friends", variant="soft"), href=routes.FRIENDS),
                        spacing="2",
                    ),
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=IousState.submit_iou,
            reset_on_submit=True,
        ),
        width="100%",
    )


def action(label: str, flag: str, handler: rx.EventHandler, iou: rx.Var, **props: object) -> rx.Component:
    return rx.cond(
        iou[flag] != "",
        rx.button(label, size="1", on_click=handler(iou["id"]), aria_label=label + " " + iou["reference"], **props),
        rx.fragment(),
    )


def iou_row(iou: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(iou["who"], size="2", weight="medium"),
                rx.text(iou["reference"], " · ", iou["method"], size="1", color=rx.color("gray", 10)),
                rx.cond(iou["note"] != "", rx.text(iou["note"], size="1", color=rx.color("gray", 11)), rx.fragment()),
                spacing="0",
            )
        ),
        rx.table.cell(rx.text(iou["amount"], size="2", weight="bold", white_space="nowrap")),
        rx.table.cell(rx.text(iou["due"], size="2", white_space="nowrap")),
        rx.table.cell(rx.badge(iou["state"], color_scheme=rx.match(iou["status"], *STATUS_COLORS.items(), "gray"))),
        rx.table.cell(
            rx.hstack(
                action("Pay from wallet", "can_pay", IousState.pay, iou),
                action("Paid in cash", "can_claim_cash", IousState.claim_cash, iou, variant="soft"),
                action("Confirm cash", "can_confirm_cash", IousState.confirm_cash, iou, color_scheme="green"),
                action("Dispute", "can_confirm_cash", IousState.dispute_cash, iou, variant="soft", color_scheme="red"),
                action("Acknowledge", "can_acknowledge", IousState.acknowledge, iou, variant="soft"),
                action("Cancel", "can_cancel", IousState.cancel, iou, variant="ghost", color_scheme="gray"),
                spacing="2",
                wrap="wrap",
            )
        ),
    )


def list_section() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.tabs.root(
                rx.tabs.list(rx.tabs.trigger("I owe", value="owe"), rx.tabs.trigger("Owed to me", value="owed")),
                value=IousState.direction,
                on_change=IousState.show_direction,
            ),
            rx.spacer(),
            rx.select.root(
                rx.select.trigger(aria_label="Filter IOUs by status"),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in STATUS_FILTERS]),
                value=IousState.status_filter,
                on_change=IousState.filter_status,
            ),
            width="100%",
            align="center",
            wrap="wrap",
        ),
        rx.cond(
            IousState.ious.length() > 0,
            data_table(["Who", "Amount", "Due", "Status", ""], IousState.ious, iou_row),
            empty_state(
                "handshake",
                rx.cond(IousState.direction == "owe", "You don't owe anyone", "Nobody owes you"),
                "IOUs you open, and those friends open with you, are listed here until they're settled.",
            ),
        ),
        spacing="3",
        width="100%",
    )


def per_friend() -> rx.Component:
    return rx.cond(
        IousState.by_friend.length() > 0,
        rx.vstack(
            rx.heading("Open balances by friend", size="3", as_="h3"),
            data_table(
                ["Friend", "I owe", "Owed to me"],
                IousState.by_friend,
                lambda row: rx.table.row(
                    rx.table.cell(row["name"]), rx.table.cell(row["owe"]), rx.table.cell(row["owed"])
                ),
            ),
            width="100%",
        ),
        rx.fragment(),
    )


def ious_page() -> rx.Component:
    return page_shell(
        page_header("IOUs", "Money between friends: who owes what, and by when."),
        callout(IousState.notice, "green", "check"),
        error_callout(IousState.error),
        rx.cond(
            IousState.is_loading,
            loading_rows(4),
            rx.vstack(
                rx.grid(
                    total_card("I owe", IousState.owe_totals, "Nothing", "amber"),
                    total_card("Owed to me", IousState.owed_totals, "Nothing", "green"),
                    columns=rx.breakpoints(initial="1", sm="2"),
                    spacing="3",
                    width="100%",
                ),
                rx.grid(
                    rx.vstack(
                        list_section(),
                        per_friend(),
                        spacing="4",
                        width="100%",
                        grid_column=rx.breakpoints(initial="auto", md="span 2"),
                    ),
                    open_form(),
                    columns=rx.breakpoints(initial="1", md="3"),
                    spacing="4",
                    width="100%",
                ),
                spacing="4",
                width="100%",
            ),
        ),
    )
