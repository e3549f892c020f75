"""Domain errors with stable codes: the UI maps codes to words, the API to HTTP statuses."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal the user can understand; `code` is stable and asserted on by tests."""

    code: ClassVar[str] = "domain_error"
    status_code: ClassVar[int] = 422
    default_message: ClassVar[str] = "The request could not be completed."
    # Commit the work done before the refusal (e.g. a counted wrong attempt) instead of rolling back.
    keeps_changes: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, code: str | None = None, **details: Any):
        self.message = message or self.default_message
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class NotFound(DomainError):
    code = "not_found"
    status_code = 404
    default_message = "Not found."


class PermissionDenied(DomainError):
    code = "forbidden"
    status_code = 403
    default_message = "You are not allowed to do that."


class AuthenticationRequired(DomainError):
    code = "authentication_required"
    status_code = 401
    default_message = "Please sign in."


class ValidationFailed(DomainError):
    code = "invalid_input"
    status_code = 422
    default_message = "Some fields are not valid."


class Conflict(DomainError):
    code = "conflict"
    status_code = 409
    default_message = "That conflicts with the current state."


class ServiceUnavailable(DomainError):
    code = "service_unavailable"
    status_code = 503
    default_message = "A service we depend on is unavailable. Please try again shortly."
