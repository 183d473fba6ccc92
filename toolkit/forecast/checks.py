"""Doubts about a series' last days and about a forecast's level, said as notes.

Two things real exports do that a fitted model cannot tell from a change in
the business:

* the export was taken during the last day, so that day holds part of a day's
  sales (:func:`doubtful_last_days` finds it and it is left out of the fit);
* one large amount lands on the last days (a refund of a whole wholesale
  order): a baseline would repeat it every week and Prophet would follow it
  (:func:`doubtful_last_days` leaves such a one-off out of the fit as well).

And one thing a forecast can do that nobody should be shown without a word:
land far from what the same weeks brought last year, or far from the recent
run-rate (:func:`plausibility`, :func:`plausibility_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toolkit.notes import Note

__all__ = [
    "PARTIAL_DAY_SHARE",
    "PLAUSIBLE_VS_LAST_YEAR",
    "PLAUSIBLE_VS_RUN_RATE",
    "RUN_RATE_DAYS",
    "SPIKE_FACTOR",
    "doubtful_last_days",
    "plausibility",
    "plausibility_table",
]

#: A last day below this share of its weekday's median (and below each of its last
#: eight values) is taken for a partial day: the export ran before the day ended.
PARTIAL_DAY_SHARE = 1 / 3

#: A day of the last week whose amount exceeds this multiple of a typical day is a one-off.
SPIKE_FACTOR = 5.0

#: A forecast total outside these multiples of the same window last year is doubtful.
PLAUSIBLE_VS_LAST_YEAR = (0.5, 2.0)

#: Without last year to compare with: outside these multiples of the recent run-rate.
PLAUSIBLE_VS_RUN_RATE = (1 / 3, 3.0)

#: Days of history the run-rate is taken over.
RUN_RATE_DAYS = 90

_NORM_WEEKS = 8
_YEAR = pd.DateOffset(years=1)


def _money(value: float) -> str:
    return f"{value:,.0f}"


def doubtful_last_days(unique_id: str, history: pd.DataFrame, closed: tuple[int, ...] = ()
                       ) -> tuple[pd.DatetimeIndex, list[Note]]:
    """Days at the end of a daily series to leave out of the fit, and a note for each.

    * **Partial last day**: the last day, on a weekday the business opens, took
      less than ``PARTIAL_DAY_SHARE`` of that weekday's median over the previous
      eight weeks and less than any of those days (at least four of them seen).
    * **One-off spike**: a day of the last week whose absolute amount exceeds
      ``SPIKE_FACTOR`` times a typical day, the median of the non-zero absolute
      amounts of the year before that week (one or two such days; three or more
      are a new level). One such day says nothing about the level to come:
      kept, it would be copied into every week by a baseline and pull
      Prophet's level with it.

    ``history`` is a regular daily grid (``ds, y``). Left-out days are not
    forecast differently: they are only unknown to the models.
    """
    dates = pd.DatetimeIndex(history["ds"])
    y = history["y"].to_numpy(dtype=float)
    out, notes = [], []
    last = len(y) - 1
    if last < 0:
        return pd.DatetimeIndex([]), notes
    weekday = dates[last].day_of_week
    lags = 7 * np.arange(1, _NORM_WEEKS + 1)
    same_day = y[last - lags[lags <= last]]
    same_day = same_day[np.isfinite(same_day)]
    if (np.isfinite(y[last]) and weekday not in closed and same_day.size >= 4
            and np.median(same_day) > 0 and y[last] < PARTIAL_DAY_SHARE * np.median(same_day)
            and y[last] < same_day.min()):
        out.append(dates[last])
        notes.append(Note("forecast", (
            f"Series {unique_id}: the last day ({dates[last]:%d %b %Y}) took {_money(y[last])}, far below "
            f"a usual {dates[last]:%A} ({_money(np.median(same_day))}, median of the last "
            f"{same_day.size} weeks); it looks like a partial day and is left out of the fit."), "warning"))

    week_start = max(0, len(y) - 7)
    before = y[max(0, week_start - 365):week_start]
    before = np.abs(before[np.isfinite(before) & (before != 0)])
    typical = float(np.median(before)) if before.size >= 7 else np.nan
    spikes = [k for k in range(week_start, len(y)) if np.abs(y[k]) > SPIKE_FACTOR * typical]
    # Three or more such days in one week are a new level (or a season), not a one-off.
    if len(spikes) <= 2:
        for k in spikes:
            out.append(dates[k])
            notes.append(Note("forecast", (
                f"Series {unique_id}: {dates[k]:%d %b %Y} holds {_money(y[k])}, "
                f"{abs(y[k]) / typical:.0f}x a typical day ({_money(typical)}); taken for a one-off, "
                f"it is left out of the fit so that it does not set the level of the forecast."),
                "warning"))
    return pd.DatetimeIndex(sorted(out)), notes


def _window_total(series: pd.DataFrame, first: pd.Timestamp, last: pd.Timestamp) -> float:
    """Sum of ``y`` over ``first..last``, NaN unless the history covers the whole window."""
    if series.empty or series["ds"].iloc[0] > first or series["ds"].iloc[-1] < last:
        return np.nan
    return float(series.loc[series["ds"].between(first, last), "y"].sum())


def plausibility_table(series: pd.DataFrame, forecast: pd.DataFrame) -> pd.DataFrame:
    """Each series' forecast total over the horizon against last year and the recent run-rate.

    Parameters
    ----------
    series : the history, long (``unique_id, ds, y``).
    forecast : the forecast, long (``unique_id, ds, yhat``).

    Returns
    -------
    One row per forecast series: ``forecast_total``; ``last_year_total``, the
    same dates a year earlier (NaN when the history does not cover them);
    ``run_rate_total``, the mean per period of the last ``RUN_RATE_DAYS`` days
    times the forecast's periods; ``reference`` (``"last year"`` when known,
    else ``"run-rate"``), its ``ratio`` (forecast / reference, NaN when the
    reference is not positive), the ``low``..``high`` range the ratio should lie
    in (``PLAUSIBLE_VS_LAST_YEAR`` or ``PLAUSIBLE_VS_RUN_RATE``) and ``plausible``.
    """
    rows = []
    history = series.assign(ds=pd.to_datetime(series["ds"])).sort_values("ds")
    by_series = dict(tuple(history.groupby("unique_id", sort=False)))
    for unique_id, part in forecast.groupby("unique_id", sort=False):
        past = by_series.get(unique_id, history.iloc[:0])
        first, last = pd.Timestamp(part["ds"].min()), pd.Timestamp(part["ds"].max())
        recent = past[past["ds"] > past["ds"].max() - pd.Timedelta(days=RUN_RATE_DAYS)]["y"]
        row = {"unique_id": unique_id, "forecast_total": float(part["yhat"].sum()),
               "last_year_total": _window_total(past, first - _YEAR, last - _YEAR),
               "run_rate_total": float(recent.mean() * len(part)) if recent.notna().any() else np.nan}
        known = np.isfinite(row["last_year_total"])
        row["reference"] = "last year" if known else "run-rate"
        reference = row["last_year_total"] if known else row["run_rate_total"]
        row["low"], row["high"] = PLAUSIBLE_VS_LAST_YEAR if known else PLAUSIBLE_VS_RUN_RATE
        row["ratio"] = row["forecast_total"] / reference if reference > 0 else np.nan
        row["plausible"] = bool(not np.isfinite(row["ratio"]) or row["low"] <= row["ratio"] <= row["high"])
        rows.append(row)
    columns = ["unique_id", "forecast_total", "last_year_total", "run_rate_total", "reference",
               "ratio", "low", "high", "plausible"]
    return pd.DataFrame(rows, columns=columns)


def plausibility(series: pd.DataFrame, forecast: pd.DataFrame) -> list[Note]:
    """A warning for each series whose forecast total lies outside its plausible range.

    The range is ``PLAUSIBLE_VS_LAST_YEAR`` times the same window last year when
    the history covers it, else ``PLAUSIBLE_VS_RUN_RATE`` times the recent
    run-rate (see :func:`plausibility_table`). A series with no positive
    reference is not judged.
    """
    table = plausibility_table(series, forecast)
    notes = []
    for row in table[~table["plausible"]].itertuples():
        if row.reference == "last year":
            compared = f"the {_money(row.last_year_total)} of the same dates last year"
        else:
            compared = (f"the {_money(row.run_rate_total)} the last {RUN_RATE_DAYS} days' run-rate "
                        f"gives (no history a year back to compare with)")
        notes.append(Note("forecast", (
            f"Series {row.unique_id}: the forecast totals {_money(row.forecast_total)} over the horizon, "
            f"{row.ratio:.2f}x {compared}; outside {row.low:.2g}x-{row.high:.2g}x, so its level is "
            f"doubtful."), "warning"))
    return notes
