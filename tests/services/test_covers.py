"""Event cover images: real images made with Pillow are re-encoded without metadata; anything else,
too big, or of absurd dimensions is refused with a stable code; files follow the transaction."""

import struct
import zlib
from datetime import UTC, datetime, timedelta
from io import BytesIO

import pytest
from PIL import Image

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.events import Event
from paytime_app.models.users import Role
from paytime_app.services.covers import MAX_BYTES, THUMB_SIZE, cover_path, process_cover
from paytime_app.services.events import (
    cancel_event,
    create_event,
    duplicate_event,
    get_cover_file,
    publish_event,
    remove_event_cover,
    save_ticket_type,
    set_event_cover,
)
from paytime_app.services.users import create_user

START = datetime.now(UTC) + timedelta(days=30)
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def picture(size: tuple[int, int] = (2400, 1350), fmt: str = "JPEG", mode: str = "RGB", **save: object) -> bytes:
    """A real photo-like image: a gradient with a red block in the top-left corner."""
    image = Image.linear_gradient("L").resize(size).convert(mode)
    image.paste((255, 0, 0) if mode == "RGB" else (255, 0, 0, 255), (0, 0, size[0] // 4, size[1] // 4))
    out = BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its (tiny) data does not have: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def refused(data: bytes) -> str:
    with pytest.raises(DomainError) as error:
        process_cover(data)
    return error.value.code


def test_photo_is_resized_to_a_cover_and_a_thumbnail_without_its_metadata():
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # camera maker
    exif.get_ifd(GPS_IFD)[2] = (6.0, 27.0, 0.0)  # a latitude: where the photo was taken
    source = picture((3200, 1800), exif=exif.tobytes(), comment=b"private note")
    processed = process_cover(source)
    cover = Image.open(BytesIO(processed.cover))
    thumb = Image.open(BytesIO(processed.thumb))
    assert (cover.format, thumb.format) == ("WEBP", "WEBP")
    assert (processed.width, processed.height) == cover.size == (1600, 900)
    assert thumb.size == THUMB_SIZE
    for stored in (cover, thumb):
        assert not stored.getexif()
        assert not {"exif", "xmp", "icc_profile", "comment"} & set(stored.info)
    assert b"SecretCam" not in processed.cover
    assert cover.convert("RGB").getpixel((10, 10))[0] > 200  # the red corner is still top-left


def test_exif_orientation_is_applied_before_the_tag_is_dropped():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # the camera was held upright: rotate 90 degrees to show it
    processed = process_cover(picture((1200, 800), exif=exif.tobytes()))
    assert (processed.width, processed.height) == (800, 1200)


def test_small_enough_images_keep_their_size_and_transparency():
    image = Image.new("RGBA", (800, 400), (0, 128, 255, 255))
    image.paste((0, 0, 0, 0), (0, 0, 400, 400))  # the left half is see-through
    source = BytesIO()
    image.save(source, format="PNG")
    processed = process_cover(source.getvalue())
    cover = Image.open(BytesIO(processed.cover))
    assert cover.size == (800, 400)
    assert cover.mode == "RGBA"
    assert cover.getpixel((10, 10))[3] == 0


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_web_formats_are_accepted(fmt):
    assert process_cover(picture((1000, 500), fmt=fmt)).width == 1000


def test_a_text_file_named_png_is_not_an_image():
    assert refused(b"Just some notes, renamed cover.png\n" * 40) == "cover_not_an_image"
    assert refused(b"") == "cover_not_an_image"


def test_a_truncated_image_is_refused():
    whole = picture((1600, 900), quality=95)
    assert refused(whole[: len(whole) // 2]) == "cover_not_an_image"


def test_formats_other_than_web_images_are_refused():
    assert refused(picture((800, 400), fmt="BMP")) == "cover_format"
    assert refused(picture((800, 400), fmt="TIFF")) == "cover_format"


def test_files_over_five_megabytes_are_refused_before_decoding():
    assert refused(picture((800, 400), fmt="PNG") + b"\0" * MAX_BYTES) == "cover_too_large"


@pytest.mark.parametrize(
    "size",
    [
        (50_000, 50_000),  # a decompression bomb: refused from the header, never decoded
        (12_001, 3_000),  # a side over 12,000 px
        (9_000, 6_000),  # 54 megapixels
        (300, 300),  # too small to be a cover
        (4_000, 500),  # 8:1, a strip
    ],
)
def test_absurd_dimensions_are_refused(size):
    data = png_claiming(*size) if size[0] * size[1] > 20_000_000 else picture(size, fmt="PNG")
    with pytest.raises(DomainError) as error:
        process_cover(data)
    assert error.value.code == "cover_dimensions"
    assert "pixels" in error.value.message


# --- on events -----------------------------------------------------------------------------------------


@pytest.fixture
def organizer(engine):
    return in_transaction(create_user, email="org@example.com", display_name="Org", password=None, role=Role.SELLER)


@pytest.fixture
def event(organizer):
    return in_transaction(
        create_event, actor=organizer, title="Jazz", starts_at=START, ends_at=START + timedelta(hours=3)
    )


def stored(event_id) -> Event:
    with unit_of_work() as session:
        return session.get(Event, event_id)


def files_of(key: str) -> list[bool]:
    return [cover_path(key).is_file(), cover_path(key, thumb=True).is_file()]


def test_replacing_a_cover_removes_the_old_files_once_committed(organizer, event):
    first = in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture())
    assert (first.cover_width, first.cover_height) == (1600, 900)
    assert files_of(first.cover_image) == [True, True]
    second = in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture((1000, 1000)))
    assert second.cover_image != first.cover_image
    assert files_of(first.cover_image) == [False, False]
    assert files_of(second.cover_image) == [True, True]
    assert (stored(event.id).cover_width, stored(event.id).cover_height) == (1000, 1000)
    in_transaction(remove_event_cover, actor=organizer, event_id=event.id)
    assert stored(event.id).cover_image is None
    assert files_of(second.cover_image) == [False, False]


def test_a_rolled_back_upload_leaves_no_files_and_the_old_cover(organizer, event):
    first = in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture())
    written = []

    def upload_then_fail(*, session, **kwargs):
        written.append(set_event_cover(session=session, **kwargs).cover_image)
        raise DomainError("later step failed")

    with pytest.raises(DomainError):
        in_transaction(upload_then_fail, actor=organizer, event_id=event.id, data=picture((900, 900)))
    assert files_of(written[0]) == [False, False]
    assert stored(event.id).cover_image == first.cover_image
    assert files_of(first.cover_image) == [True, True]


def test_refused_uploads_change_nothing(organizer, event):
    with pytest.raises(DomainError) as error:
        in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=b"not an image")
    assert error.value.code == "cover_not_an_image"
    assert stored(event.id).cover_image is None


def test_only_the_organizer_sets_a_cover_and_not_once_cancelled(organizer, event):
    rival = in_transaction(create_user, email="r@example.com", display_name="R", password=None, role=Role.SELLER)
    with pytest.raises(DomainError) as error:
        in_transaction(set_event_cover, actor=rival, event_id=event.id, data=picture())
    assert error.value.code == "not_found"
    in_transaction(cancel_event, actor=organizer, event_id=event.id)
    with pytest.raises(DomainError) as error:
        in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture())
    assert error.value.code == "event_not_editable"


def test_a_drafts_cover_is_served_only_to_its_organizer_until_published(organizer, event):
    key = in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture()).cover_image
    with unit_of_work() as session:
        with pytest.raises(DomainError):
            get_cover_file(session=session, actor=None, event_id=event.id, file_name=f"{key}.webp")
        assert get_cover_file(session=session, actor=organizer, event_id=event.id, file_name=f"{key}-thumb.webp") == (
            key,
            True,
            False,
        )
        for wrong in ("../../etc/passwd", f"{key}.png", "A" * 24 + ".webp"):
            with pytest.raises(DomainError):
                get_cover_file(session=session, actor=organizer, event_id=event.id, file_name=wrong)
    in_transaction(save_ticket_type, actor=organizer, event_id=event.id, name="Std", price_minor=100, capacity=5)
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    with unit_of_work() as session:
        assert get_cover_file(session=session, actor=None, event_id=event.id, file_name=f"{key}.webp") == (
            key,
            False,
            True,
        )


def test_a_duplicate_owns_a_copy_of_the_cover(organizer, event):
    key = in_transaction(set_event_cover, actor=organizer, event_id=event.id, data=picture()).cover_image
    copy = in_transaction(duplicate_event, actor=organizer, event_id=event.id)
    assert copy.cover_image not in (None, key)
    assert (copy.cover_width, copy.cover_height) == (1600, 900)
    assert cover_path(copy.cover_image).read_bytes() == cover_path(key).read_bytes()
    in_transaction(remove_event_cover, actor=organizer, event_id=event.id)
    assert files_of(copy.cover_image) == [True, True]
