"""Ticket PDFs: one A6 page per ticket with the event, attendee, type, code and the signed QR (fpdf2 + qrcode)."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

import qrcode
from fpdf import FPDF

from paytime_app.models.bookings import Ticket, TicketStatus
from paytime_app.models.events import Event, TicketType


def qr_png(payload: str) -> bytes:
    """The QR code of a ticket's signed payload as PNG bytes."""
    image = qrcode.make(payload, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _latin(text: str) -> str:
    # The core PDF fonts are Latin-1: replace what they cannot draw rather than fail on a name.
    return text.encode("latin-1", "replace").decode("latin-1")


def render_tickets_pdf(tickets: list[tuple[Ticket, Event, TicketType]]) -> bytes:
    """A PDF with one page per ticket."""
    pdf = FPDF(format=(148, 210))  # A5 in millimetres
    pdf.set_auto_page_break(auto=False)
    pdf.set_title("PayTime tickets")
    for ticket, event, ticket_type in tickets:
        pdf.add_page()
        zone = ZoneInfo(event.timezone)
        pdf.set_font("Helvetica", "B", 18)
        pdf.set_xy(12, 14)
        pdf.multi_cell(124, 8, _latin(event.title))
        pdf.set_font("Helvetica", "", 11)
        pdf.set_x(12)
        starts = event.starts_at.astimezone(zone)
        pdf.multi_cell(124, 6, _latin(f"{starts:%A %d %B %Y, %H:%M} ({event.timezone})"))
        pdf.set_x(12)
        pdf.multi_cell(124, 6, _latin(event.venue or "Venue to be announced"))
        pdf.ln(4)
        pdf.set_x(12)
        pdf.set_font("Helvetica", "B", 12)
        admits = f" - admits {ticket.admits}" if ticket.admits > 1 else ""
        pdf.multi_cell(124, 7, _latin(f"{ticket_type.name}{admits}"))
        pdf.set_font("Helvetica", "", 11)
        pdf.set_x(12)
        pdf.multi_cell(124, 6, _latin(f"Attendee: {ticket.attendee_name}"))
        if ticket.status != TicketStatus.VALID:
            pdf.set_x(12)
            pdf.set_text_color(200, 0, 0)
            pdf.set_font("Helvetica", "B", 14)
            pdf.multi_cell(124, 8, "CANCELLED - not valid for entry")
            pdf.set_text_color(0, 0, 0)
        pdf.image(io.BytesIO(qr_png(ticket.qr_payload)), x=29, y=92, w=90, h=90)
        pdf.set_xy(12, 186)
        pdf.set_font("Courier", "B", 14)
        pdf.cell(124, 8, ticket.code, align="C")
        pdf.set_xy(12, 196)
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(
            124, 4, "Show this code at the entrance. It is signed by PayTime and can be checked offline.", align="C"
        )
    return bytes(pdf.output())
