"""Staff pages in the browser: admins change users, viewers only look, customers are kept out."""

import re
import time
import uuid

from playwright.sync_api import Browser, Page, expect

from paytime_app.db import unit_of_work
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.services.demo import DEMO_PASSWORD
from tests.e2e.conftest import screenshot
from tests.e2e.test_account_security import new_user
from tests.e2e.test_accounts import latest_link, sign_in
from tests.helpers import dead_job


def open_staff_page(page: Page, name: str) -> None:
    """Staff pages live under the top bar's Admin menu."""
    page.get_by_role("button", name="Admin").click()
    page.get_by_role("menuitem", name=name).click()


def test_admin_changes_role_and_disables_user_live(browser: Browser, page: Page, app_server):
    new_user("ezra@example.com", "Ezra Target")
    victim = browser.new_context(base_url=app_server["base_url"]).new_page()
    sign_in(victim, "ezra@example.com", "correct-horse-battery")
    expect(victim.get_by_text("Ezra Target")).to_be_visible()

    sign_in(page, "admin@paytime.local", DEMO_PASSWORD)
    open_staff_page(page, "Users")
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

    open_staff_page(page, "Audit log")
    expect(page.get_by_text("user.role_changed").first).to_be_visible()
    expect(page.get_by_text("user.disabled").first).to_be_visible()
    screenshot(page, "admin-audit-log")
    victim.context.close()


def test_admin_creates_a_user_who_chooses_a_password_from_the_email(browser: Browser, page: Page, app_server):
    sign_in(page, "admin@paytime.local", DEMO_PASSWORD)
    page.goto("/admin/users")
    expect(page.get_by_role("button", name="Account menu")).to_be_visible()  # a direct visit shows who is signed in
    page.get_by_label("Name").fill("Mona Manager")
    page.get_by_label("Email").fill("mona@example.com")
    page.get_by_label("Role of the new user").click()
    page.get_by_role("option", name="manager").click()
    page.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("Account created for mona@example.com")).to_be_visible()
    expect(page.get_by_role("cell", name="Mona Manager mona@example.com")).to_be_visible()
    screenshot(page, "admin-users-created")

    invitee = browser.new_context(base_url=app_server["base_url"]).new_page()
    invitee.goto(latest_link("mona@example.com", "/reset-password"))
    invitee.get_by_label("New password", exact=True).fill("mona-chooses-a-password")
    invitee.get_by_label("Repeat the new password").fill("mona-chooses-a-password")
    invitee.get_by_role("button", name="Change password").click()
    expect(invitee.get_by_text("Password changed.")).to_be_visible()
    sign_in(invitee, "mona@example.com", "mona-chooses-a-password")
    expect(invitee.get_by_text("Mona Manager")).to_be_visible()
    invitee.context.close()


def test_viewer_sees_users_but_cannot_change_them(page: Page):
    sign_in(page, "viewer@paytime.local", DEMO_PASSWORD)
    open_staff_page(page, "Users")
    expect(page.get_by_text("ada@paytime.local")).to_be_visible()
    expect(page.get_by_role("button", name="Add user")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Disable "))).to_have_count(0)
    screenshot(page, "viewer-users")


def test_a_users_address_past_the_last_page_shows_the_last_page(page: Page):
    sign_in(page, "viewer@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_text("Victor Viewer")).to_be_visible()
    page.goto("/admin/users?page=229200779")
    expect(page.get_by_text("ada@paytime.local")).to_be_visible()
    expect(page.get_by_text("Page 1 of 1")).to_be_visible()
    screenshot(page, "users-past-the-last-page")


def test_customer_is_sent_to_forbidden_page(page: Page):
    sign_in(page, "ada@paytime.local", DEMO_PASSWORD)
    expect(page.get_by_text("Ada Obi")).to_be_visible()
    page.goto("/admin/users")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()
    page.goto("/admin/audit")
    expect(page.get_by_role("heading", name="You don't have access to this page")).to_be_visible()


def test_admin_runs_a_background_job_that_gave_up_again(page: Page, mobile_page: Page):
    job = dead_job(
        "payments.reconcile_one",
        {"payment_id": str(uuid.uuid4())},
        "ProviderUnavailable: monnify is not answering",
    )
    sign_in(page, "admin@paytime.local", DEMO_PASSWORD)
    open_staff_page(page, "Background jobs")
    expect(page.get_by_text("ProviderUnavailable: monnify is not answering")).to_be_visible()
    screenshot(page, "admin-jobs")
    page.get_by_role("button", name="Run again payments.reconcile_one").click()
    expect(page.get_by_text("The payments.reconcile_one job will run again in a moment.")).to_be_visible()
    deadline = time.monotonic() + 10  # the app's in-process runner polls every 0.2 s
    while job_status(job.id) != JobStatus.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job_status(job.id) == JobStatus.SUCCEEDED
    page.reload()
    expect(page.get_by_role("heading", name="Background jobs", exact=True)).to_be_visible()
    expect(page.get_by_text("ProviderUnavailable: monnify is not answering")).to_have_count(0)

    sign_in(mobile_page, "viewer@paytime.local", DEMO_PASSWORD)
    mobile_page.goto("/admin/jobs")
    expect(mobile_page.get_by_role("heading", name="Background jobs", exact=True)).to_be_visible()
    expect(mobile_page.get_by_role("button", name="Run again payments.reconcile_one")).to_have_count(0)
    screenshot(mobile_page, "admin-jobs-mobile")


def job_status(job_id: uuid.UUID) -> JobStatus:
    with unit_of_work() as session:
        return session.get(Job, job_id).status
