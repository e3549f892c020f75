"""An organizer gives an event a cover image, edits a ticket type with an early-bird tier and attributes,
and publishes; a buyer sees the cover on the list and the event page, the tier in force and the
attributes. Screenshots of both pages on a desktop and a 390 px phone."""

import math
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter
from playwright.sync_api import Browser, Page, expect

from paytime_app.db import in_transaction
from paytime_app.models.users import Role
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in
from tests.e2e.test_events import PASSWORD, add_ticket_type

PHONE = {"width": 390, "height": 844}


def concert_photo(path: Path) -> Path:
    """A stage-lights picture made here (no downloads): a dusk gradient, light beams and bokeh."""
    width, height = 2400, 1350
    down = Image.linear_gradient("L").resize((width, height))  # 0 at the top, 255 at the bottom
    across = Image.linear_gradient("L").rotate(90).resize((width, height))
    image = Image.merge(
        "RGB",
        (
            down.point(lambda v: 40 + v * 150 // 255),
            down.point(lambda v: 50 - v * 30 // 255),
            across.point(lambda v: 150 - v * 60 // 255),
        ),
    )
    light = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(light)
    for i, hue in enumerate([(255, 170, 60), (80, 200, 255), (255, 80, 160), (255, 220, 120)]):
        top = (width * (i + 1) // 5, 0)
        spread = 260
        draw.polygon([top, (top[0] - spread, height), (top[0] + spread, height)], fill=tuple(c // 3 for c in hue))
    for i in range(60):
        x = (i * 397) % width
        y = height // 2 + int(math.sin(i) * height / 3)
        radius = 18 + (i * 7) % 40
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 200 - i, 120 + i))
    image = Image.blend(image, light.filter(ImageFilter.GaussianBlur(30)), 0.45)
    image.save(path, format="JPEG", quality=90)
    return path


def slow_upload(bytes_per_second: int) -> dict:
    """Chromium's network emulation: only the upload limited (-1 lifts it)."""
    return {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second}


def phone(browser: Browser, app_server) -> Page:
    page = browser.new_context(
        base_url=app_server["base_url"], viewport=PHONE, is_mobile=True, has_touch=True
    ).new_page()
    page.set_default_timeout(15_000)
    return page


def test_organizer_adds_a_cover_and_an_early_bird_tier_and_a_buyer_sees_them(
    browser: Browser, page: Page, app_server, tmp_path
):
    in_transaction(
        create_user,
        email="host@example.com",
        display_name="Hana Host",
        password=PASSWORD,
        email_verified=True,
        role=Role.SELLER,
    )
    sign_in(page, "host@example.com", PASSWORD)
    page.goto("/organizer")
    page.get_by_label("Title", exact=True).fill("Lagos Lights Festival")
    page.get_by_label("Description").fill("Three stages, twenty acts and the best food in town. Gates open at 4pm.")
    page.get_by_label("Venue", exact=True).fill("Tafawa Balewa Square")
    page.get_by_label("Starts").fill("2031-12-12T16:00")
    page.get_by_label("Ends").fill("2031-12-12T23:30")
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_role("heading", name="Lagos Lights Festival")).to_be_visible()

    # A text file named like an image is refused in words; a real photo becomes the cover.
    fake = tmp_path / "cover.png"
    fake.write_text("not really a picture\n" * 20)
    page.locator("input[type=file]").set_input_files(str(fake))
    expect(page.get_by_role("alert")).to_contain_text("not an image we can read")
    # On a slow connection (20 KB/s up: about five seconds for this photo) the upload shows its progress.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send("Network.emulateNetworkConditions", slow_upload(20_000))
    page.locator("input[type=file]").set_input_files(str(concert_photo(tmp_path / "stage.jpg")))
    expect(page.get_by_role("progressbar", name="Cover upload progress")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Uploading… \d+%"))).to_be_visible()
    screenshot(page, "organizer-cover-uploading")
    expect(page.get_by_text("Cover image saved.")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Cover upload progress")).to_have_count(0)
    network.send("Network.emulateNetworkConditions", slow_upload(-1))
    # Still a draft: the image loads only because the organizer's session cookie goes with it.
    expect(page.get_by_role("img", name="Cover of Lagos Lights Festival")).to_have_js_property("naturalWidth", 1600)

    # A ticket type, then edited: an early-bird price for the first 50 and two facts for buyers.
    add_ticket_type(page, "General admission", price="8000", capacity="400")
    page.get_by_role("button", name="Edit General admission").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Ticket type name")).to_have_value("General admission")
    dialog.get_by_role("button", name="Add price tier").click()
    dialog.get_by_label("Tier label 1").fill("Early bird")
    dialog.get_by_label("Tier price 1").fill("5000")
    dialog.get_by_label("Tier ends after tickets 1").fill("50")
    dialog.get_by_label("Attribute name 1").fill("Gate")
    dialog.get_by_label("Attribute value 1").fill("North entrance")
    dialog.get_by_role("button", name="Add attribute").click()
    dialog.get_by_label("Attribute name 2").fill("Includes")
    dialog.get_by_label("Attribute value 2").fill("Festival wristband")
    dialog.get_by_label("Most per booking").fill("6")
    screenshot(page, "organizer-ticket-type-editor")
    dialog.get_by_role("button", name="Save ticket type").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_text("Ticket type saved.")).to_be_visible()
    expect(page.get_by_text("1 price tier")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published: the event is on sale.")).to_be_visible()
    screenshot(page, "organizer-event-cover-desktop")
    event_path = page.get_by_role("link", name="View public page").get_attribute("href")

    # A visitor sees the cover on the list card and the event page, the early-bird price and the facts.
    buyer = browser.new_context(base_url=app_server["base_url"], viewport={"width": 1280, "height": 860}).new_page()
    buyer.set_default_timeout(15_000)
    buyer.goto("/events")
    card = buyer.get_by_role("link").filter(has_text="Lagos Lights Festival")
    expect(card.get_by_role("img", name="Cover of Lagos Lights Festival")).to_have_js_property("naturalWidth", 640)
    expect(card).to_contain_text("From ₦5,000.00")
    screenshot(buyer, "events-list-cover-desktop")
    buyer.goto(event_path)
    expect(buyer.get_by_role("img", name="Cover of Lagos Lights Festival")).to_have_js_property("naturalWidth", 1600)
    expect(buyer.get_by_text("Early bird")).to_be_visible()
    expect(buyer.get_by_text("₦5,000.00")).to_be_visible()
    expect(buyer.get_by_text("50 left at this price")).to_be_visible()
    facts = buyer.get_by_label("About General admission")
    expect(facts).to_contain_text("Gate")
    expect(facts).to_contain_text("North entrance")
    expect(facts).to_contain_text("Festival wristband")
    cover_src = buyer.get_by_role("img", name="Cover of Lagos Lights Festival").get_attribute("src")
    served = buyer.request.get(cover_src)
    assert served.status == 200
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    screenshot(buyer, "event-page-cover-desktop")

    # The same two pages on a phone.
    mobile = phone(browser, app_server)
    mobile.goto(event_path)
    expect(mobile.get_by_text("50 left at this price")).to_be_visible()
    screenshot(mobile, "event-page-cover-mobile")
    sign_in(mobile, "host@example.com", PASSWORD)
    mobile.goto(page.url)
    expect(mobile.get_by_role("heading", name="Cover image")).to_be_visible()
    # The visitor's and the phone's openings of the public page count; the organizer's own do not.
    expect(mobile.get_by_text(re.compile(r"^Page views\s*2$"))).to_be_visible()
    screenshot(mobile, "organizer-event-cover-mobile")
    for other in (buyer, mobile):
        other.context.close()
