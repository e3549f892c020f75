"""An IOU between two friends in two browsers: the borrower opens it, the lender sees it live, the
borrower pays from the wallet, and both sides show it paid without reloading."""

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in
from tests.e2e.test_calls import fund
from tests.e2e.test_friends import PASSWORD, befriend, person, second_browser


def test_iou_opened_paid_and_both_sides_update_live(browser: Browser, page: Page, app_server):
    ola = person("ola@example.com", "Ola Borrower")
    pat = person("pat@example.com", "Pat Lender")
    befriend(ola, pat)
    fund(ola, 100_000_00)
    lender = second_browser(browser, app_server, "pat@example.com")
    lender.goto("/ious")
    lender.get_by_role("tab", name="Owed to me").click()
    expect(lender.get_by_role("heading", name="Nobody owes you")).to_be_visible()

    sign_in(page, "ola@example.com", PASSWORD)
    page.goto("/ious")
    expect(page.get_by_role("heading", name="You don't owe anyone")).to_be_visible()
    screenshot(page, "ious-empty")
    page.get_by_role("combobox", name="Friend you owe").click()
    page.get_by_role("option", name="Pat Lender").click()
    page.get_by_label("Amount").fill("4,000")
    page.get_by_label("From my PayTime wallet").check()
    page.get_by_label("Note or meeting place").fill("Concert tickets")
    page.get_by_role("button", name="Record IOU").click()
    expect(page.get_by_text("IOU recorded.")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Pat Lender").filter(has_text="IOU-")
    expect(row.get_by_text("Pending")).to_be_visible()
    screenshot(page, "ious-opened")

    # The lender's tab shows it live, with a toast.
    lender_row = lender.get_by_role("row").filter(has_text="Ola Borrower").filter(has_text="IOU-")
    expect(lender_row.get_by_text("₦4,000.00")).to_be_visible(timeout=5000)
    expect(lender.get_by_text("Ola Borrower says they owe you ₦4,000.00").first).to_be_visible(timeout=5000)
    lender_row.get_by_role("button", name="Acknowledge").click()
    expect(lender.get_by_text("Acknowledged.")).to_be_visible()
    screenshot(lender, "ious-owed-to-me")

    row.get_by_role("button", name="Pay from wallet").click()
    expect(page.get_by_text("Paid from your wallet.")).to_be_visible()
    expect(row.get_by_text("Paid (wallet)")).to_be_visible()
    expect(lender_row.get_by_text("Paid (wallet)")).to_be_visible(timeout=5000)
    expect(lender.get_by_text("Ola Borrower paid you ₦4,000.00").first).to_be_visible(timeout=5000)
    screenshot(lender, "ious-paid-lender")
    lender.context.close()


def test_ious_page_on_a_phone(mobile_page: Page):
    quinn = person("quinn@example.com", "Quinn Ade")
    befriend(quinn, person("rita@example.com", "Rita Eze"))
    sign_in(mobile_page, "quinn@example.com", PASSWORD)
    mobile_page.goto("/ious")
    expect(mobile_page.get_by_role("heading", name="I owe a friend")).to_be_visible()
    assert mobile_page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(mobile_page, "ious-mobile")
