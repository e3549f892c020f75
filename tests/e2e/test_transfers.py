"""Send money to a friend from the wallet: the receiver sees a toast, the balance and the history
line change live; a large amount asks for the emailed code first."""

import re

from playwright.sync_api import Browser, Page, expect
from sqlmodel import col, select

from paytime_app.db import unit_of_work
from paytime_app.models.mail import MailMessage
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in
from tests.e2e.test_calls import fund
from tests.e2e.test_friends import PASSWORD, befriend, person, second_browser


def latest_transfer_code(to_address: str) -> str:
    with unit_of_work() as session:
        message = session.exec(
            select(MailMessage)
            .where(
                MailMessage.to_address == to_address,
                col(MailMessage.subject).contains("confirms your PayTime transfer"),
            )
            .order_by(col(MailMessage.created_at).desc())
        ).first()
    assert message is not None, f"no transfer code mailed to {to_address}"
    return message.subject.split()[0]


def send(page: Page, friend: str, amount: str, note: str = "") -> None:
    page.get_by_role("combobox", name="Send to").click()
    page.get_by_role("option", name=friend).click()
    page.get_by_label("How much").fill(amount)
    if note:
        page.get_by_label("Note").fill(note)
    page.get_by_role("button", name="Send money").click()


def test_send_money_reaches_the_friend_live(browser: Browser, page: Page, app_server):
    kemi = person("kemi@example.com", "Kemi Lawal")
    lanre = person("lanre@example.com", "Lanre Bakare")
    befriend(kemi, lanre)
    fund(kemi, 500_000_00)
    receiver = second_browser(browser, app_server, "lanre@example.com")
    receiver.goto("/wallet")
    expect(receiver.get_by_text("₦0.00").first).to_be_visible()

    sign_in(page, "kemi@example.com", PASSWORD)
    page.goto("/friends")
    page.get_by_label("Send money to Lanre Bakare").click()
    expect(page.get_by_role("combobox", name="Send to")).to_have_text("Lanre Bakare")
    screenshot(page, "send-money-form")
    send(page, "Lanre Bakare", "2,500", "Jollof rice")
    expect(page.get_by_text(re.compile(r"Sent ₦2,500\.00 to Lanre Bakare"))).to_be_visible()
    expect(page.get_by_text("Transfer to Lanre Bakare · Jollof rice")).to_be_visible(timeout=5000)

    # The receiver never reloaded: toast, balance and history arrive live.
    expect(receiver.get_by_text("Kemi Lawal sent you ₦2,500.00.", exact=False).first).to_be_visible(timeout=5000)
    expect(receiver.get_by_text("₦2,500.00").first).to_be_visible(timeout=5000)
    expect(receiver.get_by_text("Transfer from Kemi Lawal · Jollof rice")).to_be_visible(timeout=5000)
    screenshot(receiver, "send-money-received")

    # A large amount asks for the code emailed to the sender.
    send(page, "Lanre Bakare", "150000")
    expect(page.get_by_text("We emailed a code to")).to_be_visible()
    page.get_by_label("Confirmation code").fill("000000" if latest_transfer_code(kemi.email) != "000000" else "111111")
    page.get_by_role("button", name="Confirm and send").click()
    expect(page.get_by_role("alert")).to_contain_text("code")
    screenshot(page, "send-money-step-up")
    page.get_by_label("Confirmation code").fill(latest_transfer_code(kemi.email))
    page.get_by_role("button", name="Confirm and send").click()
    expect(page.get_by_text(re.compile(r"Sent ₦150,000\.00 to Lanre Bakare"))).to_be_visible()
    expect(receiver.get_by_text("₦152,500.00").first).to_be_visible(timeout=5000)
    receiver.context.close()


def test_sending_more_than_the_balance_is_refused_in_words(page: Page):
    mo = person("mo@example.com", "Mo Salako")
    befriend(mo, person("nneka@example.com", "Nneka Obi"))
    sign_in(page, "mo@example.com", PASSWORD)
    page.goto("/wallet")
    send(page, "Nneka Obi", "10")
    expect(page.get_by_role("alert")).to_contain_text("not enough money")
