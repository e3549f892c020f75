"""The staff payments dashboard: stats, charts, filters, the payments table, the detail drawer."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import pager
from paytime_app.services.payments_admin import METHODS, PAGE_SIZES
from paytime_app.services.providers.registry import PROVIDER_SLUGS
from paytime_app.state.payments_admin import CHART_COLORS
from paytime_app.state.payments_admin import PaymentsDashboardState as State

STATUSES = ["pending", "processing", "succeeded", "failed", "cancelled", "refunded", "partially_refunded"]
PURPOSES = ["wallet_topup", "call_credits", "booking"]
CURRENCIES = ["NGN", "USD"]
PIE_COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2"]

# Streams the CSV through fetch so the page can count rows as they arrive, then saves it.
EXPORT_SCRIPT = """
window.paytimeExport = async function (url, total) {
  const box = document.getElementById('export-progress');
  const bar = document.getElementById('export-progress-bar');
  const label = document.getElementById('export-progress-label');
  box.style.display = 'block';
  bar.style.width = '0%';
  label.textContent = 'Preparing export…';
  try {
    const response = await fetch(url, {credentials: 'same-origin'});
    if (!response.ok) { label.textContent = 'The export was refused (' + response.status + ').'; return; }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const parts = [];
    let rows = -1;
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      parts.push(value);
      rows += (decoder.decode(value, {stream: true}).match(/\\r\\n/g) || []).length;
      const percent = total > 0 ? Math.min(100, Math.round(rows * 100 / total)) : 100;
      bar.style.width = percent + '%';
      label.textContent = 'Exported ' + rows.toLocaleString() + ' of ' + total.toLocaleString() + ' rows';
    }
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob(parts, {type: 'text/csv'}));
    link.download = 'payments.csv';
    document.body.appendChild(link);
    link.click();
    link.remove();
    bar.style.width = '100%';
    label.textContent = 'Done: ' + Math.max(rows, 0).toLocaleString() + ' rows saved to payments.csv';
  } catch (error) {
    label.textContent = 'The export stopped: ' + error;
  }
};
"""


def choice(name: str, label: str, options: list[str], value: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", weight="medium", color=rx.color("gray", 11)),
        rx.select.root(
            rx.select.trigger(aria_label=label, placeholder="Any", width="100%"),
            rx.select.content(
                rx.select.item("Any", value="all"),
                *[rx.select.item(option.replace("_", " "), value=option) for option in options],
            ),
            name=name,
            default_value=rx.cond(value == "", "all", value),
        ),
        spacing="1",
        min_width="130px",
        flex="1",
    )


def text_filter(name: str, label: str, value: rx.Var, **props: object) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", weight="medium", color=rx.color("gray", 11)),
        rx.input(name=name, default_value=value, aria_label=label, width="100%", **props),
        spacing="1",
        flex="1",
        min_width="130px",
    )


def filters_bar() -> rx.Component:
    values = State.filters
    return rx.card(
        rx.form(
            rx.vstack(
                rx.hstack(
                    rx.input(
                        rx.input.slot(rx.icon("search", size=16)),
                        name="q",
                        default_value=values["q"],
                        placeholder="Reference, customer name or email, receiver, description",
                        aria_label="Search payments",
                        size="3",
                        flex="1",
                        min_width="240px",
                    ),
                    rx.button("Apply", type="submit", size="3"),
                    rx.button(
                        "Clear",
                        type="button",
                        size="3",
                        variant="soft",
                        color_scheme="gray",
                        on_click=State.clear_filters,
                    ),
                    width="100%",
                    wrap="wrap",
                ),
                rx.flex(
                    choice("status", "Status", STATUSES, values["status"]),
                    choice("provider", "Provider", list(PROVIDER_SLUGS), values["provider"]),
                    choice("method", "Method", list(METHODS), values["method"]),
                    choice("purpose", "Purpose", PURPOSES, values["purpose"]),
                    choice("currency", "Currency", CURRENCIES, values["currency"]),
                    text_filter("from", "From (UTC)", values["from"], type="date"),
                    text_filter("to", "To (UTC)", values["to"], type="date"),
                    text_filter("min", "Min amount", values["min"], placeholder="0.00", input_mode="decimal"),
                    text_filter("max", "Max amount", values["max"], placeholder="any", input_mode="decimal"),
                    gap="12px",
                    wrap="wrap",
                    width="100%",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=State.apply_filters,
            reset_on_submit=False,
            # Re-mount when the view changes (load, clear) so the fields show the current filters.
            key=State.query_string,
        ),
        width="100%",
    )


def stat_card(card: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(card["label"], size="2", color=rx.color("gray", 11)),
            rx.text(card["value"], size="4", weight="bold", white_space="pre-line", line_height="1.3"),
            rx.text(card["hint"], size="1", color=rx.color("gray", 10)),
            spacing="2",
        ),
        width="100%",
    )


def revenue_chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Revenue per day", size="3", as_="h2"),
                rx.spacer(),
                rx.segmented_control.root(
                    rx.segmented_control.item("30 days", value="30"),
                    rx.segmented_control.item("90 days", value="90"),
                    value=State.chart_days,
                    on_change=State.set_chart_days,
                    size="1",
                ),
                width="100%",
                align="center",
            ),
            rx.recharts.bar_chart(
                rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False),
                rx.recharts.x_axis(data_key="day", font_size=11, min_tick_gap=16),
                rx.recharts.y_axis(font_size=11, width=64),
                rx.recharts.tooltip(),
                rx.recharts.legend(),
                *[
                    rx.recharts.bar(data_key=currency, fill=color, name=currency, is_animation_active=False)
                    for currency, color in CHART_COLORS.items()
                ],
                data=State.revenue_chart,
                width="100%",
                height=260,
            ),
            rx.text(
                "Net collected in major units, per UTC day, for the filtered payments.",
                size="1",
                color=rx.color("gray", 10),
            ),
            width="100%",
        ),
        width="100%",
    )


def method_chart() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Methods", size="3", as_="h2"),
            rx.cond(
                State.method_chart.length() > 0,
                rx.recharts.pie_chart(
                    rx.recharts.pie(
                        *[rx.recharts.cell(fill=color) for color in PIE_COLORS],
                        data=State.method_chart,
                        data_key="value",
                        name_key="name",
                        inner_radius="50%",
                        outer_radius="80%",
                        label=True,
                        is_animation_active=False,
                    ),
                    rx.recharts.tooltip(),
                    rx.recharts.legend(),
                    width="100%",
                    height=260,
                ),
                rx.center(rx.text("No payments", color=rx.color("gray", 10)), height="260px"),
            ),
            width="100%",
        ),
        width="100%",
    )


def side_panels() -> rx.Component:
    failures = rx.card(
        rx.vstack(
            rx.heading("Why payments failed", size="3", as_="h2"),
            rx.cond(
                State.failure_rows.length() > 0,
                rx.vstack(
                    rx.foreach(
                        State.failure_rows,
                        lambda row: rx.hstack(
                            rx.text(row["reason"], size="2"),
                            rx.spacer(),
                            rx.badge(row["count"], color_scheme="red", variant="soft"),
                            width="100%",
                        ),
                    ),
                    width="100%",
                    spacing="2",
                ),
                rx.text("No failed payments in this view.", size="2", color=rx.color("gray", 10)),
            ),
            width="100%",
        ),
        width="100%",
    )
    activity = rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading("Staff activity", size="3", as_="h2"),
                rx.spacer(),
                rx.badge(rx.icon("radio", size=12), "Live", color_scheme="green", variant="soft"),
                width="100%",
            ),
            rx.cond(
                State.activity.length() > 0,
                rx.vstack(
                    rx.foreach(
                        State.activity,
                        lambda item: rx.hstack(
                            rx.icon(item["icon"], size=16, color=rx.color("gray", 10)),
                            rx.vstack(
                                rx.text(item["who"], " ", item["action"], size="2"),
                                rx.text(item["role"], " · ", item["when"], size="1", color=rx.color("gray", 10)),
                                spacing="0",
                            ),
                            align="start",
                            width="100%",
                        ),
                    ),
                    width="100%",
                    spacing="2",
                    id="staff-activity",
                ),
                rx.text("No staff sign-ins yet.", size="2", color=rx.color("gray", 10)),
            ),
            width="100%",
        ),
        width="100%",
    )
    return rx.grid(failures, activity, columns=rx.breakpoints(initial="1", md="2"), gap="16px", width="100%")


def sort_header(label: str, column: str) -> rx.Component:
    arrow = rx.cond(
        State.sort == column,
        rx.icon("arrow-up", size=14),
        rx.cond(State.sort == "-" + column, rx.icon("arrow-down", size=14), rx.icon("arrow-up-down", size=14)),
    )
    return rx.table.column_header_cell(
        rx.button(
            label,
            arrow,
            variant="ghost",
            size="1",
            on_click=State.sort_by(column),
            aria_label=f"Sort by {label.lower()}",
        )
    )


def payment_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            # A button, not a link: an anchor would navigate and reload the view under the drawer.
            rx.button(
                row["reference"],
                on_click=State.open_payment(row["id"]),
                variant="ghost",
                size="2",
                weight="medium",
                white_space="nowrap",
                aria_label="Open " + row["reference"],
            )
        ),
        rx.table.cell(rx.text(row["when"], size="2", white_space="nowrap")),
        rx.table.cell(
            rx.vstack(
                rx.text(row["customer"], size="2", weight="medium"),
                rx.text(row["email"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            )
        ),
        rx.table.cell(rx.text(row["amount"], size="2", weight="medium", white_space="nowrap"), text_align="right"),
        rx.table.cell(rx.badge(row["status_label"], color_scheme=row["color"], variant="soft")),
        rx.table.cell(
            rx.vstack(
                rx.text(row["method"], size="2", white_space="nowrap"),
                rx.text(row["purpose"], size="1", color=rx.color("gray", 10), white_space="nowrap"),
                spacing="0",
            )
        ),
        _hover={"background": rx.color("gray", 2)},
    )


def payments_table() -> rx.Component:
    return rx.box(
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    rx.table.column_header_cell("Reference"),
                    sort_header("Date", "created_at"),
                    rx.table.column_header_cell("Customer"),
                    sort_header("Amount", "amount"),
                    rx.table.column_header_cell("Status"),
                    rx.table.column_header_cell("Method · purpose"),
                )
            ),
            rx.table.body(rx.foreach(State.rows, payment_row)),
            variant="surface",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def table_toolbar() -> rx.Component:
    return rx.hstack(
        rx.text(State.total_label, size="2", weight="medium", id="payments-total"),
        rx.text("· updated ", State.updated_at, size="1", color=rx.color("gray", 10)),
        rx.spacer(),
        rx.hstack(
            rx.text("Rows", size="2", color=rx.color("gray", 11)),
            rx.select.root(
                rx.select.trigger(aria_label="Rows per page"),
                rx.select.content(*[rx.select.item(str(size), value=str(size)) for size in PAGE_SIZES]),
                value=State.page_size,
                on_change=State.set_page_size,
                size="1",
            ),
            align="center",
        ),
        rx.button(rx.icon("download", size=14), "Export CSV", size="2", variant="soft", on_click=State.start_export),
        width="100%",
        align="center",
        wrap="wrap",
    )


def export_progress() -> rx.Component:
    return rx.box(
        rx.box(
            rx.box(id="export-progress-bar", height="100%", width="0%", background=rx.color("accent", 9)),
            height="6px",
            width="100%",
            background=rx.color("gray", 4),
            border_radius="3px",
            overflow="hidden",
        ),
        rx.text("", id="export-progress-label", size="1", color=rx.color("gray", 11), margin_top="4px"),
        id="export-progress",
        display="none",
        width="100%",
        role="status",
    )


def detail_field(label: str, value: rx.Var) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="1", color=rx.color("gray", 10)),
        rx.text(value, size="2", weight="medium", word_break="break-all"),
        spacing="0",
    )


def admin_actions() -> rx.Component:
    detail = State.detail
    refund = rx.cond(
        detail["refundable"] != "",
        rx.form(
            rx.vstack(
                rx.text("Refund (up to ", detail["refundable"], ")", size="2", weight="medium"),
                rx.hstack(
                    rx.input(
                        name="amount",
                        default_value=detail["refundable_major"],
                        aria_label="Refund amount",
                        input_mode="decimal",
                        width="120px",
                    ),
                    rx.input(name="reason", placeholder="Reason", aria_label="Refund reason", flex="1"),
                    rx.button("Refund", type="submit", color_scheme="red"),
                    width="100%",
                ),
                width="100%",
                spacing="2",
            ),
            on_submit=State.submit_refund,
            reset_on_submit=False,
            key=detail["refundable_major"],  # re-mounted with what is left after each refund
            width="100%",
        ),
        rx.fragment(),
    )
    reconcile = rx.cond(
        detail["stuck"] == "yes",
        rx.button(
            rx.icon("refresh-cw", size=14),
            "Send to reconciliation",
            variant="soft",
            on_click=State.send_to_reconciliation,
        ),
        rx.fragment(),
    )
    note = rx.form(
        rx.vstack(
            rx.text("Internal note", size="2", weight="medium"),
            rx.text_area(name="note", placeholder="Only staff see this", aria_label="Internal note", width="100%"),
            rx.button("Add note", type="submit", variant="soft"),
            width="100%",
            spacing="2",
        ),
        on_submit=State.submit_note,
        reset_on_submit=True,
        width="100%",
    )
    return rx.cond(
        State.can_change,
        rx.vstack(
            rx.heading("Actions", size="3", as_="h3"),
            callout(State.action_notice, "green", "circle-check"),
            error_callout(State.action_error),
            refund,
            reconcile,
            note,
            width="100%",
            spacing="3",
        ),
        rx.callout("Viewers can look but not change payments.", icon="eye", color_scheme="gray", size="1"),
    )


def timeline_item(item: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.center(
            rx.icon(item["icon"], size=14),
            width="28px",
            height="28px",
            border_radius="50%",
            background=rx.color("accent", 3),
            flex_shrink="0",
        ),
        rx.vstack(
            rx.text(item["title"], size="2", weight="medium"),
            rx.cond(item["detail"] != "", rx.text(item["detail"], size="1", color=rx.color("gray", 11)), rx.fragment()),
            rx.text(item["when"], size="1", color=rx.color("gray", 10)),
            spacing="0",
        ),
        align="start",
        width="100%",
    )


def detail_drawer() -> rx.Component:
    detail = State.detail
    # A panel of our own (not rx.drawer): opened and closed by the state only, so a live refresh
    # or the opening click can never close it behind the user's back.
    return rx.cond(
        State.drawer_open,
        rx.fragment(
            rx.box(
                position="fixed",
                inset="0",
                background="rgba(0, 0, 0, 0.35)",
                z_index="40",
                on_click=State.close_drawer,
            ),
            rx.box(
                rx.vstack(
                    rx.hstack(
                        rx.vstack(
                            rx.text("Payment", size="1", color=rx.color("gray", 10)),
                            rx.heading(detail["reference"], size="5"),
                            spacing="0",
                        ),
                        rx.spacer(),
                        rx.button(rx.icon("x"), variant="ghost", on_click=State.close_drawer, aria_label="Close"),
                        width="100%",
                    ),
                    rx.hstack(
                        rx.text(detail["amount"], size="7", weight="bold"),
                        rx.badge(detail["status_label"], color_scheme=detail["color"], size="2"),
                        align="center",
                        wrap="wrap",
                    ),
                    rx.cond(
                        detail["failure_reason"] != "",
                        rx.callout(
                            "Failed: " + detail["failure_reason"], icon="triangle-alert", color_scheme="red", size="1"
                        ),
                        rx.fragment(),
                    ),
                    rx.grid(
                        detail_field("Customer", detail["customer"]),
                        detail_field("Email", detail["email"]),
                        detail_field("Created", detail["created"]),
                        detail_field("Provider", detail["provider"]),
                        detail_field("Method", detail["method"]),
                        detail_field("Purpose", detail["purpose"]),
                        detail_field("Receiver", detail["receiver"]),
                        detail_field("Provider reference", detail["provider_reference"]),
                        columns="2",
                        gap="12px",
                        width="100%",
                    ),
                    detail_field("Description", detail["description"]),
                    rx.cond(detail["refunded"] != "", detail_field("Refunded", detail["refunded"]), rx.fragment()),
                    rx.divider(),
                    admin_actions(),
                    rx.divider(),
                    rx.heading("Timeline", size="3", as_="h3"),
                    rx.vstack(
                        rx.foreach(State.timeline, timeline_item), spacing="3", width="100%", id="payment-timeline"
                    ),
                    spacing="4",
                    width="100%",
                    padding="20px",
                ),
                width=["100%", "100%", "480px"],
                height="100%",
                right="0",
                top="0",
                position="fixed",
                overflow_y="auto",
                background=rx.color("gray", 1),
                z_index="50",
                role="dialog",
                aria_label="Payment details",
                aria_modal="true",
                box_shadow="-8px 0 24px rgba(0, 0, 0, 0.15)",
            ),
        ),
        rx.fragment(),
    )


def payments_admin_page() -> rx.Component:
    return page_shell(
        rx.script(EXPORT_SCRIPT),
        page_header("Payments", "Every payment across top-ups, call credits and bookings, live."),
        error_callout(State.error),
        rx.grid(
            rx.foreach(State.cards, stat_card),
            columns=rx.breakpoints(initial="2", sm="3", lg="6"),
            gap="12px",
            width="100%",
            margin_bottom="16px",
        ),
        rx.grid(
            revenue_chart(),
            method_chart(),
            columns=rx.breakpoints(initial="1", lg="2"),
            gap="16px",
            width="100%",
            margin_bottom="16px",
        ),
        filters_bar(),
        rx.vstack(
            table_toolbar(),
            export_progress(),
            rx.cond(
                State.is_loading,
                loading_rows(6),
                rx.cond(
                    State.rows.length() > 0,
                    rx.vstack(
                        payments_table(),
                        pager(State.page, State.total_pages, State.go_to_page),
                        width="100%",
                    ),
                    empty_state(
                        "search-x",
                        rx.cond(State.has_filters, "No payments match these filters", "No payments yet"),
                        "Change or clear the filters; new payments appear here as they happen.",
                    ),
                ),
            ),
            width="100%",
            spacing="3",
            margin_y="16px",
        ),
        side_panels(),
        detail_drawer(),
    )
