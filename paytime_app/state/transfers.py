"""Send money to a friend from the wallet page, with a code step for large amounts."""

from __future__ import annotations

import secrets
from typing import Any

import reflex as rx

from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.money import Currency, format_money, to_minor
from paytime_app.services.friends import list_friends
from paytime_app.services.transfers import StepUpRequired, transfer_to_friend
from paytime_app.state.auth import AuthState, parse_id


class TransfersState(AuthState):
    friends: list[dict[str, str]] = []
    selected_to: str = ""  # the friend chosen in the form (or passed as ?to= from the friends page)
    step_up_method: str = ""  # "" | totp | email: a code is being asked for
    step_up_prompt: str = ""
    error: str = ""
    notice: str = ""
    is_sending: bool = False
    _pending: dict[str, Any] = {}  # per-tab backend var: the transfer waiting for its code
    _key: str = ""

    @rx.event
    async def load_transfer_form(self) -> None:
        """When the form mounts: the viewer's friends to choose from."""
        if not self.user_id:
            await self._load_viewer()
        if not self.is_signed_in:
            return
        self._key = secrets.token_urlsafe(12)
        try:
            self.friends = [
                {"id": str(view.user_id), "name": view.display_name}
                for view in await self._call_as_viewer(list_friends)
            ]
        except AuthenticationRequired:
            return
        wanted = self.router.url.query_parameters.get("to", "")
        self.selected_to = wanted if any(friend["id"] == wanted for friend in self.friends) else ""

    @rx.event
    def choose_friend(self, user_id: str) -> None:
        """The form's friend picker; only one of the viewer's friends can be chosen."""
        self.selected_to = user_id if any(friend["id"] == user_id for friend in self.friends) else ""

    async def _send(self, **proof: str) -> None:
        self.is_sending, self.error, self.notice = True, "", ""
        try:
            transaction = await self._call_as_viewer(transfer_to_friend, **self._pending, **proof)
        except AuthenticationRequired:
            self.is_sending = False
            return
        except StepUpRequired as asked:
            self.step_up_method, self.step_up_prompt = str(asked.details.get("method", "")), asked.message
            self._pending["step_up_token"] = str(asked.details.get("challenge", ""))
            self.is_sending = False
            return
        except DomainError as error:
            self.error, self.is_sending = error.message, False
            if self.step_up_method and error.code not in ("invalid_code", "code_already_used"):
                self._reset()  # the code step cannot continue: start over
            return
        amount = format_money(self._pending["amount_minor"], self._pending["currency"])
        name = next((f["name"] for f in self.friends if f["id"] == str(self._pending["to_user_id"])), "your friend")
        self.notice = f"Sent {amount} to {name} ({transaction.reference})."
        self._reset()
        self.is_sending = False

    def _reset(self) -> None:
        self._pending, self.step_up_method, self.step_up_prompt = {}, "", ""
        self._key = secrets.token_urlsafe(12)

    @rx.event
    async def submit_transfer(self, form: dict[str, str]) -> None:
        self.error, self.notice = "", ""
        to_user_id = parse_id(str(form.get("to_user_id", "")))
        if to_user_id is None:
            self.error = "Choose the friend to send to."
            return
        try:
            currency = Currency(str(form.get("currency", "NGN")))
            amount_minor = to_minor(str(form.get("amount", ""))[:20], currency)
        except ValueError:
            self.error = "Choose a currency."
            return
        except DomainError as error:
            self.error = error.message
            return
        self._pending = {
            "to_user_id": to_user_id,
            "amount_minor": amount_minor,
            "currency": str(currency),
            "note": str(form.get("note", ""))[:300],
            "idempotency_key": f"web:{self._key}",
        }
        await self._send()

    @rx.event
    async def submit_step_up(self, form: dict[str, str]) -> None:
        if not self._pending:
            return
        token = str(self._pending.pop("step_up_token", ""))
        await self._send(step_up_code=str(form.get("code", ""))[:20], step_up_token=token)
        if self._pending and self.step_up_method == "email":
            self._pending["step_up_token"] = token  # a wrong code: the same emailed code may be tried again

    @rx.event
    def cancel_step_up(self) -> None:
        self._reset()
        self.error = ""
