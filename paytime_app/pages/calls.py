"""Calls: buy credits, place a call, answer or decline, watch the running cost, see the history."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, choice
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table
from paytime_app.state.calls import CallsState

STATUS_FILTERS = [
    ("all", "All calls"),
    ("ended", "Ended"),
    ("missed", "Missed"),
    ("declined", "Declined"),
    ("cancelled", "Cancelled"),
]


def live_call_panel() -> rx.Component:
    return rx.cond(
        CallsState.live_call_id != "",
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.icon("phone-call", size=22, color=rx.color("accent", 10)),
                    rx.heading(
                        rx.match(
                            CallsState.live_status,
                            ("active", "On a call"),
                            ("ringing", rx.cond(CallsState.live_role == "callee", "Incoming call", "Ringing…")),
                            "Call",
                        ),
                        size="5",
                        as_="h2",
                    ),
                    align="center",
                ),
                rx.cond(
                    CallsState.live_status == "active",
                    rx.hstack(
                        rx.text(CallsState.running_time, size="7", weight="bold", aria_label="Call time"),
                        rx.text(
                            CallsState.running_cost, size="5", color=rx.color("gray", 11), aria_label="Cost so far"
                        ),
                        align="baseline",
                        spacing="4",
                    ),
                    rx.fragment(),
                ),
                rx.hstack(
                    rx.cond(
                        (CallsState.live_status == "ringing") & (CallsState.live_role == "callee"),
                        rx.fragment(
                            rx.button("Answer", color_scheme="green", size="3", on_click=CallsState.answer),
                            rx.button(
                                "Decline", color_scheme="red", variant="soft", size="3", on_click=CallsState.decline
                            ),
                        ),
                        rx.button("Hang up", color_scheme="red", size="3", on_click=CallsState.hang_up),
                    ),
                    spacing="3",
                ),
                spacing="3",
            ),
            size="3",
            width="100%",
            border=f"2px solid {rx.color('accent', 7)}",
        ),
        rx.fragment(),
    )


def place_call_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Make a call", size="4", as_="h2"),
                rx.el.label(rx.text("Who", size="2", weight="medium"), html_for="callee"),
                rx.input(
                    id="callee",
                    name="callee",
                    placeholder="Their email, or a phone number like +2348012345678",
                    required=True,
                    size="3",
                    width="100%",
                ),
                rx.hstack(
                    choice(["audio", "video"], name="call_type", label="Call type", default="audio"),
                    choice(["NGN", "USD"], name="currency", label="Pay in", default="NGN"),
                    rx.button("Call", type="submit", size="3", flex="1"),
                    width="100%",
                ),
                rx.text(
                    "You need credits for at least one minute. You pay per second of the answered call.",
                    size="1",
                    color=rx.color("gray", 10),
                ),
                spacing="2",
                width="100%",
            ),
            on_submit=CallsState.submit_call,
            reset_on_submit=False,
        ),
        width="100%",
    )


def credits_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Call credits", size="4", as_="h2"),
            rx.foreach(
                CallsState.credits,
                lambda credit: rx.hstack(
                    rx.badge(credit["currency"], variant="surface"),
                    rx.text(credit["balance"], size="5", weight="bold"),
                    rx.cond(
                        credit["held"] != "",
                        rx.text("reserved ", credit["held"], size="1", color=rx.color("gray", 10)),
                        rx.fragment(),
                    ),
                    align="center",
                ),
            ),
            rx.form(
                rx.hstack(
                    rx.input(
                        name="amount",
                        placeholder="Amount",
                        aria_label="Credits to buy",
                        input_mode="decimal",
                        required=True,
                        flex="1",
                        min_width="0",
                    ),
                    choice(["NGN", "USD"], name="currency", label="Credits currency", default="NGN"),
                    rx.button("Buy from wallet", type="submit", variant="soft"),
                    width="100%",
                    wrap="wrap",
                ),
                on_submit=CallsState.buy_credits,
                reset_on_submit=True,
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def call_row(call: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(call["when"], size="2", white_space="nowrap")),
        rx.table.cell(
            rx.hstack(
                rx.icon(rx.cond(call["direction"] == "out", "phone-outgoing", "phone-incoming"), size=16),
                rx.text(call["type"], size="2"),
            )
        ),
        rx.table.cell(rx.badge(call["status"])),
        rx.table.cell(rx.text(call["cost"], size="2")),
    )


def calls_page() -> rx.Component:
    return page_shell(
        page_header("Calls", "Prepaid calls billed by the second."),
        callout(CallsState.notice, "blue", "info"),
        error_callout(CallsState.error),
        rx.cond(
            CallsState.is_loading,
            loading_rows(3),
            rx.vstack(
                live_call_panel(),
                rx.grid(
                    place_call_form(),
                    credits_card(),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="3",
                    width="100%",
                ),
                rx.hstack(
                    rx.heading("History", size="4", as_="h2"),
                    rx.spacer(),
                    rx.select.root(
                        rx.select.trigger(aria_label="Filter calls by status"),
                        rx.select.content(*[rx.select.item(label, value=value) for value, label in STATUS_FILTERS]),
                        value=CallsState.status_filter,
                        on_change=CallsState.filter_status,
                    ),
                    width="100%",
                    align="center",
                ),
                rx.cond(
                    CallsState.calls.length() > 0,
                    data_table(["When", "Call", "Status", "Cost"], CallsState.calls, call_row),
                    empty_state(
                        "phone",
                        "No calls yet",
                        "Calls you make and receive will be listed here with their duration and cost.",
                    ),
                ),
                rx.cond(
                    CallsState.totals.length() > 0,
                    rx.vstack(
                        rx.heading("Monthly totals", size="3", as_="h3"),
                        data_table(
                            ["Month", "Calls", "Time", "Cost"],
                            CallsState.totals,
                            lambda total: rx.table.row(
                                rx.table.cell(total["month"]),
                                rx.table.cell(total["calls"]),
                                rx.table.cell(total["minutes"]),
                                rx.table.cell(total["cost"]),
                            ),
                        ),
                        width="100%",
                    ),
                    rx.fragment(),
                ),
                spacing="4",
                width="100%",
            ),
        ),
    )
