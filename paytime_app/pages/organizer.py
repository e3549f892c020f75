"""Sellers: apply to sell, the organizer dashboard and one event's management, and the approval page."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, search_form, server_link
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table
from paytime_app.pages.events import status_badge
from paytime_app.state.organizer import AdminSellersState, OrganizerEventState, OrganizerState, SellState

VENUE_TYPES = ["event", "bar", "sports", "hotel", "other"]


def labelled(label: str, control: rx.Component) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control, spacing="1", width="100%")


def sell_page() -> rx.Component:
    return page_shell(
        page_header("Sell tickets on PayTime", "Tell us who you are; a PayTime admin reviews every organizer."),
        callout(SellState.notice, "green", "check"),
        error_callout(SellState.error),
        rx.cond(
            SellState.is_loading,
            loading_rows(2),
            rx.cond(
                SellState.can_sell,
                empty_state(
                    "store",
                    "You can sell tickets",
                    "Create your first event from the organizer dashboard.",
                    rx.link(rx.button("Open the dashboard"), href=routes.ORGANIZER),
                ),
                rx.vstack(
                    rx.cond(
                        SellState.status == "pending",
                        callout(
                            "Your application for " + SellState.organisation + " is waiting for review.",
                            "amber",
                            "hourglass",
                        ),
                        rx.fragment(),
                    ),
                    rx.cond(
                        SellState.status == "rejected",
                        callout("Your last application was not approved: " + SellState.reason, "red", "circle-x"),
                        rx.fragment(),
                    ),
                    rx.cond(
                        SellState.status != "pending",
                        rx.card(
                            rx.form(
                                rx.vstack(
                                    labelled(
                                        "Organisation name",
                                        rx.input(
                                            name="organisation",
                                            required=True,
                                            aria_label="Organisation name",
                                            width="100%",
                                        ),
                                    ),
                                    labelled(
                                        "Contact email",
                                        rx.input(
                                            name="contact_email",
                                            type="email",
                                            required=True,
                                            aria_label="Contact email",
                                            width="100%",
                                        ),
                                    ),
                                    labelled(
                                        "Contact phone (optional)",
                                        rx.input(name="contact_phone", aria_label="Contact phone", width="100%"),
                                    ),
                                    labelled(
                                        "Payout country",
                                        rx.select(
                                            ["NG", "GH", "KE", "ZA", "US", "GB"],
                                            name="payout_country",
                                            default_value="NG",
                                            aria_label="Payout country",
                                        ),
                                    ),
                                    rx.button("Apply to sell", type="submit", size="3"),
                                    spacing="3",
                                    width="100%",
                                ),
                                on_submit=SellState.submit_application,
                                reset_on_submit=False,
                            ),
                            width="100%",
                            max_width="520px",
                        ),
                        rx.fragment(),
                    ),
                    width="100%",
                ),
            ),
        ),
    )


def event_form(on_submit: rx.EventHandler, values: rx.Var | None, submit_label: str) -> rx.Component:
    def value(key: str, fallback: str = "") -> rx.Var | str:
        return values[key] if values is not None else fallback

    return rx.form(
        rx.vstack(
            labelled(
                "Title",
                rx.input(name="title", default_value=value("title"), required=True, aria_label="Title", width="100%"),
            ),
            labelled(
                "Description",
                rx.text_area(
                    name="description", default_value=value("description"), aria_label="Description", width="100%"
                ),
            ),
            rx.grid(
                labelled(
                    "Venue", rx.input(name="venue", default_value=value("venue"), aria_label="Venue", width="100%")
                ),
                labelled(
                    "Venue type",
                    rx.select(
                        VENUE_TYPES,
                        name="venue_type",
                        default_value=value("venue_type", "event"),
                        aria_label="Venue type",
                    ),
                ),
                labelled(
                    "Starts",
                    rx.input(
                        name="starts_at",
                        type="datetime-local",
                        default_value=value("starts_at"),
                        required=True,
                        aria_label="Starts",
                        width="100%",
                    ),
                ),
                labelled(
                    "Ends",
                    rx.input(
                        name="ends_at",
                        type="datetime-local",
                        default_value=value("ends_at"),
                        required=True,
                        aria_label="Ends",
                        width="100%",
                    ),
                ),
                labelled(
                    "Time zone",
                    rx.input(
                        name="timezone",
                        default_value=value("timezone", "Africa/Lagos"),
                        aria_label="Time zone",
                        width="100%",
                    ),
                ),
                labelled(
                    "Currency",
                    rx.select(
                        ["NGN", "USD"], name="currency", default_value=value("currency", "NGN"), aria_label="Currency"
                    ),
                ),
                labelled(
                    "Shared capacity (optional)",
                    rx.input(
                        name="capacity",
                        default_value=value("capacity"),
                        input_mode="numeric",
                        aria_label="Shared capacity",
                        width="100%",
                    ),
                ),
                columns=rx.breakpoints(initial="1", sm="2"),
                spacing="3",
                width="100%",
            ),
            rx.button(submit_label, type="submit", size="3"),
            spacing="3",
            width="100%",
        ),
        on_submit=on_submit,
        reset_on_submit=False,
        width="100%",
    )


def organizer_page() -> rx.Component:
    return page_shell(
        page_header("Organizer", "Your events, what they sell, and new ones."),
        error_callout(OrganizerState.error),
        rx.cond(
            OrganizerState.is_loading,
            loading_rows(3),
            rx.cond(
                OrganizerState.is_seller,
                rx.vstack(
                    rx.cond(
                        OrganizerState.events.length() > 0,
                        data_table(
                            ["Event", "Starts", "Status"],
                            OrganizerState.events,
                            lambda row: rx.table.row(
                                rx.table.cell(rx.link(row["title"], href=row["href"])),
                                rx.table.cell(rx.text(row["when"], white_space="nowrap")),
                                rx.table.cell(status_badge(row["status"])),
                            ),
                        ),
                        empty_state(
                            "calendar-plus",
                            "No events yet",
                            "Create your first event below; it stays a draft until you publish it.",
                        ),
                    ),
                    rx.card(
                        rx.vstack(
                            rx.heading("New event", size="4", as_="h2"),
                            event_form(OrganizerState.submit_event, None, "Create draft"),
                            width="100%",
                        ),
                        width="100%",
                    ),
                    spacing="4",
                    width="100%",
                ),
                empty_state(
                    "store",
                    "Sell tickets on PayTime",
                    "Apply to become an organizer first.",
                    rx.link(rx.button("Apply to sell"), href=routes.SELL),
                ),
            ),
        ),
    )


def sales_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(rx.text(row["name"]), rx.cond(row["hidden"] != "", rx.badge(row["hidden"]), rx.fragment()))
        ),
        rx.table.cell(row["price"]),
        rx.table.cell(row["sold"]),
        rx.table.cell(row["held"]),
        rx.table.cell(row["left"]),
        rx.table.cell(row["revenue"]),
    )


def ticket_type_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("Add a ticket type", size="3", as_="h3"),
            rx.grid(
                labelled("Name", rx.input(name="name", required=True, aria_label="Ticket type name", width="100%")),
                labelled(
                    "Price",
                    rx.input(
                        name="price", input_mode="decimal", placeholder="0 for free", aria_label="Price", width="100%"
                    ),
                ),
                labelled(
                    "Capacity",
                    rx.input(name="capacity", input_mode="numeric", required=True, aria_label="Capacity", width="100%"),
                ),
                labelled(
                    "Per customer (max)",
                    rx.input(
                        name="per_customer_max",
                        default_value="10",
                        input_mode="numeric",
                        aria_label="Per customer maximum",
                        width="100%",
                    ),
                ),
                labelled(
                    "Unlock code (hidden type)", rx.input(name="unlock_code", aria_label="Unlock code", width="100%")
                ),
                labelled(
                    "Description", rx.input(name="description", aria_label="Ticket type description", width="100%")
                ),
                columns=rx.breakpoints(initial="1", sm="3"),
                spacing="3",
                width="100%",
            ),
            rx.button("Add ticket type", type="submit", variant="soft"),
            spacing="3",
            width="100%",
        ),
        on_submit=OrganizerEventState.add_ticket_type,
        reset_on_submit=True,
        width="100%",
    )


def sales_chart() -> rx.Component:
    return rx.cond(
        OrganizerEventState.by_day.length() > 0,
        rx.card(
            rx.vstack(
                rx.heading("Bookings by day", size="3", as_="h3"),
                rx.recharts.bar_chart(
                    rx.recharts.bar(data_key="bookings", fill="#12a594", name="Bookings", is_animation_active=False),
                    rx.recharts.x_axis(data_key="day"),
                    rx.recharts.y_axis(allow_decimals=False),
                    rx.recharts.graphing_tooltip(),
                    data=OrganizerEventState.by_day,
                    height=200,
                    width="100%",
                ),
                width="100%",
            ),
            width="100%",
        ),
        rx.fragment(),
    )


def coupons_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Coupons", size="4", as_="h2"),
            rx.cond(
                OrganizerEventState.coupons.length() > 0,
                data_table(
                    ["Code", "Discount", "Used"],
                    OrganizerEventState.coupons,
                    lambda row: rx.table.row(
                        rx.table.cell(rx.code(row["code"])),
                        rx.table.cell(row["discount"]),
                        rx.table.cell(row["used"]),
                    ),
                ),
                rx.text("No coupons yet.", size="2", color=rx.color("gray", 10)),
            ),
            rx.cond(
                OrganizerEventState.event["editable"] != "",
                rx.form(
                    rx.flex(
                        rx.input(
                            name="code", placeholder="CODE", aria_label="Coupon code", required=True, width="140px"
                        ),
                        rx.select(
                            ["percent", "fixed"], name="kind", default_value="percent", aria_label="Discount kind"
                        ),
                        rx.input(
                            name="value",
                            placeholder="10",
                            aria_label="Discount (% or amount)",
                            required=True,
                            width="110px",
                        ),
                        rx.input(
                            name="max_redemptions",
                            placeholder="Uses (blank: no limit)",
                            aria_label="Maximum uses",
                            width="190px",
                        ),
                        rx.button("Add coupon", type="submit", variant="soft"),
                        gap="8px",
                        wrap="wrap",
                        align="center",
                    ),
                    on_submit=OrganizerEventState.add_coupon,
                    reset_on_submit=True,
                    width="100%",
                ),
                rx.fragment(),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def organizer_event_page() -> rx.Component:
    event = OrganizerEventState.event
    return page_shell(
        rx.cond(
            OrganizerEventState.is_loading,
            loading_rows(4),
            rx.cond(
                event.contains("id"),
                rx.vstack(
                    rx.link("← All my events", href=routes.ORGANIZER, size="2"),
                    rx.hstack(
                        rx.heading(event["title"], size="7", as_="h1"),
                        status_badge(event["status"]),
                        align="center",
                        wrap="wrap",
                    ),
                    rx.text(event["when"], " · ", event["venue"], color=rx.color("gray", 11)),
                    callout(OrganizerEventState.notice, "green", "check"),
                    error_callout(OrganizerEventState.error),
                    rx.flex(
                        rx.cond(
                            event["status"] == "draft",
                            rx.button("Publish", size="3", on_click=OrganizerEventState.publish),
                            rx.fragment(),
                        ),
                        rx.cond(
                            event["status"] == "published",
                            rx.link(rx.button("View public page", variant="soft", size="3"), href=event["public_href"]),
                            rx.fragment(),
                        ),
                        rx.button("Duplicate", variant="soft", size="3", on_click=OrganizerEventState.duplicate),
                        rx.cond(
                            event["editable"] != "",
                            rx.alert_dialog.root(
                                rx.alert_dialog.trigger(
                                    rx.button("Cancel event", color_scheme="red", variant="soft", size="3")
                                ),
                                rx.alert_dialog.content(
                                    rx.alert_dialog.title("Cancel this event?"),
                                    rx.alert_dialog.description(
                                        "Sales stop now and every booking is refunded in full. This cannot be undone."
                                    ),
                                    rx.flex(
                                        rx.alert_dialog.cancel(rx.button("Keep it", variant="soft")),
                                        rx.alert_dialog.action(
                                            rx.button(
                                                "Cancel event",
                                                color_scheme="red",
                                                on_click=OrganizerEventState.cancel_event,
                                            )
                                        ),
                                        gap="8px",
                                        justify="end",
                                        margin_top="16px",
                                    ),
                                ),
                            ),
                            rx.fragment(),
                        ),
                        gap="8px",
                        wrap="wrap",
                    ),
                    rx.hstack(
                        rx.heading("Sales", size="5", as_="h2"),
                        rx.spacer(),
                        rx.text("Revenue ", rx.text.strong(OrganizerEventState.revenue)),
                        width="100%",
                        align="center",
                    ),
                    rx.cond(
                        OrganizerEventState.sales.length() > 0,
                        data_table(
                            ["Ticket type", "Price", "Sold", "Held", "Left", "Revenue"],
                            OrganizerEventState.sales,
                            sales_row,
                        ),
                        empty_state(
                            "ticket-plus", "No ticket types yet", "Add at least one ticket type, then publish."
                        ),
                    ),
                    rx.cond(event["editable"] != "", rx.card(ticket_type_form(), width="100%"), rx.fragment()),
                    sales_chart(),
                    coupons_card(),
                    rx.hstack(
                        rx.heading("Bookings", size="5", as_="h2"),
                        rx.spacer(),
                        server_link(
                            rx.button(rx.icon("download", size=14), "Export CSV", variant="soft"), event["csv"]
                        ),
                        width="100%",
                        align="center",
                    ),
                    search_form(
                        value=OrganizerEventState.booking_query,
                        placeholder="Reference, name or email",
                        label="Search bookings",
                        on_submit=OrganizerEventState.search_bookings,
                        width="100%",
                    ),
                    rx.cond(
                        OrganizerEventState.bookings.length() > 0,
                        data_table(
                            ["Reference", "Buyer", "Status", "Total", "Booked"],
                            OrganizerEventState.bookings,
                            lambda row: rx.table.row(
                                rx.table.cell(row["reference"]),
                                rx.table.cell(
                                    rx.vstack(
                                        rx.text(row["buyer"], size="2"),
                                        rx.text(row["email"], size="1", color=rx.color("gray", 10)),
                                        spacing="0",
                                    )
                                ),
                                rx.table.cell(status_badge(row["status"])),
                                rx.table.cell(row["total"]),
                                rx.table.cell(rx.text(row["when"], white_space="nowrap")),
                            ),
                        ),
                        empty_state(
                            "inbox", "No bookings yet", "Bookings appear here as soon as customers reserve tickets."
                        ),
                    ),
                    rx.cond(
                        event["editable"] != "",
                        rx.card(
                            rx.vstack(
                                rx.heading("Details", size="4", as_="h2"),
                                event_form(OrganizerEventState.save_details, event, "Save details"),
                                width="100%",
                            ),
                            width="100%",
                        ),
                        rx.fragment(),
                    ),
                    spacing="3",
                    width="100%",
                ),
                empty_state(
                    "calendar-x",
                    "Event not found",
                    "It may belong to another organizer.",
                    rx.link("My events", href=routes.ORGANIZER),
                ),
            ),
        ),
    )


def application_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.text(row["organisation"], weight="medium"),
                rx.text(row["contact"], " · ", row["country"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(rx.text(row["applicant"], size="2")),
        rx.table.cell(rx.text(row["when"], white_space="nowrap", size="2")),
        rx.table.cell(
            rx.cond(
                AdminSellersState.can_decide,
                rx.flex(
                    rx.button("Approve", size="1", color_scheme="green", on_click=AdminSellersState.approve(row["id"])),
                    rx.form(
                        rx.hstack(
                            rx.el.input(type="hidden", name="application_id", value=row["id"]),
                            rx.input(
                                name="reason",
                                placeholder="Reason",
                                aria_label="Reason for rejecting " + row["organisation"],
                                size="1",
                                required=True,
                            ),
                            rx.button("Reject", size="1", color_scheme="red", variant="soft", type="submit"),
                        ),
                        on_submit=AdminSellersState.reject,
                    ),
                    gap="8px",
                    wrap="wrap",
                ),
                rx.text("Super admins decide", size="1", color=rx.color("gray", 10)),
            )
        ),
    )


def admin_sellers_page() -> rx.Component:
    return page_shell(
        page_header("Seller applications", "Approve organizers before they can sell; a rejection needs a reason."),
        callout(AdminSellersState.notice, "green", "check"),
        error_callout(AdminSellersState.error),
        rx.cond(
            AdminSellersState.is_loading,
            loading_rows(3),
            rx.cond(
                AdminSellersState.rows.length() > 0,
                data_table(
                    ["Organisation", "Applicant", "Applied", "Decision"], AdminSellersState.rows, application_row
                ),
                empty_state("badge-check", "Nothing to review", "New applications to sell appear here."),
            ),
        ),
    )
