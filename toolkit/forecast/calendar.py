"""Which country's public holidays a business follows, from its currency and timezone."""

from __future__ import annotations

__all__ = ["infer_holiday_country"]

#: Currencies used by one country only.
_COUNTRY_OF_CURRENCY: dict[str, str] = {"GBP": "GB", "USD": "US"}

#: Euro countries, told apart by the business's timezone.
_EURO_COUNTRY_OF_TIMEZONE: dict[str, str] = {"Europe/Berlin": "DE"}


def infer_holiday_country(currency: str, timezone: str) -> str | None:
    """The ISO country whose public holidays apply, or None when currency and timezone do not say."""
    if currency.upper() == "EUR":
        return _EURO_COUNTRY_OF_TIMEZONE.get(timezone)
    return _COUNTRY_OF_CURRENCY.get(currency.upper())
