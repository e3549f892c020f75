"""Event cover images: a card thumbnail, a page banner, and the placeholder shown when there is none."""

from __future__ import annotations

import reflex as rx


def cover_placeholder(**props: object) -> rx.Component:
    """A quiet accent gradient with a ticket mark, standing in for a missing cover."""
    return rx.center(
        rx.icon("ticket", size=36, color=rx.color("accent", 9), opacity="0.7"),
        background=f"linear-gradient(135deg, {rx.color('accent', 3)} 0%, {rx.color('accent', 5)} 55%, "
        f"{rx.color('accent', 7)} 100%)",
        aria_hidden="true",
        **{"width": "100%", **props},
    )


def cover_thumbnail(src: rx.Var, alt: rx.Var | str) -> rx.Component:
    """A 16:9 card image (thumbnails are cut to 16:9 when stored)."""
    return rx.cond(
        src != "",
        rx.image(
            src=src, alt=alt, width="100%", aspect_ratio="16 / 9", object_fit="cover", loading="lazy", display="block"
        ),
        cover_placeholder(aspect_ratio="16 / 9"),
    )


def cover_banner(src: rx.Var, alt: rx.Var | str, height: list[str] | str) -> rx.Component:
    """The whole cover over a blurred copy of itself: any shape fits without cropping what matters."""
    frame = {"width": "100%", "height": height, "border_radius": "12px", "overflow": "hidden"}
    return rx.cond(
        src != "",
        rx.box(
            rx.image(
                src=src,
                alt="",
                aria_hidden="true",
                position="absolute",
                inset="0",
                width="100%",
                height="100%",
                object_fit="cover",
                filter="blur(28px) saturate(1.2)",
                transform="scale(1.15)",
                opacity="0.75",
            ),
            rx.image(
                src=src,
                alt=alt,
                position="relative",
                width="100%",
                height="100%",
                object_fit="contain",
                display="block",
            ),
            position="relative",
            background=rx.color("gray", 3),
            **frame,
        ),
        cover_placeholder(**frame),
    )
