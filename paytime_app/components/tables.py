"""Tables that scroll sideways on a phone instead of overflowing the page, and a pager under them."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx


def data_table(headers: list[str | rx.Component], rows: rx.Var, render_row: Callable[[rx.Var], rx.Component]):
    return rx.box(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(header) for header in headers])),
            rx.table.body(rx.foreach(rows, render_row)),
            variant="surface",
            width="100%",
        ),
        overflow_x="auto",
        width="100%",
    )


def pager(page: rx.Var, total_pages: rx.Var, go: rx.EventHandler) -> rx.Component:
    return rx.hstack(
        rx.button("Previous", variant="soft", disabled=page <= 1, on_click=go(page - 1)),
        rx.text("Page ", page, " of ", total_pages, size="2"),
        rx.button("Next", variant="soft", disabled=page >= total_pages, on_click=go(page + 1)),
        align="center",
        justify="end",
        width="100%",
        margin_top="12px",
    )
