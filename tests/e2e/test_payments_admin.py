"""The payments dashboard in the browser: stats and charts, filters in the URL, sorting, a customer's
payment appearing live, the detail drawer with its timeline, a partial refund, the CSV export with
its progress, viewers reading without actions, and the phone layout."""

import csv
import io
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from paytime_app.db import in_transaction
from paytime_app.services.demo import DEMO_PASSWORD
from paytime_app.services.demo_payments import seed_demo_payments
from tests.e2e.conftest import SCREENSHOTS, screenshot
from tests.e2e.test_accounts import sign_in
from tests.e2e.test_admin import open_staff_page
from tests.e2e.test_wallet import start_top_up

_seeded: list[int] = []


def viewport_screenshot(page: Page, name: str) -> None:
    """What the person sees now: the drawer is fixed to the viewport, which a full-page capture misplaces."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def seed_history() -> None:
    if not _seeded:
        _seeded.append(in_transaction(seed_demo_payments, count=400, seed=11))


def test_admin_dashboard_filters_live_refund_and_export(browser: Browser, page: Page, app_server):
    seed_history()
    sign_in(page, "admin@paytime.local", DEMO_PASSWORD)
    open_staff_page(page, "Payments")
    expect(page.get_by_role("heading", name="Payments", exact=True)).to_be_visible()
    expect(page.get_by_text("Success rate")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^4\d\d payments$"))).to_be_visible()
    expect(page.get_by_role("heading", name="Revenue per day")).to_be_visible()
    screenshot(page, "payments-dashboard")

    # Filters live in the URL: a bookmarked view opens as it was left.
    page.goto("/admin/payments?status=failed&currency=NGN")
    expect(page.get_by_text(re.compile(r"^\d+ payments?$"))).to_be_visible()
    badges = page.get_by_role("row").locator("span", has_text=re.compile("^(succeeded|failed|pending)$"))
    expect(badges.first).to_have_text("failed")
    assert set(badges.all_inner_texts()) == {"failed"}
    page.get_by_label("Search payments").fill("call credits")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"status=failed.*q=call\+credits|q=call\+credits.*status=failed"))
    page.get_by_role("button", name="Clear").click()
    expect(page).to_have_url(re.compile(r"/admin/payments/?$"))

    page.get_by_role("button", name="Sort by amount").click()
    expect(page).to_have_url(re.compile(r"sort=-amount"))
    amounts = page.get_by_role("row").locator("td:nth-child(4)").all_inner_texts()
    values = [float(re.sub(r"[^\d.]", "", text)) for text in amounts if text]
    assert len(values) > 3
    page.get_by_role("button", name="Sort by date").click()

    # A customer pays in another browser: the dashboard shows it without a reload.
    customer = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(customer, "ben@paytime.local", DEMO_PASSWORD)
    start_top_up(customer, "4,321.00")
    customer.get_by_role("button", name="Pay", exact=True).click()
    expect(customer).to_have_url(re.compile(r"/wallet/?\?payment=PAY-"))
    reference = re.search(r"payment=(PAY-\w+)", customer.url).group(1)
    new_row = page.get_by_role("row").filter(has_text=reference)
    expect(new_row).to_be_visible(timeout=5000)
    expect(new_row.get_by_text("succeeded")).to_be_visible(timeout=5000)
    customer.context.close()

    # The drawer: timeline, then a partial refund through the mock provider.
    page.get_by_role("button", name=f"Open {reference}").click()
    drawer = page.get_by_role("dialog", name="Payment details")
    expect(drawer.get_by_text("₦4,321.00").first).to_be_visible()
    expect(drawer.get_by_text(re.compile("Webhook payment.succeeded"))).to_be_visible()
    expect(drawer.get_by_text(re.compile(r"^Ledger TX-"))).to_be_visible()
    drawer.get_by_label("Refund amount").fill("1000")
    drawer.get_by_label("Refund reason").fill("Customer asked")
    drawer.get_by_role("button", name="Refund", exact=True).click()
    expect(drawer.get_by_text("Refunded.")).to_be_visible()
    expect(drawer.get_by_text("partially refunded").first).to_be_visible()
    drawer.get_by_label("Internal note").fill("Refunded part after a call with Ben.")
    drawer.get_by_role("button", name="Add note").click()
    expect(drawer.get_by_text("Refunded part after a call with Ben.")).to_be_visible()
    viewport_screenshot(page, "payments-drawer")
    drawer.get_by_role("button", name="Close").click()

    # Export exactly the filtered set, with the progress shown.
    page.goto(f"/admin/payments?q={reference}")
    expect(page.get_by_text("1 payment", exact=True)).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    expect(page.get_by_text(re.compile(r"Done: 1 rows saved"))).to_be_visible()
    rows = list(csv.reader(io.StringIO(Path(download_info.value.path()).read_text(), newline="")))
    assert [row[0] for row in rows[1:]] == [reference]
    assert (rows[1][3], rows[1][4], rows[1][5]) == ("4321.00", "1000.00", "NGN")

    page.goto("/admin/audit")
    expect(page.get_by_text("payment.refund_requested").first).to_be_visible()
    expect(page.get_by_text("payment.note_added").first).to_be_visible()


def test_viewer_reads_dashboard_without_actions_and_sees_staff_sign_ins(browser: Browser, page: Page, app_server):
    seed_history()
    sign_in(page, "viewer@paytime.local", DEMO_PASSWORD)
    page.goto("/admin/payments")
    expect(page.get_by_text("Success rate")).to_be_visible()
    page.get_by_role("button", name=re.compile("^Open PAY-")).first.click()
    drawer = page.get_by_role("dialog", name="Payment details")
    expect(drawer.get_by_text("Viewers can look but not change payments.")).to_be_visible()
    expect(drawer.get_by_role("button", name="Refund", exact=True)).to_have_count(0)
    drawer.get_by_role("button", name="Close").click()

    # Another staff member signs in: the activity feed shows it live.
    admin = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(admin, "admin@paytime.local", DEMO_PASSWORD)
    feed = page.locator("#staff-activity")
    expect(feed.get_by_text(re.compile("Amara Admin signed in")).first).to_be_visible(timeout=5000)
    admin.context.close()
    screenshot(page, "payments-viewer")


def test_customer_is_kept_out_of_the_dashboard(page: Page):
    sign_in(page, "ada@paytime.local", DEMO_PASSWORD)
    page.goto("/admin/payments")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()


def test_dashboard_on_a_phone(mobile_page: Page):
    seed_history()
    sign_in(mobile_page, "admin@paytime.local", DEMO_PASSWORD)
    mobile_page.goto("/admin/payments")
    expect(mobile_page.get_by_text("Success rate")).to_be_visible()
    expect(mobile_page.get_by_role("button", name=re.compile("^Open PAY-")).first).to_be_visible()
    width = mobile_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 380, f"the page scrolls sideways ({width}px)"
    screenshot(mobile_page, "payments-mobile")
    mobile_page.get_by_role("button", name=re.compile("^Open PAY-")).first.click()
    expect(mobile_page.get_by_role("dialog", name="Payment details")).to_be_visible()
    viewport_screenshot(mobile_page, "payments-mobile-drawer")
