"""Event cover image files: checked with Pillow, re-encoded without metadata, stored in the media directory.
services/events.py attaches them to events and decides who sees them.

An upload is decoded only after its byte size, format and dimensions (read from the header) pass, so
a decompression bomb never reaches `load`. It is then re-encoded from its pixels alone: EXIF (GPS
position, camera serial), XMP and comments do not survive; the EXIF orientation is applied first and
colours are converted to sRGB, since the embedded profile goes too. Two WebP files are kept per cover,
the cover (fitting 1600 x 1600) and a 16:9 thumbnail for cards, under a random name that changes with
every upload, so both can be cached for ever. The files are written before the row changes: the new
ones are removed if the transaction rolls back, the replaced ones once it commits.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import warnings
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from sqlalchemy import event as sa_event
from sqlmodel import Session

from paytime_app.db import undone_by
from paytime_app.errors import DomainError, ValidationFailed
from paytime_app.settings import get_settings

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 12_000
MAX_PIXELS = 40_000_000
MIN_WIDTH, MIN_HEIGHT = 400, 200
MAX_ASPECT = 5.0  # wider than 5:1 or taller than 1:5 is a strip, not a cover
COVER_BOX = (1600, 1600)
THUMB_SIZE = (640, 360)
FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
QUALITY = 82
_FILE_NAME = re.compile(r"(?P<key>[A-Za-z0-9_-]{24})(?P<thumb>-thumb)?\.webp")


class CoverTooLarge(DomainError):
    code = "cover_too_large"
    status_code = 413
    default_message = "The image is larger than 5 MB. Export it smaller and try again."


@dataclass(frozen=True)
class ProcessedCover:
    cover: bytes
    thumb: bytes
    width: int
    height: int


def process_cover(data: bytes) -> ProcessedCover:
    """Check an upload is a usable picture and re-encode it as a cover and a thumbnail.

    Raises CoverTooLarge, ValidationFailed (cover_not_an_image, cover_format, cover_dimensions).
    """
    if len(data) > MAX_BYTES:
        raise CoverTooLarge(size=len(data), limit=MAX_BYTES)
    if not data:
        raise ValidationFailed("Choose an image file.", code="cover_not_an_image")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit below is lower than Pillow's; its warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(BytesIO(data))
    except Image.DecompressionBombError:
        raise ValidationFailed(
            f"The image has far more pixels than a cover can: at most {MAX_SIDE:,} a side"
            f" and {MAX_PIXELS // 1_000_000} megapixels.",
            code="cover_dimensions",
        ) from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise ValidationFailed(
            "That file is not an image we can read. Upload a JPEG, PNG, WebP or GIF.", code="cover_not_an_image"
        ) from None
    with image:
        if image.format not in FORMATS:
            raise ValidationFailed("Upload a JPEG, PNG, WebP or GIF image.", code="cover_format", format=image.format)
        _check_dimensions(*image.size)
        try:
            image.seek(0)  # the first frame of an animation
            image.load()
            picture = _to_srgb(ImageOps.exif_transpose(image), image.info.get("icc_profile"))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            raise ValidationFailed(
                "The image is damaged or incomplete. Export it again and retry.", code="cover_not_an_image"
            ) from None
    cover = picture.copy()
    cover.thumbnail(COVER_BOX, Image.Resampling.LANCZOS)
    thumb = ImageOps.fit(picture, THUMB_SIZE, Image.Resampling.LANCZOS)
    return ProcessedCover(cover=_webp(cover), thumb=_webp(thumb), width=cover.width, height=cover.height)


def store_cover(*, session: Session, data: bytes, replaced: str | None) -> tuple[str, ProcessedCover]:
    """Check and store an upload under a new random name; returns the name and what was stored.

    The new files go if this transaction rolls back; the `replaced` cover's files once it commits.
    Raises CoverTooLarge, ValidationFailed.
    """
    processed = process_cover(data)
    key = secrets.token_urlsafe(18)
    _write(cover_path(key), processed.cover)
    _write(cover_path(key, thumb=True), processed.thumb)
    _on_outcome(session, keep=key, replaced=replaced)
    return key, processed


def discard_cover(*, session: Session, key: str) -> None:
    """Remove a cover's files once this transaction commits."""
    _on_outcome(session, keep=None, replaced=key)


def copy_cover(*, session: Session, key: str) -> str | None:
    """Copy a cover's files under a new name (each event owns its files, so replacing one event's
    cover never removes another's); None if the files are gone. The copy goes if this rolls back."""
    copy = secrets.token_urlsafe(18)
    try:
        for thumb in (False, True):
            shutil.copyfile(cover_path(key, thumb=thumb), cover_path(copy, thumb=thumb))
    except FileNotFoundError:
        _remove(copy)
        return None
    _on_outcome(session, keep=copy, replaced=None)
    return copy


def parse_cover_file_name(file_name: str) -> tuple[str, bool] | None:
    """(key, is_thumbnail) from a served file name, or None if it is not one of ours."""
    match = _FILE_NAME.fullmatch(file_name)
    return (match["key"], bool(match["thumb"])) if match else None


def cover_path(key: str, *, thumb: bool = False) -> Path:
    return get_settings().media_dir / "covers" / (f"{key}-thumb.webp" if thumb else f"{key}.webp")


# --- helpers -----------------------------------------------------------------------------------------


def _check_dimensions(width: int, height: int) -> None:
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ValidationFailed(
            f"The image is {width} x {height} pixels; covers can be at most {MAX_SIDE:,} pixels a side"
            f" and {MAX_PIXELS // 1_000_000} megapixels.",
            code="cover_dimensions",
        )
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ValidationFailed(
            f"The image is {width} x {height} pixels; a cover needs at least {MIN_WIDTH} x {MIN_HEIGHT}.",
            code="cover_dimensions",
        )
    if max(width / height, height / width) > MAX_ASPECT:
        raise ValidationFailed(
            f"The image is {width} x {height} pixels, too long and thin for a cover (at most 5:1 either way).",
            code="cover_dimensions",
        )


def _to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    mode = "RGBA" if alpha else "RGB"
    if icc_profile:
        try:
            source = ImageCms.ImageCmsProfile(BytesIO(icc_profile))
            converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a profile that does not fit the pixels: keep the colours as they are
        if converted is not None:
            return converted
    return image.convert(mode)


def _webp(image: Image.Image) -> bytes:
    out = BytesIO()
    image.save(out, format="WEBP", quality=QUALITY, method=4)
    return out.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    partial.write_bytes(data)
    os.replace(partial, path)  # readers see the whole file or none


def _remove(key: str | None) -> None:
    if key is None:
        return
    for thumb in (False, True):
        cover_path(key, thumb=thumb).unlink(missing_ok=True)


def _on_outcome(session: Session, *, keep: str | None, replaced: str | None) -> None:
    """Files follow the row: `keep` is removed if this transaction (or the savepoint it was written in)
    rolls back; `replaced` is removed once the outermost transaction commits."""
    if "cover_files" not in session.info:
        session.info["cover_files"] = []
        sa_event.listen(session, "after_commit", _after_commit)
        sa_event.listen(session, "after_soft_rollback", _after_soft_rollback)
    session.info["cover_files"].append((keep, replaced, session.get_nested_transaction()))


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released; the real commit is still to come
    done, session.info["cover_files"] = session.info["cover_files"], []
    for _keep, replaced, _savepoint in done:
        _remove(replaced)


def _after_soft_rollback(session: Session, previous_transaction: Any) -> None:
    entries = session.info["cover_files"]
    session.info["cover_files"] = [entry for entry in entries if not undone_by(previous_transaction, entry[2])]
    for keep, _replaced, savepoint in entries:
        if undone_by(previous_transaction, savepoint):
            _remove(keep)
