"""Top up a wallet through the mock provider's checkout; the balance changes live; failed and
unfinished payments are shown for what they are."""

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import screenshot
from tests.e2e.test_account_security import new_user
from tests.e2e.test_accounts import sign_in


def start_top_up(page: Page, amount: str, currency: str = "NGN") -> None:
    page.goto("/wallet")
    page.get_by_label("Amount").fill(amount)
    if currency != "NGN":
        page.get_by_role("combobox", name="Currency").click()
        page.get_by_role("option", name=currency).click()
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", name="Test payment")).to_be_visible()


def test_top_up_with_mock_provider_updates_balance_live(browser: Browser, page: Page, app_server):
    new_user("topper@example.com", "Tara Topper")
    sign_in(page, "topper@example.com", "correct-horse-battery")
    page.goto("/wallet")
    ngn_wallet = page.get_by_text("₦0.00").first
    expect(ngn_wallet).to_be_visible()
    screenshot(page, "wallet-empty")

    checkout_tab = page.context.new_page()
    start_top_up(checkout_tab, "1,250.50")
    expect(checkout_tab.get_by_text("₦1,250.50", exact=True)).to_be_visible()
    screenshot(checkout_tab, "mock-checkout")
    checkout_tab.get_by_role("button", name="Pay", exact=True).click()
    expect(checkout_tab).to_have_url(re.compile(r"/wallet/?\?payment=PAY-"))

    # The first tab was never reloaded: the payment's webhook pushed the new balance to it.
    expect(page.get_by_text("₦1,250.50").first).to_be_visible(timeout=5000)
    expect(page.get_by_text("Wallet top-up ₦1,250.50").first).to_be_visible()
    screenshot(page, "wallet-after-top-up")


def test_failed_payment_is_shown_and_credits_nothing(page: Page):
    new_user("failer@example.com", "Fay Failer")
    sign_in(page, "failer@example.com", "correct-horse-battery")
    start_top_up(page, "7", currency="USD")
    expect(page.get_by_text("$7.00", exact=True)).to_be_visible()
    page.get_by_role("button", name="Fail payment").click()
    expect(page.get_by_role("heading", name="Wallet")).to_be_visible()
    expect(page.get_by_text("failed").first).to_be_visible()
    expect(page.get_by_text("$0.00").first).to_be_visible()


def test_unfinished_payment_can_be_verified(page: Page):
    new_user("verity@example.com", "Vera Verify")
    sign_in(page, "verity@example.com", "correct-horse-battery")
    start_top_up(page, "300")
    page.goto("/wallet")
    row = page.get_by_role("row").filter(has_text="processing")
    expect(row).to_have_count(1)
    row.get_by_role("button", name=re.compile("^Verify ")).click()
    expect(page.get_by_text(re.compile(r"PAY-\w+ is processing\."))).to_be_visible()
    screenshot(page, "wallet-verify-processing")


def test_bad_amount_is_refused_in_words(page: Page):
    new_user("typo@example.com", "Ty Po")
    sign_in(page, "typo@example.com", "correct-horse-battery")
    page.goto("/wallet")
    page.get_by_label("Amount").fill("12.345")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_text("NGN amounts have at most 2 decimals.")).to_be_visible()
    page.get_by_label("Amount").fill("0")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_text("Enter an amount greater than zero.")).to_be_visible()
