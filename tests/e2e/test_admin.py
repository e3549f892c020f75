"""Staff pages in the browser: admins change users, viewers only look, customers are kept out."""

import re

from playwright.sync_api import Browser, Page, expect

from paytime_app.services.demo import DEMO_PASSWORD
from tests.e2e.conftest import screenshot
from tests.e2e.test_account_security import new_user
from tests.e2e.test_accounts import sign_in


def test_admin_changes_role_and_disables_user_live(browser: Browser, page: Page, app_server):
    new_user("ezra@example.com", "Ezra Target")
    victim = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(victim, "ezra@example.com", "correct-horse-battery")
    expect(victim.get_by_text("Ezra Target")).to_be_visible()

    sign_in(page, "admin@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.get_by_role("link", name="Users").click()
    page.get_by_label("Search users").fill("ezra")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("row")).to_have_count(2)
    page.get_by_label("Role for ezra@example.com").click()
    page.get_by_role("option", name="seller").click()
    expect(page.get_by_text("Role changed.")).to_be_visible()
    page.get_by_role("button", name="Disable ezra@example.com").click()
    expect(page.get_by_text("Account disabled; its sessions have ended.")).to_be_visible()
    screenshot(page, "admin-users")
    expect(victim.get_by_text("Your session ended. Please sign in again.")).to_be_visible(timeout=5000)
    sign_in(victim, "ezra@example.com", "correct-horse-battery")
    expect(victim.get_by_text("This account is disabled")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_text("user.role_changed").first).to_be_visible()
    expect(page.get_by_text("user.disabled").first).to_be_visible()
    screenshot(page, "admin-audit-log")
    victim.context.close()


def test_viewer_sees_users_but_cannot_change_them(page: Page):
    sign_in(page, "viewer@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    page.goto("/admin/users")
    expect(page.get_by_text("ada@paytime.local")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Disable "))).to_have_count(0)
    screenshot(page, "viewer-users")


def test_customer_is_sent_to_forbidden_page(page: Page):
    sign_in(page, "ada@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_text("Ada Obi")).to_be_visible()
    page.goto("/admin/users")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
    page.goto("/admin/audit")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
