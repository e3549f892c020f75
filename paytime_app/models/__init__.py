"""Every table, imported here so Alembic and tests see one complete `SQLModel.metadata`."""

from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.mail import MailMessage, MailStatus
from paytime_app.models.users import Role, User

__all__ = ["Job", "JobStatus", "MailMessage", "MailStatus", "Role", "User"]
