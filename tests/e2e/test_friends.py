"""Two people in two browsers: one finds the other by name and asks; the other sees the request live
(toast, badge, list) and accepts; the first sees the new friend without reloading."""

from playwright.sync_api import Browser, BrowserContext, Page, expect

from paytime_app.db import in_transaction
from paytime_app.models.users import User
from paytime_app.services.friends import accept_friend_request, send_friend_request
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in

PASSWORD = "correct-horse-battery"


def person(email: str, name: str) -> User:
    return in_transaction(create_user, email=email, display_name=name, password=PASSWORD, email_verified=True)


def befriend(first: User, second: User) -> None:
    request = in_transaction(send_friend_request, actor=first, user_id=second.id)
    in_transaction(accept_friend_request, actor=second, request_id=request.id)


def second_browser(browser: Browser, app_server: dict[str, str], email: str, **options: object) -> Page:
    """Another person's browser, signed in."""
    context: BrowserContext = browser.new_context(base_url=app_server["base_url"], **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, email, PASSWORD)
    return page


def test_friend_request_arrives_live_and_is_accepted(browser: Browser, page: Page, app_server):
    person("fola@example.com", "Fola Adeyemi")
    person("gbenga@example.com", "Gbenga Musa")
    gbenga = second_browser(browser, app_server, "gbenga@example.com")
    gbenga.goto("/friends")
    expect(gbenga.get_by_role("heading", name="No friends yet")).to_be_visible()
    screenshot(gbenga, "friends-empty")

    sign_in(page, "fola@example.com", PASSWORD)
    page.goto("/friends")
    page.get_by_label("Find people by name or code").fill("gb")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 3 letters")
    page.get_by_label("Find people by name or code").fill("Gbenga")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Add Gbenga Musa").click()
    expect(page.get_by_text("Friend request sent.")).to_be_visible()
    expect(page.get_by_text("Waiting for an answer").first).to_be_visible()
    screenshot(page, "friends-request-sent")

    # Gbenga's tab was never reloaded: the request, a toast and the unread badge arrive live.
    expect(gbenga.get_by_role("button", name="Accept Fola Adeyemi")).to_be_visible(timeout=5000)
    expect(gbenga.get_by_text("Fola Adeyemi sent you a friend request.").first).to_be_visible(timeout=5000)
    expect(gbenga.get_by_label("Unread notifications")).to_have_text("1")
    screenshot(gbenga, "friends-request-received")
    gbenga.get_by_role("button", name="Accept Fola Adeyemi").click()
    expect(gbenga.get_by_text("You are now friends.")).to_be_visible()

    expect(page.get_by_text("Friends since").first).to_be_visible(timeout=5000)
    expect(page.get_by_text("Gbenga Musa accepted your friend request.").first).to_be_visible(timeout=5000)
    page.get_by_role("button", name="Notifications").click()
    expect(page.get_by_role("dialog").get_by_text("Gbenga Musa accepted your friend request.")).to_be_visible()
    screenshot(page, "notification-centre")
    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_label("Unread notifications")).to_have_count(0)
    page.keyboard.press("Escape")
    screenshot(page, "friends-with-friend")
    gbenga.context.close()


def test_friends_page_on_a_phone(browser: Browser, app_server):
    hadiza = person("hadiza@example.com", "Hadiza Bello")
    befriend(person("ike@example.com", "Ike Nwosu"), hadiza)
    in_transaction(send_friend_request, actor=person("jide@example.com", "Jide Ola"), user_id=hadiza.id)
    phone = second_browser(
        browser,
        app_server,
        "hadiza@example.com",
        viewport={"width": 375, "height": 780},
        is_mobile=True,
        has_touch=True,
    )
    phone.goto("/friends")
    expect(phone.get_by_role("button", name="Accept Jide Ola")).to_be_visible()
    expect(phone.get_by_text("Ike Nwosu")).to_be_visible()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "friends-mobile")
    phone.context.close()
