"""The mock provider's hosted checkout: a stand-in for Stripe's or Monnify's page in test mode."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import error_callout
from paytime_app.components.forms import auth_card
from paytime_app.state.checkout import MockCheckoutState


def mock_checkout_page() -> rx.Component:
    return auth_card(
        "Test payment",
        "PayTime test mode: no real money moves. Choose what the payment provider should answer.",
        rx.cond(
            MockCheckoutState.is_loading,
            rx.hstack(rx.spinner(), rx.text("Loading…")),
            rx.cond(
                MockCheckoutState.error != "",
                error_callout(MockCheckoutState.error),
                rx.vstack(
                    rx.text(MockCheckoutState.description, size="2", color=rx.color("gray", 11)),
                    rx.text(MockCheckoutState.amount, size="8", weight="bold"),
                    rx.cond(
                        MockCheckoutState.settled,
                        rx.text("This payment was already answered.", size="2"),
                        rx.vstack(
                            rx.button(
                                "Pay",
                                size="3",
                                width="100%",
                                on_click=MockCheckoutState.pay,
                                loading=MockCheckoutState.is_paying,
                            ),
                            rx.button(
                                "Fail payment",
                                size="3",
                                width="100%",
                                variant="soft",
                                color_scheme="red",
                                on_click=MockCheckoutState.fail,
                                disabled=MockCheckoutState.is_paying,
                            ),
                            width="100%",
                        ),
                    ),
                    spacing="3",
                    width="100%",
                ),
            ),
        ),
    )
