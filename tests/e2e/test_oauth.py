"""Google and GitHub sign-in through the real authlib code, against a fake provider on loopback."""

from playwright.sync_api import Page, expect

from paytime_app.db import in_transaction
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import confirm_new_device, sign_in, sign_out


def test_sign_up_with_google_then_sign_in_again(page: Page, oauth_provider):
    oauth_provider.next_identity = {
        "sub": "g-2001",
        "email": "grace@example.com",
        "email_verified": True,
        "name": "Grace Google",
    }
    page.goto("/sign-in")
    expect(page.get_by_role("link", name="Continue with GitHub")).to_be_visible()
    screenshot(page, "sign-in-with-providers")
    page.get_by_role("link", name="Continue with Google").click()
    confirm_new_device(page, "grace@example.com")
    expect(page.get_by_text("Grace Google")).to_be_visible()
    page.goto("/account")
    expect(page.get_by_text("grace@example.com")).to_be_visible()
    expect(page.get_by_role("row")).to_have_count(2)

    sign_out(page)
    page.get_by_role("link", name="Continue with Google").click()
    expect(page.get_by_text("Grace Google")).to_be_visible()


def test_provider_email_of_existing_account_is_not_linked(page: Page, oauth_provider):
    in_transaction(
        create_user,
        email="owner@example.com",
        display_name="Owner Person",
        password="owner-secret-123",
        email_verified=True,
    )
    oauth_provider.next_identity = {
        "sub": "g-3001",
        "email": "owner@example.com",
        "email_verified": True,
        "name": "Impostor",
    }
    page.goto("/sign-in")
    page.get_by_role("link", name="Continue with Google").click()
    expect(page.get_by_text("An account with this email already exists")).to_be_visible()
    screenshot(page, "sign-in-oauth-email-in-use")


def test_link_and_unlink_github_from_account_page(page: Page, oauth_provider):
    in_transaction(
        create_user,
        email="linker@example.com",
        display_name="Lin Ker",
        password="linker-secret-123",
        email_verified=True,
    )
    sign_in(page, "linker@example.com", "linker-secret-123")
    expect(page.get_by_text("Lin Ker")).to_be_visible()
    oauth_provider.next_identity = {
        "sub": "4242",
        "login": "linker",
        "email": "linker@example.com",
        "email_verified": True,
        "name": "Lin Ker",
    }
    page.goto("/account")
    page.get_by_role("link", name="Link GitHub").click()
    expect(page.get_by_text("Sign-in provider linked.")).to_be_visible()
    screenshot(page, "account-provider-linked")
    page.get_by_role("button", name="Unlink").click()
    expect(page.get_by_text("Sign-in provider unlinked.")).to_be_visible()
