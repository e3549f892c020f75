"""Build the PayTime app: pages, API routes, middleware and background workers."""

from __future__ import annotations

import logging

import reflex as rx
from reflex.event import EventSpec

from paytime_app import routes
from paytime_app.api import create_api
from paytime_app.lifespan import database_check, job_worker
from paytime_app.pages.errors import forbidden_page, not_found_page, server_error_page
from paytime_app.pages.landing import landing_page
from paytime_app.pages.mailbox import mailbox_page
from paytime_app.settings import get_settings
from paytime_app.state.mailbox import MailboxState
from paytime_app.state.middleware import EventCorrelationMiddleware

logger = logging.getLogger("paytime.events")


def report_backend_error(exception: Exception) -> EventSpec:
    """Log the failure with the event's correlation id; show the person words, not a traceback."""
    logger.error("event handler failed", exc_info=exception)
    return rx.toast.error("Something went wrong on our side. Please try again.", close_button=True)


app = rx.App(api_transformer=create_api(), backend_exception_handler=report_backend_error)
app.add_middleware(EventCorrelationMiddleware())
app.register_lifespan_task(database_check)
if get_settings().jobs_in_app:
    app.register_lifespan_task(job_worker)

app.add_page(landing_page, route=routes.HOME, title="PayTime")
app.add_page(mailbox_page, route=routes.DEV_MAILBOX, title="Dev mailbox · PayTime", on_load=MailboxState.load_messages)
app.add_page(forbidden_page, route=routes.FORBIDDEN, title="No access · PayTime")
app.add_page(server_error_page, route=routes.SERVER_ERROR, title="Error · PayTime")
app.add_page(not_found_page, route="404", title="Page not found · PayTime")
