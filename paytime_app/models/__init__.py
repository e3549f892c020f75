"""Every table, imported here so Alembic and tests see one complete `SQLModel.metadata`."""

from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.bookings import (
    Booking,
    BookingItem,
    BookingRefund,
    BookingStatus,
    CouponRedemption,
    RedemptionStatus,
    RefundDestination,
    Ticket,
    TicketStatus,
)
from paytime_app.models.calls import Call, CallStatus, CallType, EndReason
from paytime_app.models.credentials import OAuthIdentity, RecoveryCode, TotpCredential
from paytime_app.models.events import Coupon, CouponKind, Event, EventStatus, TicketType, VenueType
from paytime_app.models.friends import FriendCode, Friendship, FriendshipStatus
from paytime_app.models.ious import Iou, IouMethod, IouStatus
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from paytime_app.models.mail import MailMessage, MailStatus
from paytime_app.models.notifications import Notification
from paytime_app.models.payments import (
    Payment,
    PaymentDailyTotal,
    PaymentNote,
    PaymentPurpose,
    PaymentRefund,
    PaymentStatus,
    PaymentStatusChange,
    ProviderEvent,
    RefundStatus,
)
from paytime_app.models.sellers import ApplicationStatus, SellerApplication
from paytime_app.models.sessions import AuthChallenge, ChallengePurpose, KnownDevice, SessionKind, UserSession
from paytime_app.models.signing_keys import SigningKey, SigningKeyStatus
from paytime_app.models.users import Role, User

__all__ = [
    "ApplicationStatus",
    "AuditLogEntry",
    "AuthChallenge",
    "Booking",
    "BookingItem",
    "BookingRefund",
    "BookingStatus",
    "Call",
    "CallStatus",
    "CallType",
    "ChallengePurpose",
    "Coupon",
    "CouponKind",
    "CouponRedemption",
    "EndReason",
    "Event",
    "EventStatus",
    "FriendCode",
    "Friendship",
    "FriendshipStatus",
    "HoldStatus",
    "Iou",
    "IouMethod",
    "IouStatus",
    "Job",
    "JobStatus",
    "KnownDevice",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHold",
    "LedgerTransaction",
    "MailMessage",
    "MailStatus",
    "Notification",
    "OAuthIdentity",
    "Payment",
    "PaymentDailyTotal",
    "PaymentNote",
    "PaymentPurpose",
    "PaymentRefund",
    "PaymentStatus",
    "PaymentStatusChange",
    "ProviderEvent",
    "RecoveryCode",
    "RedemptionStatus",
    "RefundDestination",
    "RefundStatus",
    "Role",
    "SellerApplication",
    "SessionKind",
    "SigningKey",
    "SigningKeyStatus",
    "Ticket",
    "TicketStatus",
    "TicketType",
    "TotpCredential",
    "User",
    "UserSession",
    "VenueType",
]
