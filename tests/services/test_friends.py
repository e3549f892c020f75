"""Friends on SQLite and PostgreSQL: codes, search that never lists everyone, and the request /
accept / decline / cancel / unfriend / block rules, with notifications to the right person only."""

import uuid

import pytest
from sqlmodel import select

from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.friends import Friendship, FriendshipStatus
from paytime_app.models.users import User
from paytime_app.services import rate_limits
from paytime_app.services.friends import (
    accept_friend_request,
    are_friends,
    block_user,
    cancel_friend_request,
    decline_friend_request,
    get_friend_code,
    list_blocked,
    list_friend_requests,
    list_friends,
    normalize_friend_code,
    search_people,
    send_friend_request,
    unblock_user,
    unfriend,
)
from paytime_app.services.notifications import count_unread, list_notifications
from paytime_app.services.rate_limits import RateLimitPolicy
from paytime_app.services.users import set_user_active
from tests.helpers import make_user, refusal_code, run_at_once


@pytest.fixture
def ada(engine) -> User:
    return make_user("ada@example.com", "Ada Obi")


@pytest.fixture
def ben(engine) -> User:
    return make_user("ben@example.com", "Ben Okafor")


@pytest.fixture
def eve(engine) -> User:
    return make_user("eve@example.com", "Eve Adams")


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    return messages


def ask(actor: User, other: User) -> Friendship:
    return in_transaction(send_friend_request, actor=actor, user_id=other.id)


def befriend(actor: User, other: User) -> Friendship:
    request = ask(actor, other)
    return in_transaction(accept_friend_request, actor=other, request_id=request.id)


def names(actor: User, query: str) -> list[str]:
    return [match.display_name for match in in_transaction(search_people, actor=actor, query=query)]


def friends_of(user: User) -> list[str]:
    return [view.display_name for view in in_transaction(list_friends, actor=user)]


def notices(user: User) -> list[str]:
    return [notification.kind for notification in in_transaction(list_notifications, actor=user)]


# --- codes and search ----------------------------------------------------------------------------------


def test_friend_code_is_made_once_and_stable(ada, ben):
    first = in_transaction(get_friend_code, actor=ada)
    assert first == in_transaction(get_friend_code, actor=ada)
    assert first != in_transaction(get_friend_code, actor=ben)
    assert normalize_friend_code(first) == first


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("pt-7kq2m9", "PT-7KQ2M9"), ("7KQ2M9", "PT-7KQ2M9"), (" PT 7KQ 2M9 ", "PT-7KQ2M9"), ("PT-7KQ2MO", "PT-7KQ2M0")],
)
def test_normalize_friend_code_accepts_how_people_type_it(typed, expected):
    assert normalize_friend_code(typed) == expected


def test_normalize_friend_code_refuses_names():
    assert normalize_friend_code("Ada") is None
    assert normalize_friend_code("Benjamin") is None


def test_search_by_code_finds_exactly_that_person(ada, ben, eve):
    code = in_transaction(get_friend_code, actor=ben)
    assert names(ada, code.lower()) == ["Ben Okafor"]


def test_search_by_name_excludes_self(ada, ben, eve):
    make_user("ada2@example.com", "Ada Eze")
    assert names(ada, "ada") == ["Ada Eze", "Eve Adams"]


def test_search_never_lists_everyone(ada, ben):
    for query in ("", "a", "ad", "  "):
        assert refusal_code(search_people, actor=ada, query=query) == "search_too_short"


def test_search_treats_wildcards_literally(ada, ben):
    assert names(ada, "%%%") == []
    assert names(ada, "___") == []


def test_search_excludes_blocked_people_both_ways(ada, ben, eve):
    in_transaction(block_user, actor=ada, user_id=ben.id)
    assert names(ada, "Okafor") == []
    assert names(ben, "Obi") == []
    assert names(eve, "Okafor") == ["Ben Okafor"]


def test_search_excludes_disabled_accounts(ada, ben):
    admin = make_user("root@example.com", "Root", role="admin")
    in_transaction(set_user_active, actor=admin, user_id=ben.id, active=False)
    assert names(ada, "Okafor") == []


def test_search_says_how_each_person_relates(ada, ben, eve):
    request = ask(ada, ben)
    found = {match.display_name: match for match in in_transaction(search_people, actor=ada, query="Okafor")}
    assert found["Ben Okafor"].relation == "request_sent"
    assert found["Ben Okafor"].request_id == request.id
    seen_by_ben = in_transaction(search_people, actor=ben, query="Obi")
    assert [(match.relation, match.request_id) for match in seen_by_ben] == [("request_received", request.id)]
    in_transaction(accept_friend_request, actor=ben, request_id=request.id)
    assert [match.relation for match in in_transaction(search_people, actor=ada, query="Okafor")] == ["friend"]


# --- requests ------------------------------------------------------------------------------------------


def test_request_accept_makes_friends_and_notifies_each_side(ada, ben, eve, published):
    request = ask(ada, ben)
    assert notices(ben) == ["friend.requested"]
    assert notices(ada) == []
    assert in_transaction(count_unread, actor=ben) == 1
    in_transaction(accept_friend_request, actor=ben, request_id=request.id)
    assert friends_of(ada) == ["Ben Okafor"]
    assert friends_of(ben) == ["Ada Obi"]
    assert notices(ada) == ["friend.accepted"]
    assert notices(eve) == []
    told = {(message["topic"], message["user_id"]) for message in published}
    assert ("notification.created", str(eve.id)) not in told
    assert {("friend.updated", str(ada.id)), ("friend.updated", str(ben.id))} <= told
    with unit_of_work() as session:
        assert are_friends(session=session, user_id=ada.id, other_id=ben.id)


def test_request_to_self_is_refused(ada):
    assert refusal_code(send_friend_request, actor=ada, user_id=ada.id) == "cannot_friend_self"


def test_request_to_unknown_person_is_not_found(ada):
    assert refusal_code(send_friend_request, actor=ada, user_id=uuid.uuid4()) == "not_found"


def test_request_twice_is_refused(ada, ben):
    ask(ada, ben)
    assert refusal_code(send_friend_request, actor=ada, user_id=ben.id) == "request_already_sent"
    assert notices(ben) == ["friend.requested"]


def test_request_to_a_friend_is_refused(ada, ben):
    befriend(ada, ben)
    assert refusal_code(send_friend_request, actor=ada, user_id=ben.id) == "already_friends"
    assert refusal_code(send_friend_request, actor=ben, user_id=ada.id) == "already_friends"


def test_request_when_they_already_asked_offers_accept(ada, ben):
    request = ask(ada, ben)
    with pytest.raises(DomainError) as raised:
        ask(ben, ada)
    assert raised.value.code == "request_already_received"
    assert raised.value.details["request_id"] == str(request.id)


def test_simultaneous_requests_both_ways_leave_one_pending_request(ada, ben):
    people = iter([(ada, ben), (ben, ada)])

    def work() -> str:
        actor, other = next(people)
        return str(ask(actor, other).status)

    outcomes = sorted(run_at_once(2, work))
    assert outcomes == ["pending", "request_already_received"]
    with unit_of_work() as session:
        assert len(session.exec(select(Friendship)).all()) == 1


def test_decline_then_ask_again(ada, ben):
    request = ask(ada, ben)
    in_transaction(decline_friend_request, actor=ben, request_id=request.id)
    assert notices(ada) == ["friend.declined"]
    assert friends_of(ada) == []
    again = ask(ada, ben)
    assert again.id == request.id
    assert again.status == FriendshipStatus.PENDING


def test_only_the_addressee_accepts_or_declines(ada, ben, eve):
    request = ask(ada, ben)
    assert refusal_code(accept_friend_request, actor=ada, request_id=request.id) == "not_found"
    assert refusal_code(accept_friend_request, actor=eve, request_id=request.id) == "not_found"
    assert refusal_code(decline_friend_request, actor=ada, request_id=request.id) == "not_found"
    assert refusal_code(decline_friend_request, actor=eve, request_id=request.id) == "not_found"
    assert friends_of(ben) == []


def test_only_the_requester_cancels(ada, ben, eve):
    request = ask(ada, ben)
    assert refusal_code(cancel_friend_request, actor=ben, request_id=request.id) == "not_found"
    assert refusal_code(cancel_friend_request, actor=eve, request_id=request.id) == "not_found"
    in_transaction(cancel_friend_request, actor=ada, request_id=request.id)
    assert in_transaction(list_friend_requests, actor=ben) == []
    assert refusal_code(accept_friend_request, actor=ben, request_id=request.id) == "not_found"


def test_requests_are_listed_on_both_sides(ada, ben):
    request = ask(ada, ben)
    [outgoing] = in_transaction(list_friend_requests, actor=ada)
    [incoming] = in_transaction(list_friend_requests, actor=ben)
    assert (outgoing.request_id, outgoing.incoming, outgoing.display_name) == (request.id, False, "Ben Okafor")
    assert (incoming.request_id, incoming.incoming, incoming.display_name) == (request.id, True, "Ada Obi")


def test_unfriend_ends_it_for_both(ada, ben):
    befriend(ada, ben)
    in_transaction(unfriend, actor=ben, user_id=ada.id)
    assert friends_of(ada) == friends_of(ben) == []
    assert refusal_code(unfriend, actor=ada, user_id=ben.id) == "not_friends"


# --- blocking ------------------------------------------------------------------------------------------


def test_block_ends_friendship_and_refuses_requests_both_ways(ada, ben):
    befriend(ada, ben)
    in_transaction(block_user, actor=ben, user_id=ada.id)
    assert friends_of(ada) == []
    assert refusal_code(send_friend_request, actor=ada, user_id=ben.id) == "blocked"
    assert refusal_code(send_friend_request, actor=ben, user_id=ada.id) == "blocked"
    assert [view.display_name for view in in_transaction(list_blocked, actor=ben)] == ["Ada Obi"]
    assert in_transaction(list_blocked, actor=ada) == []


def test_only_the_blocker_unblocks(ada, ben):
    in_transaction(block_user, actor=ben, user_id=ada.id)
    assert refusal_code(unblock_user, actor=ada, user_id=ben.id) == "not_found"
    in_transaction(unblock_user, actor=ben, user_id=ada.id)
    assert ask(ada, ben).status == FriendshipStatus.PENDING


def test_block_self_is_refused(ada):
    assert refusal_code(block_user, actor=ada, user_id=ada.id) == "cannot_friend_self"


# --- limits ----------------------------------------------------------------------------------------------


def test_friend_requests_are_rate_limited(ada, monkeypatch):
    monkeypatch.setattr(rate_limits, "FRIEND_REQUESTS_PER_USER", RateLimitPolicy("friend_requests_per_user", "2/hour"))
    people = [make_user(f"p{index}@example.com", f"Person {index}") for index in range(3)]
    ask(ada, people[0])
    ask(ada, people[1])
    assert refusal_code(send_friend_request, actor=ada, user_id=people[2].id) == "rate_limited"
    assert in_transaction(list_friend_requests, actor=people[2]) == []


def test_people_search_is_rate_limited(ada, ben, monkeypatch):
    monkeypatch.setattr(rate_limits, "PEOPLE_SEARCH_PER_USER", RateLimitPolicy("people_search_per_user", "2/minute"))
    assert names(ada, "Okafor") == ["Ben Okafor"]
    assert names(ada, "Okaf") == ["Ben Okafor"]
    assert refusal_code(search_people, actor=ada, query="Okafor") == "rate_limited"
