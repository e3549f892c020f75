"""Events for customers: browse, an event page with live seats left, a booking with its countdown, My tickets."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.covers import cover_banner, cover_thumbnail
from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, server_link
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table, pager
from paytime_app.state.events import BookingState, EventsState, EventState, TicketsState

VENUE_FILTERS = [
    ("all", "All venues"),
    ("event", "Events"),
    ("bar", "Bars"),
    ("sports", "Sports"),
    ("hotel", "Hotels"),
    ("other", "Other"),
]
WHEN_FILTERS = [("any", "Any date"), ("week", "Next 7 days"), ("month", "Next 31 days")]


def status_badge(status: rx.Var) -> rx.Component:
    return rx.badge(
        status,
        color_scheme=rx.match(
            status, ("held", "amber"), ("confirmed", "green"), ("valid", "green"), ("cancelled", "red"), "gray"
        ),
        variant="soft",
    )


def event_card(row: rx.Var) -> rx.Component:
    return rx.link(
        rx.card(
            rx.inset(cover_thumbnail(row["thumb"], "Cover of " + row["title"]), side="top", pb="current"),
            rx.vstack(
                rx.hstack(
                    rx.badge(row["venue_type"], variant="surface"),
                    rx.spacer(),
                    rx.cond(
                        row["sold_out"] != "",
                        rx.badge("Sold out", color_scheme="red"),
                        rx.text(row["left"], size="1", color=rx.color("gray", 11)),
                    ),
                    width="100%",
                ),
                rx.heading(row["title"], size="4", as_="h2"),
                rx.hstack(rx.icon("calendar", size=14), rx.text(row["when"], size="2"), spacing="2", align="center"),
                rx.hstack(rx.icon("map-pin", size=14), rx.text(row["venue"], size="2"), spacing="2", align="center"),
                rx.text(row["from"], weight="bold", size="3", color=rx.color("accent", 11)),
                spacing="2",
                width="100%",
            ),
            width="100%",
            height="100%",
        ),
        href=row["href"],
        underline="none",
        color=rx.color("gray", 12),
    )


def events_page() -> rx.Component:
    return page_shell(
        page_header("Events", "Concerts, matches, nights out: book in a minute, pay from your wallet or by card."),
        rx.flex(
            rx.form(
                rx.flex(
                    rx.input(
                        name="q",
                        placeholder="Search events or venues",
                        aria_label="Search events",
                        flex="1 1 220px",
                        min_width="0",
                    ),
                    rx.hstack(
                        rx.input(
                            name="max_price",
                            placeholder="Max price (₦)",
                            aria_label="Maximum price",
                            flex="1",
                            min_width="0",
                            input_mode="decimal",
                        ),
                        rx.button("Search", type="submit"),
                        flex="1 1 200px",
                    ),
                    gap="8px",
                    wrap="wrap",
                    width="100%",
                ),
                on_submit=EventsState.search,
                reset_on_submit=False,
                flex="1",
                min_width="260px",
            ),
            rx.select.root(
                rx.select.trigger(aria_label="Venue type"),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in VENUE_FILTERS]),
                value=EventsState.venue_type,
                on_change=EventsState.filter_venue,
            ),
            rx.select.root(
                rx.select.trigger(aria_label="Date"),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in WHEN_FILTERS]),
                value=EventsState.when_filter,
                on_change=EventsState.filter_when,
            ),
            gap="8px",
            wrap="wrap",
            width="100%",
            margin_bottom="16px",
        ),
        error_callout(EventsState.error),
        rx.cond(
            EventsState.is_loading,
            loading_rows(4),
            rx.cond(
                EventsState.rows.length() > 0,
                rx.vstack(
                    rx.grid(
                        rx.foreach(EventsState.rows, event_card),
                        columns=rx.breakpoints(initial="1", sm="2", lg="3"),
                        spacing="3",
                        width="100%",
                    ),
                    pager(EventsState.page, EventsState.total_pages, EventsState.go_to_page),
                    width="100%",
                ),
                empty_state(
                    "calendar-x", "No events found", "Try another search or filter; new events are added every week."
                ),
            ),
        ),
    )


def attribute_chip(attribute: rx.Var) -> rx.Component:
    return rx.badge(
        rx.text(attribute["name"], weight="bold"),
        rx.cond(attribute["value"] != "", rx.text(attribute["value"]), rx.fragment()),
        variant="surface",
        color_scheme="gray",
        size="2",
        gap="4px",
    )


def ticket_type_row(row: rx.Var) -> rx.Component:
    left = EventState.live_seats[row["id"]].to(int)
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.hstack(
                    rx.heading(row["name"], size="4", as_="h3"),
                    rx.cond(row["tier"] != "", rx.badge(row["tier"], color_scheme="green"), rx.fragment()),
                    align="center",
                    wrap="wrap",
                ),
                rx.cond(
                    row["description"] != "",
                    rx.text(row["description"], size="2", color=rx.color("gray", 11)),
                    rx.fragment(),
                ),
                rx.cond(
                    EventState.type_attributes[row["id"]].length() > 0,
                    rx.flex(
                        rx.foreach(EventState.type_attributes[row["id"]], attribute_chip),
                        gap="6px",
                        wrap="wrap",
                        aria_label="About " + row["name"],
                    ),
                    rx.fragment(),
                ),
                rx.cond(
                    row["entries"] != "", rx.text(row["entries"], size="1", color=rx.color("gray", 11)), rx.fragment()
                ),
                rx.hstack(
                    rx.text(row["price"], weight="bold", size="4"),
                    rx.cond(
                        row["base_price"] != "",
                        rx.text(row["base_price"], size="2", text_decoration="line-through", color=rx.color("gray", 9)),
                        rx.fragment(),
                    ),
                    rx.cond(
                        row["tier_note"] != "",
                        rx.text(row["tier_note"], size="1", color=rx.color("green", 11), weight="medium"),
                        rx.fragment(),
                    ),
                    align="baseline",
                    wrap="wrap",
                ),
                rx.text(
                    rx.cond(left > 0, left.to_string() + " seats left", "Sold out"),
                    size="2",
                    color=rx.cond(left > 0, rx.color("gray", 11), rx.color("red", 10)),
                    aria_label=row["name"] + " seats left",
                    aria_live="polite",
                ),
                spacing="1",
                flex="1",
            ),
            rx.cond(
                (row["on_sale"] != "") & (left > 0),
                rx.input(
                    type="number",
                    name="qty_" + row["id"],
                    min=0,
                    max=row["max"],
                    default_value="0",
                    aria_label="Quantity of " + row["name"],
                    width="88px",
                    size="3",
                ),
                rx.cond(row["note"] != "", rx.badge(row["note"], color_scheme="gray"), rx.fragment()),
            ),
            gap="12px",
            align="center",
            width="100%",
        ),
        width="100%",
    )


def event_detail_page() -> rx.Component:
    event = EventState.event
    return page_shell(
        rx.cond(
            EventState.is_loading,
            loading_rows(4),
            rx.cond(
                event.contains("id"),
                rx.vstack(
                    rx.link("← All events", href=routes.EVENTS, size="2"),
                    cover_banner(event["cover"], "Cover of " + event["title"], ["200px", "360px"]),
                    rx.hstack(
                        rx.badge(event["venue_type"], variant="surface"),
                        rx.cond(
                            event["status"] != "published", rx.badge(event["status"], color_scheme="red"), rx.fragment()
                        ),
                    ),
                    rx.heading(event["title"], size="8", as_="h1"),
                    rx.hstack(
                        rx.icon("calendar", size=16),
                        rx.text(event["when"], " (", event["timezone"], ")"),
                        align="center",
                    ),
                    rx.hstack(rx.icon("map-pin", size=16), rx.text(event["venue"]), align="center"),
                    rx.cond(
                        event["description"] != "",
                        rx.text(event["description"], white_space="pre-wrap", color=rx.color("gray", 11)),
                        rx.fragment(),
                    ),
                    rx.heading("Tickets", size="5", as_="h2", margin_top="12px"),
                    error_callout(EventState.error),
                    rx.form(
                        rx.vstack(
                            rx.foreach(EventState.types, ticket_type_row),
                            rx.flex(
                                rx.input(
                                    name="coupon",
                                    placeholder="Coupon code (optional)",
                                    aria_label="Coupon code",
                                    flex="1",
                                    min_width="200px",
                                ),
                                rx.el.label(
                                    rx.hstack(
                                        rx.checkbox(name="group"),
                                        rx.text("One group ticket for everyone", size="2"),
                                        align="center",
                                    ),
                                ),
                                gap="12px",
                                align="center",
                                wrap="wrap",
                                width="100%",
                            ),
                            rx.button(
                                rx.cond(EventState.is_signed_in, "Reserve tickets", "Sign in to book"),
                                type="submit",
                                size="3",
                                loading=EventState.is_booking,
                                width=["100%", "auto"],
                            ),
                            rx.text(
                                "Seats are held for 15 minutes while you pay.", size="1", color=rx.color("gray", 10)
                            ),
                            spacing="3",
                            width="100%",
                        ),
                        on_submit=EventState.submit_booking,
                        reset_on_submit=False,
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                    max_width="760px",
                ),
                empty_state(
                    "calendar-x",
                    "Event not found",
                    "It may have been removed, or the link is wrong.",
                    rx.link("Browse events", href=routes.EVENTS),
                ),
            ),
        ),
    )


def names_form() -> rx.Component:
    """Before paying: who the tickets are for (comma-separated, one per ticket)."""
    return rx.form(
        rx.vstack(
            rx.text("Names on the tickets (optional, comma-separated)", size="2", weight="medium"),
            rx.foreach(
                BookingState.items,
                lambda item: rx.input(
                    name="names_" + item["id"],
                    default_value=item["names"],
                    placeholder=item["name"] + ": e.g. Ada Obi, Ben Okafor",
                    aria_label="Names for " + item["name"],
                    width="100%",
                ),
            ),
            rx.button("Save names", type="submit", variant="soft", size="2"),
            spacing="2",
            width="100%",
        ),
        on_submit=BookingState.save_names,
        reset_on_submit=False,
        width="100%",
    )


def booking_page() -> rx.Component:
    booking = BookingState.booking
    return page_shell(
        rx.cond(
            BookingState.is_loading,
            loading_rows(3),
            rx.cond(
                booking.contains("id"),
                rx.vstack(
                    rx.hstack(
                        rx.heading("Booking ", booking["reference"], size="7", as_="h1"),
                        status_badge(booking["status"]),
                        align="center",
                        wrap="wrap",
                    ),
                    rx.link(booking["event_title"], href=booking["event_href"], size="4", weight="bold"),
                    rx.text(booking["when"], " · ", booking["venue"], color=rx.color("gray", 11)),
                    callout(BookingState.notice, "blue", "info"),
                    error_callout(BookingState.error),
                    callout(booking["note"], "amber", "triangle-alert"),
                    rx.cond(
                        booking["status"] == "held",
                        rx.card(
                            rx.hstack(
                                rx.icon("timer", size=22, color=rx.color("amber", 10)),
                                rx.text("Seats held for ", size="3"),
                                rx.text(BookingState.countdown, size="6", weight="bold", aria_label="Time left to pay"),
                                align="center",
                                spacing="2",
                            ),
                            width="100%",
                            background=rx.color("amber", 2),
                        ),
                        rx.fragment(),
                    ),
                    data_table(
                        ["Ticket", "Quantity", "Price"],
                        BookingState.items,
                        lambda item: rx.table.row(
                            rx.table.cell(
                                rx.hstack(
                                    rx.text(item["name"]),
                                    rx.cond(
                                        item["tier"] != "", rx.badge(item["tier"], color_scheme="green"), rx.fragment()
                                    ),
                                )
                            ),
                            rx.table.cell(item["quantity"]),
                            rx.table.cell(item["price"]),
                        ),
                    ),
                    rx.vstack(
                        rx.cond(
                            booking["discount"] != "",
                            rx.text("Discount: -", booking["discount"], color=rx.color("green", 11)),
                            rx.fragment(),
                        ),
                        rx.heading("Total ", booking["total"], size="5", as_="p"),
                        rx.cond(booking["refunded"] != "", rx.text("Refunded: ", booking["refunded"]), rx.fragment()),
                        align="end",
                        width="100%",
                    ),
                    rx.cond(booking["status"] == "held", names_form(), rx.fragment()),
                    rx.cond(
                        (booking["status"] == "held") | (booking["status"] == "expired"),
                        rx.flex(
                            rx.button(
                                rx.cond(booking["free"] != "", "Confirm free tickets", "Pay from wallet"),
                                size="3",
                                on_click=BookingState.pay_with_wallet,
                                loading=BookingState.is_paying,
                            ),
                            rx.cond(
                                (booking["free"] == "") & (booking["status"] == "held"),
                                rx.button(
                                    "Pay by card",
                                    size="3",
                                    variant="soft",
                                    on_click=BookingState.pay_with_card,
                                    disabled=BookingState.is_paying,
                                ),
                                rx.fragment(),
                            ),
                            rx.cond(
                                booking["status"] == "held",
                                rx.button(
                                    "Cancel",
                                    size="3",
                                    variant="soft",
                                    color_scheme="red",
                                    on_click=BookingState.cancel,
                                ),
                                rx.fragment(),
                            ),
                            gap="8px",
                            wrap="wrap",
                            align="center",
                        ),
                        rx.fragment(),
                    ),
                    rx.cond(
                        booking["status"] == "confirmed",
                        rx.flex(
                            rx.link(rx.button("See my tickets", size="3"), href=routes.TICKETS),
                            server_link(rx.button("Download PDF", size="3", variant="soft"), booking["pdf"]),
                            gap="8px",
                            wrap="wrap",
                        ),
                        rx.fragment(),
                    ),
                    spacing="3",
                    width="100%",
                    max_width="720px",
                ),
                empty_state(
                    "ticket-x",
                    "Booking not found",
                    "It may belong to another account.",
                    rx.link("My tickets", href=routes.TICKETS),
                ),
            ),
        ),
    )


def ticket_card(ticket: rx.Var) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.image(
                src=ticket["qr"],
                alt="QR code for ticket " + ticket["code"],
                width="150px",
                height="150px",
                opacity=rx.cond(ticket["valid"] != "", "1", "0.25"),
            ),
            rx.vstack(
                rx.hstack(
                    rx.heading(ticket["event"], size="4", as_="h2"),
                    status_badge(ticket["status"]),
                    align="center",
                    wrap="wrap",
                ),
                rx.text(ticket["when"], " · ", ticket["venue"], size="2", color=rx.color("gray", 11)),
                rx.text(ticket["type"], " · ", ticket["attendee"], " ", ticket["admits"], size="2"),
                rx.code(ticket["code"], size="3"),
                server_link(rx.button(rx.icon("download", size=14), "PDF", size="2", variant="soft"), ticket["pdf"]),
                spacing="2",
            ),
            gap="16px",
            align="center",
            direction=rx.breakpoints(initial="column", sm="row"),
        ),
        width="100%",
    )


def tickets_page() -> rx.Component:
    return page_shell(
        page_header("My tickets", "Show the QR code at the entrance, on your phone or printed."),
        error_callout(TicketsState.error),
        rx.cond(
            TicketsState.is_loading,
            loading_rows(3),
            rx.vstack(
                rx.cond(
                    TicketsState.tickets.length() > 0,
                    rx.grid(
                        rx.foreach(TicketsState.tickets, ticket_card),
                        columns=rx.breakpoints(initial="1", lg="2"),
                        spacing="3",
                        width="100%",
                    ),
                    empty_state(
                        "ticket",
                        "No tickets yet",
                        "Tickets you book appear here with their QR codes.",
                        rx.link(rx.button("Browse events"), href=routes.EVENTS),
                    ),
                ),
                rx.cond(
                    TicketsState.bookings.length() > 0,
                    rx.vstack(
                        rx.heading("Bookings", size="5", as_="h2", margin_top="16px"),
                        data_table(
                            ["Reference", "Event", "Status", "Total", "Booked"],
                            TicketsState.bookings,
                            lambda row: rx.table.row(
                                rx.table.cell(rx.link(row["reference"], href=row["href"])),
                                rx.table.cell(row["event"]),
                                rx.table.cell(status_badge(row["status"])),
                                rx.table.cell(row["total"]),
                                rx.table.cell(rx.text(row["when"], white_space="nowrap")),
                            ),
                        ),
                        width="100%",
                    ),
                    rx.fragment(),
                ),
                spacing="3",
                width="100%",
            ),
        ),
    )
