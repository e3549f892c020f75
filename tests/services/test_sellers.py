"""Seller applications: apply once at a time, only a super_admin decides, the applicant is told by email and live."""

import pytest
from sqlmodel import select

from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.mail import MailMessage
from paytime_app.models.sellers import ApplicationStatus
from paytime_app.models.users import Role, User
from paytime_app.services.sellers import apply_to_sell, decide_application, get_own_application, list_applications
from paytime_app.services.users import create_user
from tests.helpers import run_at_once


def person(email: str, role: Role = Role.CUSTOMER) -> User:
    return in_transaction(
        create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None, role=role
    )


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    return messages


def apply(user: User, **overrides):
    fields = {"organisation_name": "Lagos Live", "contact_email": "hi@lagoslive.ng", "payout_country": "ng"}
    return in_transaction(apply_to_sell, actor=user, **{**fields, **overrides})


def code_of(service, **kwargs) -> str:
    with pytest.raises(DomainError) as refused:
        in_transaction(service, **kwargs)
    return refused.value.code


def role_of(user: User) -> Role:
    with unit_of_work() as session:
        return session.get(User, user.id).role


def test_approval_makes_a_seller_and_tells_them(engine, published):
    ada, boss = person("ada@example.com"), person("boss@example.com", Role.SUPER_ADMIN)
    application = apply(ada)
    assert application.payout_country == "NG"
    decided = in_transaction(decide_application, actor=boss, application_id=application.id, approve=True)
    assert decided.status == ApplicationStatus.APPROVED
    assert role_of(ada) == Role.SELLER
    assert [m["topic"] for m in published if m.get("user_id") == str(ada.id)] == ["seller.application_decided"]
    with unit_of_work() as session:
        mail = session.exec(select(MailMessage).where(MailMessage.to_address == "ada@example.com")).one()
    assert "approved" in mail.body_text
    assert code_of(decide_application, actor=boss, application_id=application.id, approve=False, reason="late") == (
        "application_decided"
    )


def test_rejection_needs_a_reason_and_keeps_the_role(engine):
    ada, boss = person("ada@example.com"), person("boss@example.com", Role.SUPER_ADMIN)
    application = apply(ada)
    assert code_of(decide_application, actor=boss, application_id=application.id, approve=False) == "reason_required"
    in_transaction(decide_application, actor=boss, application_id=application.id, approve=False, reason="No ID given")
    assert role_of(ada) == Role.CUSTOMER
    with unit_of_work() as session:
        assert get_own_application(session=session, actor=ada).reason == "No ID given"
    apply(ada)  # may apply again after a rejection


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.SELLER, Role.VIEWER, Role.ADMIN])
def test_only_super_admin_decides(engine, role):
    ada = person("ada@example.com")
    application = apply(ada)
    someone = person("x@example.com", role)
    assert code_of(decide_application, actor=someone, application_id=application.id, approve=True) == "forbidden"
    assert role_of(ada) == Role.CUSTOMER


def test_one_pending_application_even_when_submitted_twice_at_once(engine):
    ada = person("ada@example.com")
    outcomes = run_at_once(4, lambda: apply(ada).status)
    assert outcomes.count(ApplicationStatus.PENDING) == 1
    assert outcomes.count("application_pending") == 3


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"organisation_name": "x"}, "invalid_organisation"),
        ({"contact_email": "nope"}, "invalid_email"),
        ({"payout_country": "Nigeria"}, "invalid_country"),
    ],
)
def test_bad_applications_refused(engine, overrides, code):
    ada = person("ada@example.com")
    fields = {"organisation_name": "Lagos Live", "contact_email": "hi@lagoslive.ng", "payout_country": "NG"}
    assert code_of(apply_to_sell, actor=ada, **{**fields, **overrides}) == code


def test_sellers_cannot_apply_and_customers_cannot_list(engine):
    seller = person("s@example.com", Role.SELLER)
    assert code_of(
        apply_to_sell, actor=seller, organisation_name="Org", contact_email="a@b.co", payout_country="NG"
    ) == ("already_seller")
    assert code_of(list_applications, actor=person("c@example.com")) == "forbidden"
