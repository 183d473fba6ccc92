"""Which country's public holidays a business keeps, from its currency and time zone.

A configuration seldom names a holiday country, but it names the currency the
amounts are in and the time zone the shop runs in. A time zone of one country
(``Europe/Berlin``) says the most; a currency says less (the euro is used in
twenty countries, the dollar mostly in one). :func:`infer_holiday_country`
tries the time zone first, then the currency, and answers ``None`` rather than
guess.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from toolkit.notes import Note

__all__ = ["CURRENCY_COUNTRIES", "holiday_calendar", "infer_holiday_country", "timezone_country"]

#: Currencies used as the main currency of one country (ISO 4217 -> ISO 3166 alpha-2).
#: The euro and the currencies of monetary unions (XOF, XAF, XCD...) are left out:
#: they do not say which country's holidays to keep.
CURRENCY_COUNTRIES: dict[str, str] = {
    "AED": "AE", "ARS": "AR", "AUD": "AU", "BGN": "BG", "BRL": "BR", "CAD": "CA", "CHF": "CH",
    "CLP": "CL", "CNY": "CN", "COP": "CO", "CZK": "CZ", "DKK": "DK", "EGP": "EG", "GBP": "GB",
    "HKD": "HK", "HUF": "HU", "IDR": "ID", "ILS": "IL", "INR": "IN", "ISK": "IS", "JPY": "JP",
    "KES": "KE", "KRW": "KR", "MAD": "MA", "MXN": "MX", "MYR": "MY", "NGN": "NG", "NOK": "NO",
    "NZD": "NZ", "PEN": "PE", "PHP": "PH", "PKR": "PK", "PLN": "PL", "RON": "RO", "RSD": "RS",
    "SAR": "SA", "SEK": "SE", "SGD": "SG", "THB": "TH", "TRY": "TR", "TWD": "TW", "UAH": "UA",
    "USD": "US", "VND": "VN", "ZAR": "ZA",
}


@cache
def _zone_countries() -> dict[str, str]:
    """Time zone name -> country code, from the tz database's ``zone.tab``.

    Read from the ``tzdata`` package when installed, else from the system's
    zoneinfo directory; empty when neither is there (then only the currency counts).
    """
    candidates = []
    try:
        candidates.append(resources.files("tzdata").joinpath("zoneinfo", "zone.tab"))
    except ModuleNotFoundError:
        pass
    candidates.append(Path("/usr/share/zoneinfo/zone.tab"))
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        rows = (line.split("\t") for line in text.splitlines() if line and not line.startswith("#"))
        return {fields[2]: fields[0] for fields in rows if len(fields) >= 3}
    return {}


@cache
def _supported() -> frozenset[str]:
    """Country codes the ``holidays`` package (and so Prophet) has public holidays for."""
    import holidays

    return frozenset(holidays.list_supported_countries())


def timezone_country(timezone: str | None) -> str | None:
    """The country whose zone ``timezone`` is (``"Europe/Paris"`` -> ``"FR"``); ``None`` for UTC and the like."""
    return _zone_countries().get((timezone or "").strip())


def infer_holiday_country(currency: str | None, timezone: str | None) -> str | None:
    """The holiday country of a business from its currency and time zone, or ``None`` when unknown.

    The time zone decides when it is one country's zone (``EUR`` and
    ``Europe/Berlin`` -> ``"DE"``; ``USD`` and ``Europe/London`` -> ``"GB"``);
    otherwise the currency, when it is one country's (``GBP`` -> ``"GB"``,
    ``CAD`` -> ``"CA"``, see ``CURRENCY_COUNTRIES``). Only countries whose
    holidays the ``holidays`` package knows are returned. ``EUR`` with ``UTC``
    says no country and gives ``None``.
    """
    for country in (timezone_country(timezone), CURRENCY_COUNTRIES.get((currency or "").strip().upper())):
        if country is not None and country in _supported():
            return country
    return None


def holiday_calendar(country: str | None, currency: str | None,
                     timezone: str | None) -> tuple[str | None, list[Note]]:
    """The holiday country to forecast with -- ``"auto"`` resolved from currency and timezone -- and a note.

    A configured country (or None: no holidays) is taken as it is, without a
    note; an inferred one is said, since the pages' numbers depend on it.
    """
    if country != "auto":
        return country, []
    inferred = infer_holiday_country(currency, timezone)
    source = f"currency {currency} and timezone {timezone}"
    if inferred is None:
        return None, [Note("holidays", f"No holiday calendar: none follows from {source}; set "
                                       "holiday_country in journeycast.yml to model public holidays.", "missing")]
    return inferred, [Note("holidays", f"Holidays: {inferred}, from {source}; set holiday_country in "
                                       "journeycast.yml to use another calendar.", "assumed")]
