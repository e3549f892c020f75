import pytest
from sqlmodel import select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.mail import MailMessage
from paytime_app.models.users import Role, User
from paytime_app.services.accounts import reset_password
from paytime_app.services.sessions import ClientInfo
from paytime_app.services.users import create_user, invite_user

BASE_URL = "http://paytime.test"


def staff(role: Role) -> User:
    return in_transaction(create_user, email=f"{role}@example.com", display_name=str(role), password=None, role=role)


def invite(actor: User, role: Role, email: str = "new@example.com") -> User:
    return in_transaction(
        invite_user, actor=actor, email=email, display_name="New Person", role=role, base_url=BASE_URL
    )


def test_invite_user_creates_the_role_without_a_password_and_emails_a_working_link(engine):
    admin = staff(Role.ADMIN)
    user = invite(admin, Role.MANAGER)
    assert (user.role, user.password_hash) == (Role.MANAGER, None)
    assert user.email_verified_at is not None
    with unit_of_work() as session:
        [mail] = session.exec(select(MailMessage).where(MailMessage.to_address == "new@example.com")).all()
        actions = session.exec(select(AuditLogEntry.action).where(AuditLogEntry.target_id == str(user.id))).all()
    assert actions == ["user.created"]
    token = mail.body_text.split("token=")[1].split()[0]
    in_transaction(
        reset_password, token=token, new_password="a-long-new-password-1", client=ClientInfo(ip_address="127.0.0.1")
    )
    with unit_of_work() as session:
        assert session.get(User, user.id).password_hash is not None


@pytest.mark.parametrize(
    ("actor_role", "granted"), [(Role.VIEWER, Role.CUSTOMER), (Role.CUSTOMER, Role.CUSTOMER), (Role.ADMIN, Role.ADMIN)]
)
def test_invite_user_refused_without_the_right_to_grant_and_nothing_written(engine, actor_role, granted):
    actor = staff(actor_role)
    with pytest.raises(DomainError) as refused:
        invite(actor, granted)
    assert refused.value.code == "forbidden"
    with unit_of_work() as session:
        assert session.exec(select(User).where(User.email == "new@example.com")).first() is None
        assert session.exec(select(MailMessage)).all() == []


def test_invite_user_existing_email_refused(engine):
    admin = staff(Role.ADMIN)
    invite(admin, Role.CUSTOMER)
    with pytest.raises(DomainError) as refused:
        invite(admin, Role.VIEWER)
    assert refused.value.code == "email_taken"
