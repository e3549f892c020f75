"""Sign up, confirm email, sign in and out, reset password — in the browser."""

import re
import time

from playwright.sync_api import Browser, Page, expect
from sqlmodel import col, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.mail import MailMessage
from paytime_app.services.demo import DEMO_PASSWORD
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot


def latest_link(to_address: str, path: str, timeout_seconds: float = 10) -> str:
    """The newest link to `path` mailed to `to_address`; mail is sent by a background job, so wait for it."""
    pattern = re.compile(rf"https?://[^\s]+{re.escape(path)}\?token=[\w-]+")
    deadline = time.monotonic() + timeout_seconds
    while True:
        with unit_of_work() as session:
            bodies = session.exec(
                select(MailMessage.body_text)
                .where(MailMessage.to_address == to_address)
                .order_by(col(MailMessage.created_at).desc())
            ).all()
        found = next((match.group(0) for body in bodies if (match := pattern.search(body))), None)
        if found:
            return found
        assert time.monotonic() < deadline, f"no {path} link mailed to {to_address}"
        time.sleep(0.2)


def latest_device_code(to_address: str) -> str:
    with unit_of_work() as session:
        message = session.exec(
            select(MailMessage)
            .where(MailMessage.to_address == to_address, col(MailMessage.subject).contains("sign-in code"))
            .order_by(col(MailMessage.created_at).desc())
        ).first()
    assert message is not None, f"no sign-in code mailed to {to_address}"
    return message.subject.split()[0]


def sign_in(page: Page, email: str, password: str) -> None:
    """Sign in as a person would, confirming a new browser with the emailed code when asked."""
    page.goto("/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    confirm_new_device(page, email)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def confirm_new_device(page: Page, email: str) -> None:
    """Wait for the sign-in to settle; answer the new-device step with the emailed code if asked."""
    signed_in = page.get_by_role("button", name="Account menu")
    device_prompt = page.get_by_text("to confirm this new device")
    second_factor = page.get_by_text("Enter the 6-digit code from your authenticator app")
    refusal = page.get_by_role("alert")
    expect(signed_in.or_(device_prompt).or_(second_factor).or_(refusal).first).to_be_visible()
    if device_prompt.is_visible():
        screenshot(page, "sign-in-new-device-code")
        page.get_by_label("Code").fill(latest_device_code(email))
        page.get_by_role("button", name="Continue").click()
        expect(page).not_to_have_url(re.compile(r"/sign-in"))


def test_sign_in_and_sign_out(page: Page):
    sign_in(page, "ada@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_text("Ada Obi")).to_be_visible()
    expect(page.get_by_role("link", name="Account", exact=True)).to_be_visible()
    screenshot(page, "signed-in-home")
    sign_out(page)
    expect(page.get_by_role("link", name="Account", exact=True)).to_have_count(0)


def test_sign_in_wrong_password_says_so(page: Page):
    sign_in(page, "ben@paytime.local", "not-the-password")
    expect(page.get_by_text("That email and password don't match an account.")).to_be_visible()
    screenshot(page, "sign-in-error")


def test_sign_up_confirm_email_then_sign_in(page: Page):
    page.goto("/sign-up")
    page.get_by_label("Your name").fill("Chioma Eze")
    page.get_by_label("Email").fill("chioma@example.com")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("That password is too common")).to_be_visible()
    page.get_by_label("Password").fill("a-long-river-at-dawn")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("Check your inbox")).to_be_visible()
    screenshot(page, "sign-up-check-email")

    sign_in(page, "chioma@example.com", "a-long-river-at-dawn")
    expect(page.get_by_text("Confirm your email address first")).to_be_visible()
    expect(page.get_by_role("button", name="Send the confirmation link again")).to_be_visible()

    page.goto(latest_link("chioma@example.com", "/verify-email"))
    expect(page.get_by_text("Your email is confirmed")).to_be_visible()
    screenshot(page, "verify-email")
    page.goto(latest_link("chioma@example.com", "/verify-email"))
    expect(page.get_by_text("This link is not valid")).to_be_visible()

    sign_in(page, "chioma@example.com", "a-long-river-at-dawn")
    expect(page.get_by_text("Chioma Eze")).to_be_visible()


def test_password_reset_signs_out_open_tabs_live(browser: Browser, page: Page, app_server):
    in_transaction(
        create_user,
        email="dana@example.com",
        display_name="Dana Reset",
        password="dana-old-secret-1",
        email_verified=True,
    )
    other = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(other, "dana@example.com", "dana-old-secret-1")
    expect(other.get_by_text("Dana Reset")).to_be_visible()

    page.goto("/forgot-password")
    page.get_by_label("Email").fill("dana@example.com")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_text("If an account uses that email")).to_be_visible()
    screenshot(page, "forgot-password")

    page.goto(latest_link("dana@example.com", "/reset-password"))
    page.get_by_label("New password", exact=True).fill("dana-new-secret-2026")
    page.get_by_label("Repeat the new password").fill("dana-new-secret-2026")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Password changed. Every device was signed out.")).to_be_visible()
    screenshot(page, "reset-password-done")

    expect(other.get_by_text("Your session ended. Please sign in again.")).to_be_visible(timeout=5000)
    screenshot(other, "session-expired-live")
    sign_in(page, "dana@example.com", "dana-new-secret-2026")
    expect(page.get_by_text("Dana Reset")).to_be_visible()
    other.context.close()
