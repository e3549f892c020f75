"""Two-factor authentication and signed-in devices, in the browser."""

import re
import time

import pyotp
from playwright.sync_api import Browser, Page, expect

from paytime_app.db import in_transaction
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in, sign_out


def new_user(email: str, name: str, password: str = "correct-horse-battery") -> None:
    in_transaction(create_user, email=email, display_name=name, password=password, email_verified=True)


def test_two_factor_enroll_then_sign_in_with_code(page: Page):
    new_user("tofu@example.com", "Tofu Two")
    sign_in(page, "tofu@example.com", "correct-horse-battery")
    expect(page.get_by_text("Tofu Two")).to_be_visible()
    page.goto("/account")
    page.get_by_role("button", name="Set up two-factor authentication").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    screenshot(page, "account-2fa-enroll")
    secret = page.locator("code").first.inner_text().strip()
    totp = pyotp.TOTP(secret)
    enrolled_at = time.time()
    page.get_by_label("Authenticator code").fill(totp.at(enrolled_at))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("Save these recovery codes")).to_be_visible()
    assert page.locator("code").count() == 10
    screenshot(page, "account-2fa-recovery-codes")
    page.get_by_role("button", name="I have saved them").click()
    expect(page.get_by_text("Sign-in asks for a code from your app.")).to_be_visible()

    sign_out(page)
    sign_in(page, "tofu@example.com", "correct-horse-battery")
    expect(page.get_by_text("Enter the 6-digit code from your authenticator app")).to_be_visible()
    screenshot(page, "sign-in-second-factor")
    page.get_by_label("Code").fill(totp.at(enrolled_at))  # the code that turned 2FA on: refused from now on
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.get_by_role("button", name="Account menu")).to_have_count(0)
    page.get_by_label("Code").fill(totp.at(max(time.time(), enrolled_at + 30)))  # a later time step
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("Tofu Two")).to_be_visible()


def test_devices_list_and_sign_out_another_device_live(browser: Browser, page: Page, app_server):
    new_user("devi@example.com", "Devi Devices")
    other = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(other, "devi@example.com", "correct-horse-battery")
    expect(other.get_by_text("Devi Devices")).to_be_visible()
    sign_in(page, "devi@example.com", "correct-horse-battery")
    expect(page.get_by_text("Devi Devices")).to_be_visible()

    page.goto("/account")
    rows = page.get_by_role("row")
    expect(rows).to_have_count(3)  # header + two devices
    expect(page.get_by_text("this device")).to_have_count(1)
    screenshot(page, "account-devices")
    other_row = rows.filter(has_not_text="this device").filter(has_text="Chrome")
    other_row.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("That device is signed out.")).to_be_visible()
    expect(other.get_by_text("Your session ended. Please sign in again.")).to_be_visible(timeout=5000)
    expect(rows).to_have_count(2)
    other.context.close()


def test_account_page_requires_sign_in(page: Page):
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/account/?$"))


def test_sign_in_and_account_pages_fit_a_phone(mobile_page: Page):
    new_user("mobi@example.com", "Mobi Phone")
    mobile_page.goto("/sign-in")
    expect(mobile_page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot(mobile_page, "sign-in-mobile")
    sign_in(mobile_page, "mobi@example.com", "correct-horse-battery")
    expect(mobile_page.get_by_role("button", name="Open menu")).to_be_visible()
    mobile_page.goto("/account")
    expect(mobile_page.get_by_role("heading", name="Signed-in devices")).to_be_visible()
    width = mobile_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"account page is {width}px wide at a 375px viewport"
    screenshot(mobile_page, "account-mobile")
