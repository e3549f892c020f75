"""Money as integer minor units plus an ISO 4217 currency; never floats.

Providers convert at the edge with `to_minor`/`from_minor`; the one place that formats money for
people is `format_money`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum

from paytime_app.errors import ValidationFailed


class Currency(StrEnum):
    NGN = "NGN"
    USD = "USD"


MINOR_DIGITS: dict[Currency, int] = {Currency.NGN: 2, Currency.USD: 2}
SYMBOLS: dict[Currency, str] = {Currency.NGN: "₦", Currency.USD: "$"}


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"
    default_message = "Enter an amount greater than zero."


class UnsupportedCurrency(ValidationFailed):
    code = "unsupported_currency"
    default_message = "That currency is not supported."


def parse_currency(value: str) -> Currency:
    try:
        return Currency(value.upper())
    except ValueError:
        raise UnsupportedCurrency(f"{value!r} is not a supported currency.") from None


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency: Currency

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int of minor units")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def percent(self, basis_points: int) -> Money:
        """This amount times basis_points / 10,000, rounded half to even."""
        share = (Decimal(self.amount_minor) * basis_points / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
        return Money(int(share), self.currency)


def require_positive(amount_minor: int) -> int:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise InvalidAmount()
    return amount_minor


def to_minor(major: str | Decimal, currency: Currency) -> int:
    """Parse a major-unit amount typed by a person ("1,250.50") into minor units, exactly."""
    text = str(major).replace(",", "").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidAmount("Enter the amount as a number, for example 1250.50.") from None
    if not value.is_finite():
        raise InvalidAmount("Enter the amount as a number, for example 1250.50.")
    scaled = value.scaleb(MINOR_DIGITS[currency])
    if scaled != scaled.to_integral_value():
        raise InvalidAmount(f"{currency} amounts have at most {MINOR_DIGITS[currency]} decimals.")
    return int(scaled)


def from_minor(amount_minor: int, currency: Currency) -> Decimal:
    return Decimal(amount_minor).scaleb(-MINOR_DIGITS[currency])


def format_money(amount_minor: int, currency: Currency | str) -> str:
    """'₦1,250.50' / '-$3.00': the single formatting rule for people."""
    currency = Currency(currency)
    digits = MINOR_DIGITS[currency]
    sign = "-" if amount_minor < 0 else ""
    major = from_minor(abs(amount_minor), currency)
    return f"{sign}{SYMBOLS[currency]}{major:,.{digits}f}"
