"""Every table, imported here so Alembic and tests see one complete `SQLModel.metadata`."""

from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.calls import Call, CallStatus, CallType, EndReason
from paytime_app.models.credentials import OAuthIdentity, RecoveryCode, TotpCredential
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from paytime_app.models.mail import MailMessage, MailStatus
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
from paytime_app.models.sessions import AuthChallenge, ChallengePurpose, KnownDevice, SessionKind, UserSession
from paytime_app.models.signing_keys import SigningKey, SigningKeyStatus
from paytime_app.models.users import Role, User

__all__ = [
    "AuditLogEntry",
    "AuthChallenge",
    "Call",
    "CallStatus",
    "CallType",
    "ChallengePurpose",
    "EndReason",
    "HoldStatus",
    "Job",
    "JobStatus",
    "KnownDevice",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerHold",
    "LedgerTransaction",
    "MailMessage",
    "MailStatus",
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
    "RefundStatus",
    "Role",
    "SessionKind",
    "SigningKey",
    "SigningKeyStatus",
    "TotpCredential",
    "User",
    "UserSession",
]
