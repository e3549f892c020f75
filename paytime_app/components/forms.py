"""Form pieces: labelled fields, submit buttons with a busy state, callouts, the auth card."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes


def field(
    label: str,
    name: str,
    *,
    type_: str = "text",
    placeholder: str = "",
    auto_complete: str = "",
    required: bool = True,
    hint: str = "",
    **props: object,
) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium"), html_for=name),
        rx.input(
            id=name,
            name=name,
            type=type_,
            placeholder=placeholder,
            auto_complete=auto_complete,
            required=required,
            size="3",
            width="100%",
            **props,
        ),
        rx.cond(hint != "", rx.text(hint, size="1", color=rx.color("gray", 10)), rx.fragment()),
        spacing="1",
        width="100%",
    )


def submit_button(label: str, busy: rx.Var[bool], **props: object) -> rx.Component:
    return rx.button(label, type="submit", size="3", width="100%", loading=busy, disabled=busy, **props)


def callout(message: rx.Var | str, tone: rx.Var | str = "blue", icon: str = "info") -> rx.Component:
    """A notice; a state's empty message shows nothing."""
    shown = rx.callout(message, icon=icon, color_scheme=tone, role="status", width="100%")
    return rx.cond(message != "", shown, rx.fragment()) if isinstance(message, rx.Var) else shown


def auth_card(title: str, subtitle: str | rx.Var, *children: rx.Component) -> rx.Component:
    """A centred card on a quiet background: sign in, sign up, reset."""
    return rx.center(
        rx.vstack(
            rx.link(
                rx.hstack(
                    rx.icon("wallet-cards", size=28, color=rx.color("accent", 9)),
                    rx.heading("PayTime", size="6"),
                    align="center",
                    spacing="2",
                ),
                href=routes.HOME,
                underline="none",
                color=rx.color("gray", 12),
            ),
            rx.card(
                rx.vstack(
                    rx.heading(title, size="6", as_="h1"),
                    rx.text(subtitle, color=rx.color("gray", 11), size="2"),
                    *children,
                    spacing="4",
                    width="100%",
                ),
                size="4",
                width="100%",
            ),
            align="center",
            spacing="5",
            width="100%",
            max_width="420px",
        ),
        min_height="100vh",
        padding=["24px 12px", "48px 16px"],
        background=rx.color("gray", 2),
    )


def server_link(child: rx.Component, href: str | rx.Var, **props: object) -> rx.Component:
    """A link to an API route: a full page load (router links would never reach the server)."""
    # Reflex renders anchors as router links; reloadDocument makes the browser fetch the URL itself.
    return rx.el.a(child, href=href, custom_attrs={"reloadDocument": True}, **props)


def search_form(
    *, value: rx.Var, placeholder: str, label: str, on_submit: rx.EventHandler, **props: object
) -> rx.Component:
    """A one-field search that submits its `q` to `on_submit` and keeps what was typed."""
    return rx.form(
        rx.hstack(
            rx.input(name="q", placeholder=placeholder, default_value=value, aria_label=label, flex="1", min_width="0"),
            rx.button("Search", type="submit"),
            width="100%",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
        **props,
    )


def choice(
    options: list[str], *, name: str, label: str, default: str, size: str = "2", **trigger_props: object
) -> rx.Component:
    """A form select whose button carries its accessible name.

    The one-call `rx.select` puts `aria_label` and `id` on Radix's root, which renders nothing, so
    screen readers announced an unnamed combobox and labels pointed at no element.
    """
    return rx.select.root(
        rx.select.trigger(aria_label=label, **trigger_props),
        rx.select.content(*[rx.select.item(option, value=option) for option in options]),
        name=name,
        default_value=default,
        size=size,
    )


def amount_fields(*, amount_id: str, label: str = "Amount", placeholder: str = "5000.00") -> rx.Component:
    """An amount typed in major units (`amount`) beside its currency (`currency`), for money forms."""
    return rx.hstack(
        rx.vstack(
            rx.el.label(rx.text(label, size="2", weight="medium"), html_for=amount_id),
            rx.input(
                id=amount_id,
                name="amount",
                placeholder=placeholder,
                input_mode="decimal",
                required=True,
                size="3",
                width="100%",
            ),
            spacing="1",
            flex="2",
            min_width="140px",
        ),
        rx.vstack(
            rx.el.label(rx.text("Currency", size="2", weight="medium"), html_for=f"{amount_id}-currency"),
            choice(
                ["NGN", "USD"], name="currency", label="Currency", default="NGN", size="3", id=f"{amount_id}-currency"
            ),
            spacing="1",
            flex="1",
        ),
        width="100%",
        wrap="wrap",
    )
