"""Demo data for the embedded run mode; idempotent, and never in production."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, func, select

from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.events import Event
from paytime_app.models.users import Role, User
from paytime_app.money import Currency
from paytime_app.services.events import create_coupon, create_event, publish_event, save_ticket_type
from paytime_app.services.friends import accept_friend_request, are_friends, send_friend_request
from paytime_app.services.ledger import transfer
from paytime_app.services.users import create_user, get_user_by_email
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

DEMO_PASSWORD = "paytime-demo-2026"  # noqa: S105  published in the README for demos
DEMO_FUNDING = {Currency.NGN: 250_000_00, Currency.USD: 500_00}
DEMO_FRIENDS = ("ada@paytime.local", "ben@paytime.local")


@dataclass(frozen=True)
class DemoAccount:
    email: str
    display_name: str
    role: Role
    description: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("admin@paytime.local", "Amara Admin", Role.ADMIN, "admin"),
    DemoAccount("viewer@paytime.local", "Victor Viewer", Role.VIEWER, "viewer (read-only staff)"),
    DemoAccount("seller@paytime.local", "Sade Seller", Role.SELLER, "seller / event organizer"),
    DemoAccount("manager@paytime.local", "Musa Manager", Role.MANAGER, "check-in staff"),
    DemoAccount("ada@paytime.local", "Ada Obi", Role.CUSTOMER, "customer with funded NGN and USD wallets"),
    DemoAccount("ben@paytime.local", "Ben Okafor", Role.CUSTOMER, "customer with funded NGN and USD wallets"),
)


class DemoDataRefused(RuntimeError):
    """Seeding demo data was asked for in production."""


def seed_demo_data(*, session: Session) -> list[str]:
    """Create whatever demo data is missing; returns the emails of accounts it created.

    Raises DemoDataRefused in production.
    """
    if get_settings().is_production:
        raise DemoDataRefused("demo data is never seeded when PAYTIME_ENV=production")
    created = []
    for account in DEMO_ACCOUNTS:
        user = get_user_by_email(session=session, email=account.email)
        if user is None:
            user = create_user(
                session=session,
                email=account.email,
                display_name=account.display_name,
                password=DEMO_PASSWORD,
                role=account.role,
                email_verified=True,
            )
            created.append(account.email)
        if account.role == Role.CUSTOMER:
            _fund_wallets(session=session, user=user)
        if account.role == Role.SELLER:
            _demo_event(session=session, seller=user)
    _make_friends(session=session, emails=DEMO_FRIENDS)
    return created


def _make_friends(*, session: Session, emails: tuple[str, str]) -> None:
    """The two demo customers are friends (asked and accepted once, so seeding twice changes nothing).

    If someone changed that pair by hand in the demo (a pending request, a block), it is left alone.
    """
    first = get_user_by_email(session=session, email=emails[0])
    second = get_user_by_email(session=session, email=emails[1])
    if first is None or second is None or are_friends(session=session, user_id=first.id, other_id=second.id):
        return
    try:
        with session.begin_nested():
            request = send_friend_request(session=session, actor=first, user_id=second.id)
            accept_friend_request(session=session, actor=second, request_id=request.id)
    except DomainError:
        return


def _demo_event(*, session: Session, seller: User) -> None:
    """The demo seller's published event (once: only if they have none), a month from now."""
    if session.exec(select(func.count()).select_from(Event).where(Event.organizer_id == seller.id)).one():
        return
    start = (utcnow() + timedelta(days=30)).replace(hour=18, minute=0, second=0, microsecond=0)
    event = create_event(
        session=session,
        actor=seller,
        title="Lagos Jazz Night",
        description="An evening of live jazz by the lagoon, with food trucks and a late set from guest artists.",
        venue="Muri Okunola Park, Victoria Island",
        venue_type="event",
        starts_at=start,
        ends_at=start + timedelta(hours=5),
    )
    save_ticket_type(
        session=session,
        actor=seller,
        event_id=event.id,
        name="Regular",
        price_minor=5_000_00,
        capacity=200,
        price_tiers=[{"label": "Early bird", "price_minor": 3_500_00, "first_n": 50}],
        attributes={"Entry": "Gate B from 17:00"},
    )
    save_ticket_type(
        session=session,
        actor=seller,
        event_id=event.id,
        name="VIP table",
        description="Reserved seating near the stage, one drink included.",
        price_minor=25_000_00,
        capacity=20,
        per_customer_max=4,
        attributes={"Seat": "Front tables", "Includes": "One drink"},
    )
    create_coupon(session=session, actor=seller, event_id=event.id, code="JAZZ10", kind="percent", value=1000)
    publish_event(session=session, actor=seller, event_id=event.id)


def _fund_wallets(*, session: Session, user: User) -> None:
    """Demo customers start with money in both currencies (keyed, so seeding twice funds once)."""
    for currency, amount_minor in DEMO_FUNDING.items():
        transfer(
            session=session,
            source="world",
            destination=wallet_address(user.id, WalletKind.PRIMARY),
            amount_minor=amount_minor,
            currency=currency,
            idempotency_key=f"demo:funding:{user.id}:{currency}",
            kind="demo_funding",
            description="Demo funds",
        )
