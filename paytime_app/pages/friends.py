"""Friends: share your code, find people, answer requests, manage friends and blocks."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, search_form
from paytime_app.components.layout import page_shell
from paytime_app.state.friends import FriendsState


def person_line(name: rx.Var, detail: rx.Var | str, *actions: rx.Component) -> rx.Component:
    return rx.hstack(
        rx.avatar(fallback=name.to(str)[0:1], size="2", radius="full"),
        rx.vstack(
            rx.text(name, size="2", weight="medium"),
            rx.cond(detail != "", rx.text(detail, size="1", color=rx.color("gray", 10)), rx.fragment()),
            spacing="0",
            flex="1",
            min_width="0",
        ),
        rx.hstack(*actions, spacing="2", wrap="wrap", justify="end"),
        align="center",
        width="100%",
        padding_y="6px",
    )


def code_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Your friend code", size="2", color=rx.color("gray", 11)),
            rx.hstack(
                rx.text(
                    FriendsState.friend_code,
                    size="6",
                    weight="bold",
                    font_family="monospace",
                    aria_label="Your friend code",
                ),
                rx.icon_button(
                    rx.icon("copy", size=16),
                    variant="soft",
                    size="2",
                    aria_label="Copy friend code",
                    on_click=[rx.set_clipboard(FriendsState.friend_code), rx.toast.success("Friend code copied.")],
                ),
                align="center",
            ),
            rx.text("Share it: friends find you by this code or by your name.", size="1", color=rx.color("gray", 10)),
            spacing="2",
        ),
        width="100%",
    )


def search_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Find people", size="4", as_="h2"),
            search_form(
                value=FriendsState.query,
                placeholder="A friend code, or at least 3 letters of a name",
                label="Find people by name or code",
                on_submit=FriendsState.search,
                width="100%",
            ),
            rx.cond(
                FriendsState.results.length() > 0,
                rx.vstack(rx.foreach(FriendsState.results, result_line), spacing="1", width="100%"),
                rx.cond(
                    FriendsState.searched,
                    rx.text(
                        "Nobody found. Check the code, or try another part of the name.",
                        size="2",
                        color=rx.color("gray", 10),
                    ),
                    rx.fragment(),
                ),
            ),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def result_line(match: rx.Var) -> rx.Component:
    name = match["name"]
    return person_line(
        name,
        rx.match(
            match["relation"],
            ("friend", "Already your friend"),
            ("request_sent", "Request sent"),
            ("request_received", "Asked to be your friend"),
            "",
        ),
        rx.match(
            match["relation"],
            (
                "none",
                rx.button(
                    "Add friend", size="1", on_click=FriendsState.send_request(match["id"]), aria_label="Add " + name
                ),
            ),
            (
                "request_received",
                rx.button(
                    "Accept",
                    size="1",
                    color_scheme="green",
                    on_click=FriendsState.accept(match["request_id"]),
                    aria_label="Accept " + name,
                ),
            ),
            (
                "request_sent",
                rx.button(
                    "Cancel request",
                    size="1",
                    variant="soft",
                    color_scheme="gray",
                    on_click=FriendsState.cancel_request(match["request_id"]),
                ),
            ),
            rx.fragment(),
        ),
    )


def section(title: str, count: rx.Var, body: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(title, size="4", as_="h2"), rx.badge(count, variant="soft", radius="full"), align="center"
            ),
            body,
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def requests_card() -> rx.Component:
    return section(
        "Requests",
        FriendsState.incoming.length() + FriendsState.outgoing.length(),
        rx.cond(
            (FriendsState.incoming.length() + FriendsState.outgoing.length()) > 0,
            rx.vstack(
                rx.foreach(
                    FriendsState.incoming,
                    lambda request: person_line(
                        request["name"],
                        "Wants to be your friend · " + request["when"],
                        rx.button(
                            "Accept",
                            size="1",
                            color_scheme="green",
                            on_click=FriendsState.accept(request["id"]),
                            aria_label="Accept " + request["name"],
                        ),
                        rx.button(
                            "Decline",
                            size="1",
                            variant="soft",
                            color_scheme="gray",
                            on_click=FriendsState.decline(request["id"]),
                            aria_label="Decline " + request["name"],
                        ),
                    ),
                ),
                rx.foreach(
                    FriendsState.outgoing,
                    lambda request: person_line(
                        request["name"],
                        "Waiting for an answer · " + request["when"],
                        rx.button(
                            "Cancel",
                            size="1",
                            variant="soft",
                            color_scheme="gray",
                            on_click=FriendsState.cancel_request(request["id"]),
                            aria_label="Cancel request to " + request["name"],
                        ),
                    ),
                ),
                spacing="1",
                width="100%",
            ),
            rx.text("No open requests.", size="2", color=rx.color("gray", 10)),
        ),
    )


def friend_menu(friend: rx.Var) -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(
                rx.icon("ellipsis", size=16), variant="ghost", size="1", aria_label="More for " + friend["name"]
            )
        ),
        rx.menu.content(
            rx.menu.item("Unfriend", on_click=FriendsState.remove_friend(friend["id"])),
            rx.menu.item("Block", color="red", on_click=FriendsState.block(friend["id"])),
        ),
    )


def friends_card() -> rx.Component:
    return section(
        "Friends",
        FriendsState.friends.length(),
        rx.cond(
            FriendsState.friends.length() > 0,
            rx.vstack(
                rx.foreach(
                    FriendsState.friends,
                    lambda friend: person_line(
                        friend["name"],
                        "Friends since " + friend["since"],
                        rx.link(
                            rx.button("Send money", size="1", variant="soft"),
                            href=routes.WALLET + "?to=" + friend["id"],
                            aria_label="Send money to " + friend["name"],
                        ),
                        friend_menu(friend),
                    ),
                ),
                spacing="1",
                width="100%",
            ),
            empty_state(
                "users-round",
                "No friends yet",
                "Share your code or search by name; friends can send you money and keep IOUs with you.",
            ),
        ),
    )


def blocked_card() -> rx.Component:
    return rx.cond(
        FriendsState.blocked.length() > 0,
        section(
            "Blocked",
            FriendsState.blocked.length(),
            rx.vstack(
                rx.foreach(
                    FriendsState.blocked,
                    lambda person: person_line(
                        person["name"],
                        "",
                        rx.button("Unblock", size="1", variant="soft", on_click=FriendsState.unblock(person["id"])),
                    ),
                ),
                width="100%",
            ),
        ),
        rx.fragment(),
    )


def friends_page() -> rx.Component:
    return page_shell(
        page_header("Friends", "Find friends, answer requests, and keep your circle."),
        callout(FriendsState.notice, "green", "check"),
        error_callout(FriendsState.error),
        rx.cond(
            FriendsState.is_loading,
            loading_rows(4),
            rx.grid(
                rx.vstack(code_card(), search_card(), requests_card(), spacing="3", width="100%"),
                rx.vstack(friends_card(), blocked_card(), spacing="3", width="100%"),
                columns=rx.breakpoints(initial="1", md="2"),
                spacing="3",
                width="100%",
                margin_top="12px",
            ),
        ),
    )
