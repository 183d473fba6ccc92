"""Forecasts that notice when they are wrong: the model served, closures, last days, plausibility."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from toolkit.flows import stage_flows
from toolkit.forecast import (
    StageForecaster,
    choose_model,
    closures,
    doubtful_last_days,
    infer_holiday_country,
    plausibility,
    plausibility_table,
)
from toolkit.forecast.backtest import SCORE_COLUMNS
from toolkit.forecast.settings import ForecastSettings, business_calendar, calendar_of, split_series
from toolkit.pipeline import load
from toolkit.sample import MESSY_CLOSURE, write_messy_shop

#: Quick settings for one-year daily series: five weeks ahead, one backtest window of two weeks.
QUICK = dict(horizon=35, uncertainty_samples=100, backtest_folds=1, backtest_horizon=14,
             holiday_country=None, backend="serial", progress=False)


def _series(unique_id: str, ds: pd.DatetimeIndex, y: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": unique_id, "ds": ds, "y": y})


def _wholesale(seed: int = 0) -> pd.DataFrame:
    """A wholesale shop's year: closed Saturdays, shut from 23 Dec to 3 Jan, data through 9 Dec."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2010-12-01", "2011-12-09", freq="D")
    y = 10_000 * rng.lognormal(0, 0.2, len(days))
    y[days.day_of_week == 5] = 0.0
    y[(days >= "2010-12-23") & (days <= "2011-01-03")] = 0.0
    return _series("purchase|inflow|all", days, y)


# --- the model served against the best baseline -----------------------------------------------

def _scores(prophet: list[float], weekday_mean: list[float], seasonal_naive: float = 9.0) -> pd.DataFrame:
    """Backtest scores per window (MASE; MAE the same) of Prophet and both baselines."""
    rows = []
    for model, values in (("prophet", prophet), ("weekday_mean", weekday_mean),
                          ("seasonal_naive", [seasonal_naive] * len(prophet))):
        for fold, value in enumerate(values):
            rows.append({"unique_id": "s", "model": model, "fold": fold, "cutoff": pd.Timestamp("2025-01-01"),
                         "n": 14, "mae": value, "mase": value, "coverage": 0.8, "error": None})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def test_a_prophet_that_loses_clearly_is_replaced_by_the_baseline_and_named():
    choice = choose_model("shop|inflow|all", _scores([2.0, 2.2, 1.8], [1.0, 1.1, 0.9]))
    assert (choice.status, choice.model) == ("baseline", "weekday_mean")
    assert "weekday_mean beat prophet" in choice.reason
    assert choice.note.level == "warning"
    assert choice.note.text.startswith("Series shop|inflow|all: Prophet did worse")
    assert "2.000 vs 1.000" in choice.note.text


def test_a_baseline_without_error_is_said_in_words_not_as_a_perfect_score():
    """Windows that repeat the weeks before them (typically no money at all) give the seasonal naive rule
    a MASE of exactly 0: a page saying "0.482 vs 0.000" reads as a bug."""
    choice = choose_model("s", _scores([0.48, 0.5, 0.46], [0.3, 0.3, 0.3], seasonal_naive=0.0))
    assert (choice.status, choice.model) == ("baseline", "seasonal_naive")
    assert "repeated the weeks before them exactly" in choice.reason
    assert "repeated the weeks before them exactly" in choice.note.text
    assert "vs 0.000" not in choice.note.text and "vs 0.000" not in choice.reason


@pytest.mark.parametrize("prophet,weekday_mean,note", [
    ([1.05, 1.08, 1.02], [1.0, 1.0, 1.0], True),   # Prophet 5% worse: within 10%
    ([0.93, 0.92, 0.94], [1.0, 1.0, 1.0], False),  # Prophet 7% better: within 10%
    ([0.4, 1.6, 0.4], [1.0, 1.0, 1.0], False),     # 20% apart, but the windows disagree
])
def test_near_equals_are_averaged_not_picked_by_a_coin_flip(prophet, weekday_mean, note):
    choice = choose_model("s", _scores(prophet, weekday_mean))
    assert (choice.status, choice.model) == ("combined", "combined")
    assert set(choice.members) == {"prophet", "weekday_mean"}
    assert "too close to call" in choice.reason
    assert (choice.note is not None) == note


def test_prophet_is_ok_only_when_it_beats_the_baselines_clearly():
    choice = choose_model("s", _scores([0.6, 0.7, 0.65], [1.0, 1.1, 0.9]))
    assert (choice.status, choice.model, choice.note) == ("ok", "prophet", None)
    # a fixed schedule every method gets exactly right: nothing lost, nothing to average
    assert choose_model("s", _scores([0.0] * 3, [0.0] * 3)).status == "ok"
    # asked to keep Prophet anyway: served, but never "ok" when it lost
    kept = choose_model("s", _scores([2.0, 2.2, 1.8], [1.0, 1.1, 0.9]), select_best=False)
    assert (kept.status, kept.model) == ("worse-than-baseline", "prophet")
    assert kept.note.level == "warning" and "2.000 vs 1.000" in kept.note.text


def _all_scores(**means: list[float]) -> pd.DataFrame:
    """Backtest scores per window (MASE; MAE the same) of the models given, by name."""
    rows = [{"unique_id": "s", "model": model, "fold": fold, "cutoff": pd.Timestamp("2025-01-01"), "n": 14,
             "mae": value, "mase": value, "coverage": 0.8, "error": None}
            for model, values in means.items() for fold, value in enumerate(values)]
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)


def test_a_smoothing_model_that_wins_clearly_is_served_alone_and_near_equals_are_averaged():
    baselines = dict(seasonal_naive=[1.2, 1.3, 1.1], weekday_mean=[1.0, 1.1, 0.9])
    alone = choose_model("s", _all_scores(prophet=[0.9, 0.95, 0.85], ets=[0.5, 0.55, 0.45],
                                          theta=[0.8, 0.75, 0.85], **baselines))
    assert (alone.status, alone.model, alone.members, alone.note) == ("ok", "ets", (), None)
    assert "ets beat the other models beyond noise" in alone.reason
    pair = choose_model("s", _all_scores(prophet=[0.9, 0.95, 0.85], ets=[0.5, 0.55, 0.45],
                                         theta=[0.52, 0.56, 0.47], **baselines))
    assert (pair.status, pair.model, pair.members, pair.note) == ("combined", "combined", ("ets", "theta"), None)
    assert "their mean is served" in pair.reason  # of two, the median is their mean
    # a pair too close to call is joined by a close next best, so that a median of three can leave one out
    joined = choose_model("s", _all_scores(prophet=[0.57, 0.62, 0.52], ets=[0.5, 0.55, 0.45],
                                           theta=[0.52, 0.56, 0.47], **baselines))
    assert joined.members == ("ets", "theta", "prophet")
    assert "ets and theta too close to call" in joined.reason
    assert "the median of them and prophet, the next best, is served" in joined.reason
    trio = choose_model("s", _all_scores(prophet=[0.53, 0.57, 0.46], ets=[0.5, 0.55, 0.45],
                                         theta=[0.52, 0.56, 0.47], **baselines))
    assert trio.members == ("ets", "theta", "prophet") and "their median is served" in trio.reason
    # a baseline at the top of a near tie joins the mean, and that is said as a warning
    tied = choose_model("s", _all_scores(prophet=[1.5, 1.6, 1.4], ets=[1.02, 1.12, 0.93],
                                         theta=[2.0, 2.0, 2.0], **{**baselines, "seasonal_naive": [1.5] * 3}))
    assert tied.members == ("weekday_mean", "ets") and tied.note.level == "warning"
    assert "the mean of weekday_mean and ets is served" in tied.note.text


def test_after_a_level_drop_the_forecast_follows_the_new_level():
    # A shop whose takings fell by 40% seven weeks ago (a cohort stopped buying): Prophet's
    # changepoints lie in the first 80% of the history and keep part of the old level.
    rng = np.random.default_rng(3)
    days = pd.date_range("2025-01-06", periods=364, freq="D")
    weekly = np.tile([1.1, 1.0, 1.0, 1.05, 1.2, 0.8, 0.85], 52)
    level = np.where(np.arange(364) < 315, 1000.0, 600.0)
    y = level * weekly * rng.lognormal(0, 0.08, 364)
    quick = {**QUICK, "backtest_folds": 3}
    result = StageForecaster(**quick).fit(_series("drop|inflow|all", days, y)).predict()
    row = result.diagnostics.iloc[0]
    served = row.members.split(",") if row.status == "combined" else [row.model]
    assert {"ets", "theta"} & set(served), row.reason
    assert result.forecast["yhat"].mean() == pytest.approx(600 * weekly.mean(), rel=0.12)
    assert row.ets_mase < row.prophet_mase
    # the served paths are the mean of the members' paths draw by draw: intervals come from them
    paths = result.paths.to_numpy()
    lower = np.percentile(paths, 10, axis=1)
    assert np.allclose(lower, result.forecast["yhat_lower"].to_numpy())


def test_a_series_that_prophet_cannot_follow_is_served_without_prophet():
    # A seasonal random walk: next Monday is last Monday plus a step, which the seasonal
    # naive rule and seasonal exponential smoothing follow and Prophet's smooth trend does not.
    rng = np.random.default_rng(7)
    days = pd.date_range("2025-01-06", periods=364, freq="D")
    y = np.tile([500.0, 800, 700, 600, 900, 300, 200], 52)
    for t in range(7, 364):
        y[t] = y[t - 7] + rng.normal(0, 60)
    result = StageForecaster(**QUICK).fit(_series("walk|inflow|all", days, np.maximum(y, 0))).predict()
    row = result.diagnostics.iloc[0]
    served = row.members.split(",") if row.status == "combined" else [row.model]
    assert "prophet" not in served and set(served) <= {"ets", "seasonal_naive", "weekday_mean"}, row.reason
    assert max(row[f"{m}_mase"] for m in served) < row.prophet_mase / 2
    assert (result.forecast.model == row.model).all()
    # the reason names every model's score, Prophet's included
    assert f"prophet {row.prophet_mase:.3f}" in row.reason


# --- closures carried forward ------------------------------------------------------------------

def test_last_years_christmas_closure_is_forecast_as_closed():
    series = _wholesale()
    result = StageForecaster(**QUICK).fit(series).predict()
    fc = result.forecast.set_index("ds")
    shut = (fc.index >= "2011-12-23") & (fc.index <= "2012-01-03")
    assert shut.sum() == 12
    assert (fc.loc[shut, ["yhat", "yhat_lower", "yhat_upper"]] == 0).all().all()
    assert (result.paths.loc["purchase|inflow|all"].to_numpy()[shut] == 0).all()
    open_days = ~shut & (fc.index.day_of_week != 5)
    assert (fc.loc[open_days, "yhat"] > 5_000).all()  # about 10,000 on open days
    diag = result.diagnostics.iloc[0]
    assert diag.closures == "2010-12-23..2011-01-03" and diag.closed_weekdays == "Sat"
    assert diag.n_obs == len(series) - 12  # the closure's days are not fitted as sales of zero
    assumed = [n.text for n in result.notes if n.level == "assumed"]
    assert len(assumed) == 2 and "on Saturdays in any of the last 8 weeks" in assumed[0]
    assert "from 23 Dec 2010 to 03 Jan 2011 (a closure)" in assumed[1]

    # without the closed-days switch the same dates are forecast as ordinary days
    plain = StageForecaster(**{**QUICK, "closed_days": False}).fit(series).predict().forecast.set_index("ds")
    assert (plain.loc[shut, "yhat"] > 5_000).mean() > 0.8


def test_which_zero_runs_count_as_closures():
    days = pd.date_range("2023-01-01", "2025-06-30", freq="D")
    y = np.full(len(days), 100.0)
    this_year = (days >= "2024-12-24") & (days <= "2024-12-31")
    year_before = (days >= "2023-12-24") & (days <= "2023-12-31")
    one_off = pd.DataFrame({"ds": days, "y": np.where(this_year, 0.0, y)})
    yearly = pd.DataFrame({"ds": days, "y": np.where(this_year | year_before, 0.0, y)})
    # two and a half years: only a closure seen the year before as well is carried
    assert closures(one_off) == ()
    assert closures(yearly) == ((pd.Timestamp("2024-12-24"), pd.Timestamp("2024-12-31")),)
    # one year: the closure seen once is all there is, and is carried
    last_year = one_off[one_off.ds >= "2024-06-01"]
    assert closures(last_year) == ((pd.Timestamp("2024-12-24"), pd.Timestamp("2024-12-31")),)
    # two zero days are a quiet spell, not a closure; a run still going on at the end is not over
    short = last_year.assign(y=np.where(last_year.ds.isin(pd.date_range("2025-02-03", periods=2)), 0.0, 100.0))
    assert closures(short) == ()
    ongoing = last_year.assign(y=np.where(last_year.ds >= "2025-06-25", 0.0, 100.0))
    assert closures(ongoing) == ()
    # a sparse flow (zero on a third of its days) has runs of zeros by chance
    rng = np.random.default_rng(1)
    sparse = last_year.assign(y=np.where(rng.random(len(last_year)) < 0.35, 0.0, 100.0))
    assert closures(sparse) == ()
    # closed Sundays neither break a closure nor make one
    sundays = last_year.assign(y=np.where(last_year.ds.dt.day_of_week == 6, 0.0, last_year.y))
    assert closures(sundays, closed=(6,)) == ((pd.Timestamp("2024-12-24"), pd.Timestamp("2024-12-31")),)
    assert closures(sundays) == ()


# --- closures and closed weekdays are the business's ------------------------------------------

def _closure_notes(result) -> list[str]:
    return [n.text for n in result.notes if n.level == "assumed" and n.topic == "forecast"]


def test_a_sparse_series_beside_a_busy_one_gets_no_closure_of_its_own():
    # First orders only: rare late in the data, none for ten days in March and none on the last
    # eight Sundays, while repeat customers bought every day.
    rng = np.random.default_rng(2)
    days = pd.date_range("2024-11-01", "2025-10-31", freq="D")
    busy = 5_000 * rng.lognormal(0, 0.2, len(days))
    firsts = 300 * rng.lognormal(0, 0.5, len(days))
    firsts[(days >= "2025-03-03") & (days <= "2025-03-12")] = 0.0
    firsts[(days > days[-1] - pd.Timedelta(weeks=8)) & (days.day_of_week == 6)] = 0.0
    alone = calendar_of(pd.DataFrame({"ds": days, "y": firsts}), ForecastSettings())
    assert alone.closed_weekdays == (6,)  # taken for the whole business, it would close
    assert alone.closures == ((pd.Timestamp("2025-03-03"), pd.Timestamp("2025-03-12")),)

    series = pd.concat([_series("purchase|inflow|new", days, firsts),
                        _series("post-purchase|inflow|all", days, busy)]).assign(direction="inflow")
    result = StageForecaster(**QUICK).fit(series).predict()
    diag = result.diagnostics.set_index("unique_id")
    assert (diag["closures"] == "").all() and (diag["closed_weekdays"] == "").all()
    assert diag.loc["purchase|inflow|new", "n_obs"] == len(days)  # its zeros are fitted as zeros
    assert _closure_notes(result) == []


def test_a_business_closure_is_carried_into_every_series_that_stops_with_sales():
    rng = np.random.default_rng(4)
    shop = _wholesale()
    days = pd.DatetimeIndex(shop["ds"])
    shut = (days >= "2010-12-23") & (days <= "2011-01-03")
    # repeat orders: a sparse flow that alone would show no closure (zero on a third of its days)
    repeats = np.where(shop["y"] > 0, 800 * rng.lognormal(0, 0.3, len(days)), 0.0)
    repeats[rng.random(len(days)) < 0.35] = 0.0
    assert calendar_of(pd.DataFrame({"ds": days, "y": repeats}), ForecastSettings()).closures == ()
    payroll = np.where(days.day_of_week == 5, 20_000.0, 0.0)  # paid on Saturdays, the shop shut or not
    series = pd.concat([
        shop.assign(direction="inflow"),
        _series("post-purchase|inflow|all", days, repeats).assign(direction="inflow"),
        _series("purchase|outflow|estimated", days, 0.45 * (shop["y"].to_numpy() + repeats))
        .assign(direction="outflow"),
        _series("operations|outflow|payroll", days, payroll).assign(direction="outflow")])
    result = StageForecaster(**QUICK).fit(series).predict()

    diag = result.diagnostics.set_index("unique_id")
    followers = ["purchase|inflow|all", "post-purchase|inflow|all", "purchase|outflow|estimated"]
    assert (diag.loc[followers, "closures"] == "2010-12-23..2011-01-03").all()
    assert (diag.loc[followers, "closed_weekdays"] == "Sat").all()
    assert (diag.loc[followers, "n_obs"] == len(days) - shut.sum()).all()
    # the payroll was paid on closed Saturdays and during the closure: it goes on
    assert diag.loc["operations|outflow|payroll", ["closures", "closed_weekdays"]].tolist() == ["", ""]
    fc = result.forecast.set_index(["unique_id", "ds"])["yhat"]
    ahead = pd.date_range("2011-12-23", "2012-01-03")
    for uid in followers:
        assert (fc.loc[uid].loc[ahead] == 0).all(), uid
    assert (fc.loc["operations|outflow|payroll"].loc[["2011-12-24", "2011-12-31"]] > 10_000).all()
    # said once for the run, not once per series
    notes = _closure_notes(result)
    assert len(notes) == 2 and "Saturdays" in notes[0]
    assert "from 23 Dec 2010 to 03 Jan 2011 (a closure)" in notes[1]


def test_the_messy_shops_christmas_closure_is_found_once_and_carried(tmp_path):
    write_messy_shop(tmp_path, customers=1500)
    dataset = load(tmp_path)
    flows = stage_flows(dataset.tables, gross_margin=dataset.config.gross_margin)
    first, last = MESSY_CLOSURE
    parts = split_series(flows)
    assert business_calendar(parts, ForecastSettings()).closures == ((first, last),)
    # few first orders in a small shop: judged alone, the series would miss the closure
    purchases = next(frame for uid, frame, _ in parts if uid == "purchase|inflow|all")
    assert calendar_of(purchases, ForecastSettings()).closures == ()

    result = StageForecaster(**{**QUICK, "horizon": 70}).fit(flows).predict()
    notes = _closure_notes(result)
    assert len(notes) == 1 and "from 24 Dec 2025 to 01 Jan 2026 (a closure)" in notes[0]
    diag = result.diagnostics.set_index("unique_id")
    assert (diag["closed_weekdays"] == "").all()  # refunds never came on Sundays lately: chance
    inflows = ["purchase|inflow|all", "post-purchase|inflow|all", "purchase|outflow|estimated"]
    assert (diag.loc[inflows, "closures"] == "2025-12-24..2026-01-01").all()
    fc = result.forecast.set_index(["unique_id", "ds"])["yhat"]
    ahead = pd.date_range(first + pd.DateOffset(years=1), last + pd.DateOffset(years=1))
    for uid in inflows:
        assert (fc.loc[uid].loc[ahead] == 0).all(), uid
        assert (fc.loc[uid].drop(ahead) > 0).mean() > 0.9, uid


# --- partial and spiky last days ---------------------------------------------------------------

def test_a_partial_last_day_is_left_out_and_flagged():
    series = _wholesale()
    series.loc[series.index[-1], "y"] = 1_500.0  # the export ran on Friday morning
    left_out, notes = doubtful_last_days("purchase|inflow|all", series[["ds", "y"]], closed=(5,))
    assert list(left_out) == [pd.Timestamp("2011-12-09")]
    assert [n.level for n in notes] == ["warning"]
    assert "09 Dec 2011" in notes[0].text and "1,500" in notes[0].text and "partial day" in notes[0].text
    # an ordinary last day is kept
    assert len(doubtful_last_days("purchase|inflow|all", _wholesale()[["ds", "y"]], closed=(5,))[0]) == 0


def test_a_huge_refund_on_the_last_day_does_not_set_the_forecast_level():
    rng = np.random.default_rng(11)
    days = pd.date_range("2024-12-01", "2025-12-09", freq="D")
    refunds = np.where(rng.random(len(days)) < 0.6, rng.gamma(4, 50, len(days)), 0.0)
    refunds[-1] = 20 * refunds[refunds > 0].mean()  # one wholesale order refunded in full
    series = _series("purchase|outflow|refunds", days, refunds)
    history_mean = refunds.mean()

    result = StageForecaster(**QUICK).fit(series).predict()
    assert result.forecast.yhat.mean() <= 2 * history_mean
    assert result.forecast.yhat.mean() == pytest.approx(history_mean, rel=0.25)
    assert result.diagnostics.iloc[0].left_out == "2025-12-09"
    spikes = [n for n in result.notes if "one-off" in n.text]
    assert len(spikes) == 1 and spikes[0].level == "warning" and "09 Dec 2025" in spikes[0].text

    # left in, the spike still lifts the level by more than a third (a median combination of the
    # models follows it less than any one of them)
    kept = StageForecaster(**{**QUICK, "last_days": False}).fit(series).predict()
    assert kept.forecast.yhat.mean() > 1.35 * result.forecast.yhat.mean()


# --- plausibility of the forecast level ---------------------------------------------------------

def test_plausibility_against_last_year_and_the_run_rate_by_hand():
    two_years = pd.date_range("2024-01-01", "2025-12-31", freq="D")
    history = pd.concat([_series("a", two_years, np.full(len(two_years), 10.0)),
                         _series("b", two_years[-100:], np.full(100, 10.0)),
                         _series("c", two_years[-100:], np.zeros(100))])
    ahead = pd.date_range("2026-01-01", periods=30, freq="D")
    forecast = pd.concat([_series("a", ahead, np.full(30, 25.0)), _series("b", ahead, np.full(30, 20.0)),
                          _series("c", ahead, np.full(30, 5.0))]).rename(columns={"y": "yhat"})

    table = plausibility_table(history, forecast).set_index("unique_id")
    # a: the same 30 days a year earlier took 300; 750 is 2.5x, above 2x
    assert table.loc["a", ["forecast_total", "last_year_total", "run_rate_total"]].tolist() == [750, 300, 300]
    assert table.loc["a", "reference"] == "last year" and table.loc["a", "ratio"] == 2.5
    assert not table.loc["a", "plausible"]
    # b: no last year; 600 against a run-rate of 300 is 2x, inside 1/3x-3x
    assert np.isnan(table.loc["b", "last_year_total"]) and table.loc["b", "reference"] == "run-rate"
    assert table.loc["b", "ratio"] == 2.0 and table.loc["b", "plausible"]
    # c: nothing to compare with is not judged
    assert np.isnan(table.loc["c", "ratio"]) and table.loc["c", "plausible"]

    notes = plausibility(history, forecast)
    assert len(notes) == 1 and notes[0].level == "warning"
    assert notes[0].text.startswith("Series a:") and "750" in notes[0].text and "300" in notes[0].text
    assert "2.50x" in notes[0].text

    faster = forecast.assign(yhat=np.where(forecast.unique_id == "b", 40.0, forecast.yhat))
    assert [n.text.split(":")[0] for n in plausibility(history, faster)] == ["Series a", "Series b"]
    assert "run-rate" in plausibility(history, faster)[1].text


def test_the_forecaster_attaches_its_plausibility_notes():
    # Sales growing fast for four months: the forecast runs far above the recent run-rate.
    days = pd.date_range("2025-01-01", periods=120, freq="D")
    series = _series("growth|inflow|all", days, np.exp(np.arange(120) / 20))
    result = StageForecaster(**{**QUICK, "horizon": 90}).fit(series).predict()
    expected = plausibility(series, result.forecast)
    assert len(expected) == 1 and "run-rate" in expected[0].text
    assert expected[0] in result.notes


# --- holiday calendar from currency and time zone -----------------------------------------------

@pytest.mark.parametrize("currency,timezone,country", [
    ("GBP", "Europe/London", "GB"), ("GBP", "UTC", "GB"), ("EUR", "Europe/Berlin", "DE"),
    ("EUR", "Europe/Paris", "FR"), ("USD", "UTC", "US"), ("CAD", "America/Toronto", "CA"),
    ("AUD", "Australia/Sydney", "AU"), ("usd", "Europe/London", "GB"),  # the zone names the country
    ("EUR", "UTC", None), ("XYZ", "Etc/GMT+3", None), ("EUR", "", None),
])
def test_holiday_country_from_currency_and_timezone(currency, timezone, country):
    assert infer_holiday_country(currency, timezone) == country
