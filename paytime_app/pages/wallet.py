"""Wallet: balances per currency, money on hold, history, recent payments, and top-up."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import amount_fields, callout
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table, pager
from paytime_app.pages.transfers import send_money_card
from paytime_app.state.wallet import WalletState

STATUS_COLORS = {"succeeded": "green", "failed": "red", "cancelled": "gray", "processing": "amber", "pending": "amber"}


def balance_card(wallet: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(wallet["label"], size="2", color=rx.color("gray", 11)),
                rx.spacer(),
                rx.badge(wallet["currency"], variant="surface"),
                width="100%",
            ),
            rx.text(wallet["balance"], size="6", weight="bold"),
            rx.cond(
                wallet["held"] != "",
                rx.text("On hold: ", wallet["held"], size="1", color=rx.color("gray", 10)),
                rx.text("Nothing on hold", size="1", color=rx.color("gray", 9)),
            ),
            spacing="1",
            width="100%",
        ),
        width="100%",
    )


def top_up_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("Add money", size="4", as_="h2"),
                error_callout(WalletState.topup_error),
                amount_fields(amount_id="amount"),
                rx.vstack(
                    rx.text("Into", size="2", weight="medium"),
                    rx.radio_group.root(
                        rx.hstack(
                            rx.radio_group.item(value="wallet_topup", id="into-wallet"),
                            rx.el.label("Wallet", html_for="into-wallet"),
                            rx.radio_group.item(value="call_credits", id="into-credits"),
                            rx.el.label("Call credits", html_for="into-credits"),
                            align="center",
                            spacing="2",
                        ),
                        name="purpose",
                        default_value="wallet_topup",
                    ),
                    spacing="1",
                ),
                rx.vstack(
                    rx.text("Pay with", size="2", weight="medium"),
                    rx.radio_group.root(
                        rx.foreach(
                            WalletState.providers,
                            lambda provider: rx.hstack(
                                rx.radio_group.item(value=provider["slug"], id="pay-" + provider["slug"]),
                                rx.el.label(provider["label"], html_for="pay-" + provider["slug"]),
                                align="center",
                            ),
                        ),
                        name="provider",
                        default_value="mock",
                    ),
                    spacing="1",
                ),
                rx.button("Continue to payment", type="submit", size="3", width="100%", loading=WalletState.is_paying),
                spacing="3",
                width="100%",
            ),
            on_submit=WalletState.submit_top_up,
            reset_on_submit=False,
        ),
        width="100%",
    )


def history_row(line: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.text(line["when"], size="2", white_space="nowrap")),
        rx.table.cell(
            rx.vstack(
                rx.text(line["what"], size="2"),
                rx.text(line["reference"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(
            rx.text(
                line["amount"],
                size="2",
                weight="medium",
                white_space="nowrap",
                color=rx.cond(line["direction"] == "in", rx.color("green", 11), rx.color("gray", 12)),
            )
        ),
    )


def payment_row(payment: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(payment["reference"], size="2", weight="medium"),
                rx.text(payment["when"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(rx.text(payment["amount"], size="2", white_space="nowrap")),
        rx.table.cell(
            rx.badge(payment["status"], color_scheme=rx.match(payment["status"], *STATUS_COLORS.items(), "gray"))
        ),
        rx.table.cell(
            rx.cond(
                payment["status"] == "processing",
                rx.button(
                    "Verify",
                    size="1",
                    variant="soft",
                    on_click=WalletState.verify(payment["id"]),
                    aria_label="Verify " + payment["reference"],
                ),
                rx.text(payment["reason"], size="1", color=rx.color("gray", 10)),
            ),
        ),
    )


def history_filter() -> rx.Component:
    return rx.select.root(
        rx.select.trigger(aria_label="Which wallet"),
        rx.select.content(
            rx.select.item("Wallet · NGN", value="wallet:NGN"),
            rx.select.item("Wallet · USD", value="wallet:USD"),
            rx.select.item("Call credits · NGN", value="call_credits:NGN"),
            rx.select.item("Call credits · USD", value="call_credits:USD"),
        ),
        value=WalletState.history_kind + ":" + WalletState.history_currency,
        on_change=WalletState.show_history,
    )


def wallet_page() -> rx.Component:
    return page_shell(
        page_header("Wallet", "Your balances, what's on hold, and every movement."),
        callout(WalletState.notice, "blue", "info"),
        rx.cond(
            WalletState.is_loading,
            loading_rows(4),
            rx.vstack(
                rx.grid(
                    rx.foreach(WalletState.wallets, balance_card),
                    columns=rx.breakpoints(initial="1", sm="2", md="4"),
                    spacing="3",
                    width="100%",
                ),
                rx.grid(
                    send_money_card(),
                    top_up_form(),
                    rx.card(
                        rx.vstack(
                            rx.heading("Recent payments", size="4", as_="h2"),
                            rx.cond(
                                WalletState.payments.length() > 0,
                                data_table(["Payment", "Amount", "Status", ""], WalletState.payments, payment_row),
                                rx.text(
                                    "No payments yet. Add money to see them here.", size="2", color=rx.color("gray", 10)
                                ),
                            ),
                            spacing="3",
                            width="100%",
                        ),
                        width="100%",
                    ),
                    columns=rx.breakpoints(initial="1", md="2", lg="3"),
                    spacing="3",
                    width="100%",
                ),
                rx.hstack(
                    rx.heading("History", size="4", as_="h2"),
                    rx.spacer(),
                    history_filter(),
                    width="100%",
                    align="center",
                ),
                rx.cond(
                    WalletState.history.length() > 0,
                    rx.vstack(
                        data_table(["When", "What", "Amount"], WalletState.history, history_row),
                        pager(WalletState.history_page, WalletState.history_pages, WalletState.go_to_history_page),
                        width="100%",
                    ),
                    empty_state(
                        "receipt",
                        "Nothing here yet",
                        "Top-ups, transfers, bookings and calls will be listed here with what each was for.",
                    ),
                ),
                spacing="4",
                width="100%",
            ),
        ),
    )
