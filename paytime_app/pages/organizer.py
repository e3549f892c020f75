"""Sellers: apply to sell, the organizer dashboard and one event's management, and the approval page."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.covers import cover_banner
from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, search_form, server_link
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table
from paytime_app.pages.events import status_badge
from paytime_app.services.covers import MAX_BYTES, MIN_HEIGHT, MIN_WIDTH
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
            rx.hstack(
                rx.text(row["name"], weight="medium"),
                rx.cond(row["hidden"] != "", rx.badge(row["hidden"], color_scheme="gray"), rx.fragment()),
                rx.cond(row["tiers"] != "", rx.badge(row["tiers"], color_scheme="green"), rx.fragment()),
                align="center",
                wrap="wrap",
            )
        ),
        rx.table.cell(row["price"]),
        rx.table.cell(row["sold"]),
        rx.table.cell(row["held"]),
        rx.table.cell(row["left"]),
        rx.table.cell(row["revenue"]),
        rx.table.cell(
            rx.cond(
                OrganizerEventState.event["editable"] != "",
                rx.button(
                    rx.icon("pencil", size=14),
                    "Edit",
                    size="1",
                    variant="soft",
                    aria_label="Edit " + row["name"],
                    on_click=OrganizerEventState.open_type_editor(row["id"]),
                ),
                rx.fragment(),
            )
        ),
    )


def text_field(label: str, name: str, **props: object) -> rx.Component:
    """A labelled input of the ticket type editor, showing the editor's current value."""
    return labelled(
        label,
        rx.input(name=name, default_value=OrganizerEventState.editor[name], aria_label=label, width="100%", **props),
    )


def editor_section(title: str, hint: str | rx.Var, *children: rx.Component) -> rx.Component:
    return rx.vstack(
        rx.heading(title, size="3", as_="h3"),
        rx.text(hint, size="1", color=rx.color("gray", 11)),
        *children,
        spacing="2",
        width="100%",
        padding_top="12px",
        border_top=f"1px solid {rx.color('gray', 4)}",
    )


def remove_row_button(label: rx.Var, on_click: rx.EventSpec) -> rx.Component:
    return rx.icon_button(
        rx.icon("x", size=14), type="button", variant="ghost", color_scheme="gray", aria_label=label, on_click=on_click
    )


def add_row_button(label: str, on_click: rx.EventHandler) -> rx.Component:
    return rx.button(rx.icon("plus", size=14), label, type="button", variant="soft", size="1", on_click=on_click)


def attribute_row(row: rx.Var, index: rx.Var) -> rx.Component:
    number = (index + 1).to_string()
    return rx.hstack(
        rx.input(
            name="attr_key_" + row["id"],
            default_value=row["key"],
            placeholder="Name, e.g. Gate",
            aria_label="Attribute name " + number,
            flex="2",
            min_width="0",
        ),
        rx.input(
            name="attr_value_" + row["id"],
            default_value=row["value"],
            placeholder="Value, e.g. B",
            aria_label="Attribute value " + number,
            flex="3",
            min_width="0",
        ),
        remove_row_button("Remove attribute " + number, OrganizerEventState.remove_attribute_row(row["id"])),
        key=row["id"],
        width="100%",
        align="center",
    )


TIER_COLUMNS = (
    ("Label", "2 1 150px"),
    ("Price", "1 1 90px"),
    ("Ends on", "2 1 190px"),
    ("or after N sold", "1 1 120px"),
)


def tier_header() -> rx.Component:
    # Column names over the rows on wide screens; on phones each input keeps its placeholder.
    return rx.flex(
        *[
            rx.text(name, size="1", weight="medium", color=rx.color("gray", 11), flex=flex)
            for name, flex in TIER_COLUMNS
        ],
        rx.box(width="32px"),
        gap="8px",
        padding="0 8px",
        width="100%",
        display=rx.breakpoints(initial="none", sm="flex"),
    )


def tier_row(row: rx.Var, index: rx.Var) -> rx.Component:
    number = (index + 1).to_string()
    return rx.flex(
        rx.input(
            name="tier_label_" + row["id"],
            default_value=row["label"],
            placeholder="Label, e.g. Early bird",
            aria_label="Tier label " + number,
            flex=TIER_COLUMNS[0][1],
        ),
        rx.input(
            name="tier_price_" + row["id"],
            default_value=row["price"],
            placeholder="Price",
            input_mode="decimal",
            aria_label="Tier price " + number,
            flex=TIER_COLUMNS[1][1],
        ),
        rx.input(
            name="tier_until_" + row["id"],
            default_value=row["until"],
            type="datetime-local",
            aria_label="Tier ends on " + number,
            flex=TIER_COLUMNS[2][1],
        ),
        rx.input(
            name="tier_first_n_" + row["id"],
            default_value=row["first_n"],
            placeholder="or first N sold",
            input_mode="numeric",
            aria_label="Tier ends after tickets " + number,
            flex=TIER_COLUMNS[3][1],
        ),
        remove_row_button("Remove price tier " + number, OrganizerEventState.remove_tier_row(row["id"])),
        key=row["id"],
        gap="8px",
        wrap="wrap",
        align="center",
        width="100%",
        padding="8px",
        border_radius="8px",
        background=rx.color("gray", 2),
    )


def ticket_type_editor() -> rx.Component:
    editor = OrganizerEventState.editor
    event = OrganizerEventState.event
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title(rx.cond(editor["id"] != "", "Edit ticket type", "New ticket type")),
            rx.dialog.description(
                "Prices in ", event["currency"], "; dates and times in ", event["timezone"], ".", size="2"
            ),
            rx.form(
                rx.vstack(
                    rx.grid(
                        text_field("Ticket type name", "name", required=True, max_length=80),
                        text_field("Price", "price", input_mode="decimal", placeholder="0 for free"),
                        text_field("Capacity", "capacity", input_mode="numeric", required=True),
                        text_field("Description", "description", max_length=500),
                        columns=rx.breakpoints(initial="1", sm="2"),
                        spacing="3",
                        width="100%",
                    ),
                    editor_section(
                        "Sales window",
                        "Blank: on sale from publishing until the event ends.",
                        rx.grid(
                            text_field("Sales start", "sales_start", type="datetime-local"),
                            text_field("Sales end", "sales_end", type="datetime-local"),
                            columns=rx.breakpoints(initial="1", sm="2"),
                            spacing="3",
                            width="100%",
                        ),
                    ),
                    editor_section(
                        "Limits",
                        "Up to 20 tickets per booking; each ticket can be scanned in this many times.",
                        rx.grid(
                            text_field("Most per booking", "per_booking_max", input_mode="numeric"),
                            text_field("Most per customer", "per_customer_max", input_mode="numeric"),
                            text_field("Entries per ticket", "entries_allowed", input_mode="numeric"),
                            columns=rx.breakpoints(initial="1", sm="3"),
                            spacing="3",
                            width="100%",
                        ),
                    ),
                    editor_section(
                        "Price tiers",
                        "The first tier still open applies: each ends on a date or after the first N tickets sold."
                        " After the last one, the price above applies.",
                        rx.cond(OrganizerEventState.tier_rows.length() > 0, tier_header(), rx.fragment()),
                        rx.foreach(OrganizerEventState.tier_rows, tier_row),
                        add_row_button("Add price tier", OrganizerEventState.add_tier_row),
                    ),
                    editor_section(
                        "Shown to buyers",
                        "Facts about this ticket, such as the gate, a seat block or what is included.",
                        rx.foreach(OrganizerEventState.attribute_rows, attribute_row),
                        add_row_button("Add attribute", OrganizerEventState.add_attribute_row),
                    ),
                    editor_section(
                        "Hidden ticket type",
                        "With an unlock code, this type is listed and sold only to people who open the event page"
                        " with ?code=… in its link.",
                        text_field("Unlock code (optional)", "unlock_code", max_length=40),
                    ),
                    error_callout(OrganizerEventState.editor_error),
                    rx.flex(
                        rx.dialog.close(rx.button("Cancel", type="button", variant="soft", color_scheme="gray")),
                        rx.button("Save ticket type", type="submit"),
                        gap="8px",
                        justify="end",
                        width="100%",
                    ),
                    spacing="3",
                    width="100%",
                ),
                key=editor["key"],
                on_submit=OrganizerEventState.save_ticket_type,
                reset_on_submit=False,
                width="100%",
            ),
            max_width="720px",
            max_height="90vh",
            overflow_y="auto",
        ),
        open=OrganizerEventState.editor_open,
        on_open_change=OrganizerEventState.set_editor_open,
    )


def cover_upload_status() -> rx.Component:
    progress = OrganizerEventState.cover_progress
    return rx.cond(
        progress >= 0,
        rx.vstack(
            rx.progress(value=progress, max=100, width="100%", aria_label="Cover upload progress"),
            rx.text(
                rx.cond(progress < 100, "Uploading… " + progress.to_string() + "%", "Resizing and checking the image…"),
                size="1",
                color=rx.color("gray", 11),
                role="status",
            ),
            spacing="1",
            width="100%",
            max_width="320px",
        ),
        rx.fragment(),
    )


def cover_card() -> rx.Component:
    event = OrganizerEventState.event
    return rx.card(
        rx.flex(
            rx.box(cover_banner(event["cover"], "Cover of " + event["title"], "180px"), width=["100%", "320px"]),
            rx.vstack(
                rx.heading("Cover image", size="4", as_="h2"),
                rx.text(
                    "Shown at the top of your event page and on its card in the events list. JPEG, PNG, WebP"
                    f" or GIF, up to {MAX_BYTES // (1024 * 1024)} MB, at least {MIN_WIDTH} x {MIN_HEIGHT} pixels."
                    " We resize it and remove hidden details such as where a photo was taken.",
                    size="2",
                    color=rx.color("gray", 11),
                ),
                rx.cond(
                    event["editable"] != "",
                    rx.flex(
                        rx.upload(
                            rx.hstack(
                                rx.icon("image-up", size=18, color=rx.color("accent", 10)),
                                rx.text(
                                    rx.cond(event["cover"] != "", "Replace the image", "Upload an image"),
                                    size="2",
                                    weight="medium",
                                ),
                                rx.text("or drop it here", size="2", color=rx.color("gray", 10)),
                                align="center",
                                spacing="2",
                            ),
                            id="cover",
                            accept={
                                "image/jpeg": [".jpg", ".jpeg"],
                                "image/png": [".png"],
                                "image/webp": [".webp"],
                                "image/gif": [".gif"],
                            },
                            multiple=False,
                            max_files=1,
                            max_size=MAX_BYTES,
                            on_drop=OrganizerEventState.upload_cover(
                                rx.upload_files(
                                    upload_id="cover", on_upload_progress=OrganizerEventState.cover_upload_progress
                                )
                            ),
                            on_drop_rejected=OrganizerEventState.cover_rejected,
                            aria_label="Upload cover image",
                            border=f"1px dashed {rx.color('accent', 8)}",
                            border_radius="8px",
                            padding="10px 14px",
                            cursor="pointer",
                            background=rx.color("accent", 2),
                        ),
                        rx.cond(
                            event["cover"] != "",
                            rx.button(
                                "Remove",
                                variant="soft",
                                color_scheme="red",
                                on_click=OrganizerEventState.remove_cover,
                            ),
                            rx.fragment(),
                        ),
                        gap="8px",
                        align="center",
                        wrap="wrap",
                    ),
                    rx.fragment(),
                ),
                cover_upload_status(),
                spacing="2",
                flex="1",
            ),
            gap="16px",
            direction=rx.breakpoints(initial="column", sm="row"),
            align=rx.breakpoints(initial="stretch", sm="center"),
        ),
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


def coupon_scope_choice(row: rx.Var) -> rx.Component:
    return rx.el.label(
        rx.hstack(rx.checkbox(name="scope_" + row["id"]), rx.text(row["name"], size="2"), align="center"),
    )


def coupon_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading("New coupon", size="3", as_="h3"),
            rx.grid(
                labelled(
                    "Code",
                    rx.input(name="code", placeholder="EARLY10", aria_label="Coupon code", required=True, width="100%"),
                ),
                labelled(
                    "Kind",
                    rx.select(["percent", "fixed"], name="kind", default_value="percent", aria_label="Discount kind"),
                ),
                labelled(
                    "Discount (% or amount)",
                    rx.input(
                        name="value", placeholder="10", aria_label="Discount (% or amount)", required=True, width="100%"
                    ),
                ),
                labelled(
                    "Uses in total",
                    rx.input(name="max_redemptions", placeholder="No limit", aria_label="Maximum uses", width="100%"),
                ),
                labelled(
                    "Uses per customer",
                    rx.input(name="per_user_limit", default_value="1", aria_label="Uses per customer", width="100%"),
                ),
                labelled(
                    "Minimum order",
                    rx.input(
                        name="min_order",
                        placeholder="None",
                        input_mode="decimal",
                        aria_label="Minimum order",
                        width="100%",
                    ),
                ),
                labelled(
                    "Expires",
                    rx.input(name="expires_at", type="datetime-local", aria_label="Coupon expires", width="100%"),
                ),
                columns=rx.breakpoints(initial="1", sm="2", md="4"),
                spacing="3",
                width="100%",
            ),
            rx.vstack(
                rx.text("Applies to", size="2", weight="medium"),
                rx.flex(
                    rx.foreach(OrganizerEventState.sales, coupon_scope_choice),
                    gap="16px",
                    wrap="wrap",
                    role="group",
                    aria_label="Coupon applies to",
                ),
                rx.text("Tick nothing for the whole event.", size="1", color=rx.color("gray", 10)),
                spacing="1",
            ),
            rx.button("Add coupon", type="submit", variant="soft"),
            spacing="3",
            width="100%",
        ),
        on_submit=OrganizerEventState.add_coupon,
        reset_on_submit=True,
        width="100%",
    )


def coupons_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Coupons", size="4", as_="h2"),
            rx.cond(
                OrganizerEventState.coupons.length() > 0,
                data_table(
                    ["Code", "Discount", "Applies to", "Used"],
                    OrganizerEventState.coupons,
                    lambda row: rx.table.row(
                        rx.table.cell(rx.code(row["code"])),
                        rx.table.cell(row["discount"]),
                        rx.table.cell(row["scope"]),
                        rx.table.cell(row["used"]),
                    ),
                ),
                rx.text("No coupons yet.", size="2", color=rx.color("gray", 10)),
            ),
            rx.cond(OrganizerEventState.event["editable"] != "", coupon_form(), rx.fragment()),
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
                    cover_card(),
                    rx.hstack(
                        rx.heading("Ticket types and sales", size="5", as_="h2"),
                        rx.spacer(),
                        rx.text("Page views ", rx.text.strong(OrganizerEventState.views)),
                        rx.text("Revenue ", rx.text.strong(OrganizerEventState.revenue)),
                        rx.cond(
                            event["editable"] != "",
                            rx.button(
                                rx.icon("plus", size=14),
                                "Add ticket type",
                                on_click=OrganizerEventState.open_type_editor(""),
                            ),
                            rx.fragment(),
                        ),
                        width="100%",
                        align="center",
                        wrap="wrap",
                    ),
                    rx.cond(
                        OrganizerEventState.sales.length() > 0,
                        data_table(
                            ["Ticket type", "Price", "Sold", "Held", "Left", "Revenue", ""],
                            OrganizerEventState.sales,
                            sales_row,
                        ),
                        empty_state(
                            "ticket-plus", "No ticket types yet", "Add at least one ticket type, then publish."
                        ),
                    ),
                    ticket_type_editor(),
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
