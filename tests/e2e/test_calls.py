"""Two people in two browsers: one buys credits and calls, the other sees it ring live and answers;
both see the running time; hanging up bills by the second."""

import re

from playwright.sync_api import Browser, Page, expect

from paytime_app.db import in_transaction
from paytime_app.money import Currency
from paytime_app.services.ledger import transfer
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.e2e.conftest import screenshot
from tests.e2e.test_account_security import new_user
from tests.e2e.test_accounts import sign_in


def fund(user, amount_minor: int) -> None:
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(user.id, WalletKind.PRIMARY),
        amount_minor=amount_minor,
        currency=Currency.NGN,
        idempotency_key=f"e2e:fund:{user.id}",
        kind="demo_funding",
        description="Test funds",
    )


def test_call_between_two_users_is_billed_by_the_second(browser: Browser, page: Page, app_server):
    caller = in_transaction(
        create_user,
        email="caller@example.com",
        display_name="Cal Ler",
        password="correct-horse-battery",
        email_verified=True,
    )
    new_user("callee@example.com", "Cal Lee")
    fund(caller, 100_000_00)
    callee_page = browser.new_context(base_url=app_server["base_url"]).new_page()
    callee_page.set_default_timeout(15_000)
    sign_in(callee_page, "callee@example.com", "correct-horse-battery")
    callee_page.goto("/calls")
    expect(callee_page.get_by_role("heading", name="No calls yet")).to_be_visible()

    sign_in(page, "caller@example.com", "correct-horse-battery")
    page.goto("/calls")
    page.get_by_label("Credits to buy").fill("50")
    page.get_by_role("button", name="Buy from wallet").click()
    expect(page.get_by_text("Call credits added from your wallet.")).to_be_visible()
    expect(page.get_by_text("₦50.00").first).to_be_visible()

    page.get_by_label("Who").fill("callee@example.com")
    page.get_by_role("button", name="Call", exact=True).click()
    expect(page.get_by_role("heading", name="Ringing…")).to_be_visible()
    screenshot(page, "calls-ringing")

    expect(callee_page.get_by_role("heading", name="Incoming call")).to_be_visible(timeout=5000)
    screenshot(callee_page, "calls-incoming")
    callee_page.get_by_role("button", name="Answer").click()
    expect(callee_page.get_by_role("heading", name="On a call")).to_be_visible()
    expect(page.get_by_role("heading", name="On a call")).to_be_visible(timeout=5000)
    expect(page.get_by_label("Call time")).to_have_text(re.compile(r"0:0[2-9]"), timeout=10_000)
    screenshot(page, "calls-active")

    page.get_by_role("button", name="Hang up").click()
    expect(page.get_by_text("Call ended.")).to_be_visible()
    expect(page.get_by_text(re.compile(r"₦0\.\d\d for 0:0\d")).first).to_be_visible()
    expect(callee_page.get_by_role("heading", name="On a call")).to_have_count(0, timeout=5000)
    screenshot(page, "calls-history")
    callee_page.context.close()


def test_call_without_credits_is_refused_in_words(page: Page):
    new_user("broke@example.com", "Bro Ke")
    sign_in(page, "broke@example.com", "correct-horse-battery")
    page.goto("/calls")
    page.get_by_label("Who").fill("+2348012345678")
    page.get_by_role("button", name="Call", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("credits")
