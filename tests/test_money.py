import pytest

from paytime_app.money import (
    Currency,
    InvalidAmount,
    Money,
    UnsupportedCurrency,
    format_money,
    parse_currency,
    require_positive,
    to_minor,
)


@pytest.mark.parametrize(
    ("typed", "minor"), [("1250.50", 125050), ("1,250.5", 125050), ("0.01", 1), ("7", 700), (" 3.10 ", 310)]
)
def test_to_minor_parses_exactly(typed, minor):
    assert to_minor(typed, Currency.NGN) == minor


@pytest.mark.parametrize("typed", ["1.005", "abc", "", "NaN", "Infinity"])
def test_to_minor_refuses_unusable_amounts(typed):
    with pytest.raises(InvalidAmount) as raised:
        to_minor(typed, Currency.USD)
    assert raised.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("minor", "currency", "text"), [(125050, "NGN", "₦1,250.50"), (-300, "USD", "-$3.00"), (0, "USD", "$0.00")]
)
def test_format_money(minor, currency, text):
    assert format_money(minor, currency) == text


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "10"])
def test_require_positive_refuses_non_positive_or_non_integer(amount):
    with pytest.raises(InvalidAmount):
        require_positive(amount)


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(1.5, Currency.USD)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot combine"):
        Money(1, Currency.USD) + Money(1, Currency.NGN)


def test_percent_rounds_half_to_even():
    assert Money(250, Currency.NGN).percent(1000).amount_minor == 25
    assert Money(125, Currency.NGN).percent(1000).amount_minor == 12
    assert Money(135, Currency.NGN).percent(1000).amount_minor == 14


def test_parse_currency():
    assert parse_currency("ngn") is Currency.NGN
    with pytest.raises(UnsupportedCurrency):
        parse_currency("EUR")
