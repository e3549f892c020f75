"""The app shell in a browser: landing page, navigation, colour mode, mobile width, error pages,
the dev mailbox fed by the durable mail job."""

import re

from playwright.sync_api import Page, expect

from paytime_app.db import in_transaction
from paytime_app.services.mail import queue_mail
from tests.e2e.conftest import screenshot


def test_landing_page_shows_product_and_empty_events(page: Page):
    page.goto("/")
    expect(page.get_by_role("heading", name="Pay, get paid, and get in.")).to_be_visible()
    expect(page.get_by_role("heading", name="No events on sale yet")).to_be_visible()
    expect(page.get_by_role("link", name="Browse events")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot(page, "landing-desktop")


def test_colour_mode_switches_to_dark(page: Page):
    page.goto("/")
    page.emulate_media(color_scheme="light")
    html = page.locator("html")
    page.get_by_role("button", name="Switch light or dark mode").click()
    expect(html).to_have_class(re.compile(r"\bdark\b"))
    screenshot(page, "landing-dark")


def test_landing_page_fits_a_phone(mobile_page: Page):
    mobile_page.goto("/")
    expect(mobile_page.get_by_role("heading", name="Pay, get paid, and get in.")).to_be_visible()
    width = mobile_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"page is {width}px wide at a 375px viewport"
    mobile_page.get_by_role("button", name="Open menu").click()
    expect(mobile_page.get_by_role("menuitem", name="Sign in")).to_be_visible()
    screenshot(mobile_page, "landing-mobile-menu")


def test_unknown_page_shows_product_404(page: Page):
    page.goto("/no/such/page")
    expect(page.get_by_role("heading", name="We can't find that page")).to_be_visible()
    page.get_by_role("link", name="Back to home").click()
    expect(page).to_have_url(re.compile(r"/$"))
    screenshot(page, "error-404")


def test_forbidden_and_error_pages(page: Page):
    page.goto("/forbidden")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
    screenshot(page, "error-403")
    page.goto("/error")
    expect(page.get_by_role("heading", name="Something went wrong on our side")).to_be_visible()
    screenshot(page, "error-500")


def test_dev_mailbox_shows_mail_delivered_by_the_job_worker(page: Page, app_server):
    page.goto("/dev/mailbox")
    expect(page.get_by_role("heading", name="Dev mailbox")).to_be_visible()
    in_transaction(queue_mail, to_address="ada@paytime.local", subject="Welcome to PayTime", body_text="Hello Ada")
    page.get_by_label("Recipient").fill("ada@")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("Welcome to PayTime")).to_be_visible()
    screenshot(page, "dev-mailbox")
    page.get_by_label("Recipient").fill("nobody@")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("heading", name="No mail yet")).to_be_visible()
