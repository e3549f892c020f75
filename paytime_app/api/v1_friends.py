"""REST API v1: friends, friend requests, blocking, and the caller's notifications."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from paytime_app.api.v1_auth import AccessToken
from paytime_app.models.friends import Friendship
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services.friends import (
    accept_friend_request,
    block_user,
    cancel_friend_request,
    decline_friend_request,
    get_friend_code,
    list_blocked,
    list_friend_requests,
    list_friends,
    search_people,
    send_friend_request,
    unblock_user,
    unfriend,
)
from paytime_app.services.notifications import describe_notification, mark_all_read, read_notification_centre
from paytime_app.services.sessions import call_as_user

router = APIRouter(prefix="/api/v1", tags=["friends"])


class PersonOut(BaseModel):
    user_id: str
    display_name: str


class FriendOut(PersonOut):
    since: str


class FriendsOut(BaseModel):
    friend_code: str = Field(description="Share it so friends can find you")
    friends: list[FriendOut]
    blocked: list[FriendOut]


class MatchOut(PersonOut):
    relation: str = Field(description="none, friend, request_sent or request_received")
    request_id: str | None


class FriendRequestIn(BaseModel):
    user_id: uuid.UUID


class RequestOut(PersonOut):
    id: str
    direction: str = Field(description="incoming or outgoing")
    requested_at: str


class RequestChangeOut(BaseModel):
    id: str
    status: str


class NotificationOut(BaseModel):
    id: str
    kind: str
    text: str
    created_at: str
    read: bool
    data: dict[str, Any]


class NotificationsOut(BaseModel):
    unread: int
    notifications: list[NotificationOut]


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


def _change(row: Friendship) -> RequestChangeOut:
    return RequestChangeOut(id=str(row.id), status=str(row.status))


def _friends(*, session: Any, actor: User) -> FriendsOut:
    def out(views: list[Any]) -> list[FriendOut]:
        return [
            FriendOut(user_id=str(view.user_id), display_name=view.display_name, since=view.since.isoformat())
            for view in views
        ]

    return FriendsOut(
        friend_code=get_friend_code(session=session, actor=actor),
        friends=out(list_friends(session=session, actor=actor)),
        blocked=out(list_blocked(session=session, actor=actor)),
    )


@router.get("/friends", response_model=FriendsOut)
def friends(token: AccessToken) -> FriendsOut:
    """Your friend code, your friends, and the people you blocked."""
    return _as_user(token, _friends)


@router.get("/friends/search", response_model=list[MatchOut])
def search(token: AccessToken, q: str = "") -> list[MatchOut]:
    """People by friend code or at least 3 letters of a name (never everyone; never you or blocked people)."""
    return [
        MatchOut(
            user_id=str(match.user_id),
            display_name=match.display_name,
            relation=match.relation,
            request_id=str(match.request_id) if match.request_id else None,
        )
        for match in _as_user(token, search_people, query=q[:80])
    ]


@router.delete("/friends/{user_id}", status_code=204)
def remove_friend(user_id: uuid.UUID, token: AccessToken) -> Response:
    """Unfriend someone."""
    _as_user(token, unfriend, user_id=user_id)
    return Response(status_code=204)


@router.post("/friends/{user_id}/block", response_model=RequestChangeOut)
def block(user_id: uuid.UUID, token: AccessToken) -> RequestChangeOut:
    """Block someone: ends a friendship or request and hides you from each other."""
    return _change(_as_user(token, block_user, user_id=user_id))


@router.delete("/friends/{user_id}/block", response_model=RequestChangeOut)
def unblock(user_id: uuid.UUID, token: AccessToken) -> RequestChangeOut:
    return _change(_as_user(token, unblock_user, user_id=user_id))


@router.get("/friends/requests", response_model=list[RequestOut])
def requests(token: AccessToken) -> list[RequestOut]:
    """Pending friend requests you received (incoming) and sent (outgoing), newest first."""
    return [
        RequestOut(
            id=str(view.request_id),
            user_id=str(view.user_id),
            display_name=view.display_name,
            direction="incoming" if view.incoming else "outgoing",
            requested_at=view.requested_at.isoformat(),
        )
        for view in _as_user(token, list_friend_requests)
    ]


@router.post("/friends/requests", response_model=RequestChangeOut, status_code=201)
def send_request(body: FriendRequestIn, token: AccessToken) -> RequestChangeOut:
    """Ask someone to be friends. If they already asked you: 409 `request_already_received` (accept theirs)."""
    return _change(_as_user(token, send_friend_request, user_id=body.user_id))


@router.post("/friends/requests/{request_id}/accept", response_model=RequestChangeOut)
def accept(request_id: uuid.UUID, token: AccessToken) -> RequestChangeOut:
    return _change(_as_user(token, accept_friend_request, request_id=request_id))


@router.post("/friends/requests/{request_id}/decline", response_model=RequestChangeOut)
def decline(request_id: uuid.UUID, token: AccessToken) -> RequestChangeOut:
    return _change(_as_user(token, decline_friend_request, request_id=request_id))


@router.post("/friends/requests/{request_id}/cancel", response_model=RequestChangeOut)
def cancel(request_id: uuid.UUID, token: AccessToken) -> RequestChangeOut:
    return _change(_as_user(token, cancel_friend_request, request_id=request_id))


def _notifications(*, session: Any, actor: User) -> NotificationsOut:
    found, unread = read_notification_centre(session=session, actor=actor)
    return NotificationsOut(
        unread=unread,
        notifications=[
            NotificationOut(
                id=str(notification.id),
                kind=notification.kind,
                text=describe_notification(notification),
                created_at=notification.created_at.isoformat(),
                read=notification.read_at is not None,
                data=notification.payload,
            )
            for notification in found
        ],
    )


@router.get("/notifications", response_model=NotificationsOut, tags=["notifications"])
def notifications(token: AccessToken) -> NotificationsOut:
    """Your newest notifications and how many are unread."""
    return _as_user(token, _notifications)


@router.post("/notifications/read", status_code=204, tags=["notifications"])
def read_all(token: AccessToken) -> Response:
    """Mark all your notifications read."""
    _as_user(token, mark_all_read)
    return Response(status_code=204)
