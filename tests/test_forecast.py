"""The forecasting engine against truth: plain Prophet, planted seasonality, hand counts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet
from prophet.models import CmdStanPyBackend
from stanio import write_stan_json as stanio_write

from conftest import TEST_DATA
from toolkit import sample
from toolkit.flows import stage_flows
from toolkit.forecast import (
    BASELINES,
    MODELS,
    ForecastError,
    ForecastSettings,
    StageForecaster,
    backtest,
    calibration_factor,
    fit_prophet,
    forecast_series,
    series_seed,
)
from toolkit.forecast.backtest import FoldForecast
from toolkit.forecast.smoothing import theta_forecast
from toolkit.forecast.methods import (
    SMOOTHING,
    SeasonalFeatures,
    block_level,
    clipped_keeping_totals,
    combine,
    finish,
    prophet_forecast,
    steady_level,
)
from toolkit.forecast.model import Calibration
from toolkit.forecast.stan_io import write_stan_json

EXAMPLES = TEST_DATA / "prophet_examples"
PLAIN = dict(holiday_country=None, closed_days=False, last_days=False, non_negative=False,
             calibrate=False, select_best=False, backtest_folds=0, progress=False)
PLAIN_SETTINGS = {k: v for k, v in PLAIN.items() if k != "progress"}
QUICK = dict(horizon=28, uncertainty_samples=100, backtest_folds=2, backtest_horizon=14,
             progress=False)


def _peyton_manning() -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / "example_wp_log_peyton_manning.csv", parse_dates=["ds"])


def _daily(values: np.ndarray, start: str = "2025-01-01") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq="D"))


def _long(**series: pd.Series) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"unique_id": uid, "ds": s.index, "y": s.to_numpy(),
                                    "stage": f"stage-of-{uid}"}) for uid, s in series.items()],
                     ignore_index=True)


@pytest.fixture(scope="session")
def mixed_series() -> pd.DataFrame:
    """Real and synthetic series, two of which Prophet must not (or cannot) serve."""
    rng = np.random.default_rng(3)
    pm = _peyton_manning().tail(400).set_index("ds")["y"]
    days = pd.date_range("2025-01-01", periods=364, freq="D")
    closed = np.maximum(100 + 25 * rng.standard_normal(364), 0)
    closed[days.day_of_week == 6] = 0.0  # the shop never opens on Sundays
    sparse = np.maximum(rng.normal(2, 10, 364), 0)  # a small flow, mostly zero
    broken = 50 + rng.normal(0, 5, 200)
    broken[120] = np.inf  # a corrupt value: Prophet refuses the series
    return _long(pm=pm, closed=_daily(closed), sparse=_daily(sparse), zero=_daily(np.zeros(120)),
                 broken=_daily(broken), short=_daily(rng.uniform(1, 2, 10)))


@pytest.fixture(scope="session")
def serial_result(mixed_series):
    return StageForecaster(backend="serial", **QUICK).fit(mixed_series).predict()


@pytest.fixture(scope="session")
def local_result(mixed_series):
    return StageForecaster(backend="local", n_jobs=2, **QUICK).fit(mixed_series).predict()


@pytest.fixture(scope="session")
def sample_flows(sample_tables) -> pd.DataFrame:
    """The sample shop's daily stage flows."""
    return stage_flows(sample_tables)


def _one(flows: pd.DataFrame, unique_id: str) -> pd.DataFrame:
    return flows.loc[flows.unique_id == unique_id, ["ds", "y"]].reset_index(drop=True)


# --- nothing changed the model by accident -------------------------------------------------

@pytest.mark.parametrize("name,freq,horizon", [
    ("example_wp_log_peyton_manning.csv", "D", 60), ("example_retail_sales.csv", "MS", 12)])
def test_plain_settings_reproduce_plain_prophet(name, freq, horizon):
    history = pd.read_csv(EXAMPLES / name, parse_dates=["ds"])
    series = history.assign(unique_id="example")
    result = StageForecaster(horizon=horizon, freq=freq, uncertainty_samples=200, backend="serial",
                             **PLAIN).fit(series).predict()

    model = Prophet(uncertainty_samples=200).fit(history)
    future = model.make_future_dataframe(periods=horizon, freq=freq, include_history=False)
    np.random.seed(series_seed(42, "example"))
    plain = model.predict(future)

    ours = result.forecast
    assert list(ours.ds) == list(plain.ds)
    # The forecaster's Prophet fits are solved by prophet-batch's exact MAP, where Stan's L-BFGS
    # stops a little short: the same model, within 0.5% of the series' level (its intervals,
    # drawn around that fit, within 1%).
    level = history.y.abs().mean()
    for column, share in (("yhat", 0.005), ("yhat_lower", 0.01), ("yhat_upper", 0.01)):
        np.testing.assert_allclose(ours[column].to_numpy(), plain[column].to_numpy(), rtol=0, atol=share * level)
    assert (ours.model == "prophet").all()
    assert result.diagnostics.status.tolist() == ["ok"]


def test_fast_stan_json_is_byte_identical_to_cmdstanpys(tmp_path):
    captured = {}

    class Capture(CmdStanPyBackend):
        def fit(self, stan_init, stan_data, **kwargs):
            captured["inits"], captured["data"] = self.prepare_data(stan_init, stan_data)
            return super().fit(stan_init, stan_data, **kwargs)

    model = Prophet()
    model.add_country_holidays("US")
    model.stan_backend = Capture()
    model.fit(_peyton_manning())
    for key in ("data", "inits"):
        stanio_write(str(tmp_path / f"{key}-stanio.json"), captured[key])
        write_stan_json(str(tmp_path / f"{key}-fast.json"), captured[key])
        theirs = (tmp_path / f"{key}-stanio.json").read_bytes()
        assert (tmp_path / f"{key}-fast.json").read_bytes() == theirs
        assert json.loads(theirs)  # a real, non-empty document


# --- fallbacks, flags and the shape of the result ------------------------------------------

def test_failing_and_degenerate_series_get_fallbacks_while_others_are_served(serial_result):
    diag = serial_result.diagnostics.set_index("unique_id")
    assert diag.loc["zero", "status"] == "fallback" and "constant" in diag.loc["zero", "reason"]
    assert diag.loc["short", "status"] == "fallback" and "too short" in diag.loc["short", "reason"]
    assert diag.loc["broken", "status"] == "failed-over"
    assert "infinity" in diag.loc["broken", "reason"].lower()
    # served by the best of the other models (or their mean), never by Prophet
    assert diag.loc["broken", "model"] in ("ets", "theta", "seasonal_naive", "weekday_mean", "combined")
    assert "prophet" not in diag.loc["broken", "members"]
    for uid in ("pm", "closed", "sparse"):  # backtested, then served by the rule of choose_model
        assert diag.loc[uid, "status"] in ("ok", "combined", "baseline"), diag.loc[uid, "reason"]
        assert np.isfinite(diag.loc[uid, ["prophet_mase", "ets_mase", "theta_mase", "seasonal_naive_mase",
                                          "weekday_mean_mase"]].astype(float)).all()
        # a combination is scored on the same windows as its members
        assert np.isfinite(float(diag.loc[uid, "combined_mase"])) == (diag.loc[uid, "status"] == "combined")
    # the zero series is forecast as zero, with no spread
    zero = serial_result.paths.loc["zero"].to_numpy()
    assert (zero == 0).all()
    # every series has the full horizon, finite paths, and its extra column carried along
    fc = serial_result.forecast
    assert fc.groupby("unique_id").size().eq(28).all() and fc.unique_id.nunique() == 6
    assert np.isfinite(serial_result.paths.to_numpy()).all()
    assert (fc.stage == "stage-of-" + fc.unique_id).all()
    assert (diag.stage == "stage-of-" + diag.index).all()
    assert list(serial_result.paths.columns) == [f"draw_{k}" for k in range(100)]
    assert serial_result.paths.index.names == ["unique_id", "ds"]


def test_no_series_is_ok_when_a_baseline_beat_every_model(serial_result):
    diag = serial_result.diagnostics
    ran = diag[diag.status.isin(["ok", "combined", "baseline"])]
    assert len(ran) == 3
    for row in ran.itertuples():
        prophet = row.prophet_mase
        scores = {m: getattr(row, f"{m}_mase") for m in MODELS}
        best = min(scores, key=lambda m: (scores[m], MODELS.index(m)))
        partner = min(BASELINES, key=lambda m: scores[m])
        baseline = scores[partner]
        if row.status == "ok":
            assert row.model == best and best not in BASELINES and row.members == ""
        elif row.status == "baseline":
            assert row.model == best == partner and f"{partner} beat prophet" in row.reason
        else:
            members = row.members.split(",")
            assert row.model == "combined" and "too close to call" in row.reason
            assert best in members and len(members) > 1
        # a baseline beating Prophet and every other model is never silent: a warning says so
        warned = [n for n in serial_result.notes if n.text.startswith(f"Series {row.unique_id}: Prophet did")]
        assert len(warned) == int(best in BASELINES and prophet > baseline)
        if warned:
            assert warned[0].level == "warning"
            assert f"{prophet:.3f} vs {baseline:.3f}" in warned[0].text


def test_interval_matches_the_quantiles_of_the_paths(serial_result):
    fc = serial_result.forecast.set_index(["unique_id", "ds"])
    paths = serial_result.paths.loc[fc.index].to_numpy()
    np.testing.assert_allclose(fc.yhat_lower, np.percentile(paths, 10, axis=1))
    np.testing.assert_allclose(fc.yhat_upper, np.percentile(paths, 90, axis=1))


def test_missing_column_is_a_clear_error():
    with pytest.raises(ForecastError, match="required column 'y' missing"):
        StageForecaster(progress=False).fit(pd.DataFrame({"unique_id": ["a"], "ds": ["2025-01-01"]}))


# --- determinism ----------------------------------------------------------------------------

def test_same_seed_same_numbers_on_any_backend(mixed_series, serial_result, local_result):
    again = StageForecaster(backend="serial", **QUICK).fit(mixed_series).predict()
    for other in (again, local_result):
        pd.testing.assert_frame_equal(serial_result.forecast, other.forecast)
        pd.testing.assert_frame_equal(serial_result.paths, other.paths)
        pd.testing.assert_frame_equal(serial_result.diagnostics, other.diagnostics)
    # another seed moves the draws, not a Prophet point forecast
    pm = mixed_series.query("unique_id == 'pm'")[["ds", "y"]]
    runs = [forecast_series(("pm", pm, ForecastSettings(**PLAIN_SETTINGS, seed=seed))) for seed in (1, 2)]
    assert not np.array_equal(runs[0].paths, runs[1].paths)
    np.testing.assert_array_equal(runs[0].point, runs[1].point)


# --- closed days, non-negative flows --------------------------------------------------------

def test_closed_weekday_is_forecast_as_zero(mixed_series, serial_result):
    shop = mixed_series.query("unique_id == 'closed'")
    result = StageForecaster(backend="serial", **QUICK).fit(shop).predict()
    assert result.diagnostics.loc[0, "closed_weekdays"] == "Sun"
    fc = result.forecast
    sunday = fc.ds.dt.day_of_week == 6
    assert (fc.loc[sunday, ["yhat", "yhat_lower", "yhat_upper"]] == 0).all().all()
    assert (result.paths.loc["closed"][sunday.to_numpy()] == 0).all().all()
    assert (fc.loc[~sunday, "yhat"] > 60).all()  # open days keep their level (about 100)
    assert [n.text for n in result.notes if n.level == "assumed"] == [
        "Nothing came in on Sundays in any of the last 8 weeks: they are forecast as closed, "
        "in every series that moved no money on them."]
    # beside series that took money on Sundays, a Sunday without sales is not a closed day
    diag = serial_result.diagnostics.set_index("unique_id")
    assert (diag["closed_weekdays"] == "").all()


def test_paths_of_a_non_negative_flow_stay_non_negative(mixed_series, serial_result):
    assert (serial_result.paths.to_numpy() >= 0).all()
    # without the clip the same flow goes below zero: the clip is what keeps it there
    sparse = mixed_series.query("unique_id == 'sparse'")[["ds", "y"]]
    settings = ForecastSettings(**PLAIN_SETTINGS, horizon=28, uncertainty_samples=100)
    raw = forecast_series(("sparse", sparse, settings))
    assert raw.model == "prophet" and (raw.paths < 0).any()


# --- the planted truth of the sample shop ---------------------------------------------------

def _weekly_effect(history: pd.DataFrame) -> np.ndarray:
    """Prophet's weekly component as a multiple of the mean level, Monday first."""
    model = fit_prophet(history, ForecastSettings())
    week = pd.DataFrame({"ds": pd.date_range("2026-11-02", periods=7, freq="D")})  # a Monday
    weekly = model.predict_seasonal_components(model.setup_dataframe(week))["weekly"].to_numpy()
    return (history.y.mean() + weekly) / history.y.mean()


def test_recovers_planted_weekly_seasonality(sample_flows):
    # The weekly pattern is planted on arrivals and on repeat purchases; a first purchase
    # follows its arrival after a random delay, which washes the pattern out of first
    # orders (purchase inflow). Repeat and upsell orders (post-purchase inflow) carry it.
    effect = _weekly_effect(_one(sample_flows, "post-purchase|inflow|all"))
    assert effect.argmax() == 0 and effect.argmin() == 5  # busiest Monday, quietest Saturday
    truth = sample.WEEKLY
    assert effect[0] / effect[5] == pytest.approx(truth[0] / truth[5], rel=0.15)


def test_intervals_hold_nominal_coverage_on_the_sample(sample_flows):
    main = sample_flows[sample_flows.unique_id.isin(["purchase|inflow|all", "post-purchase|inflow|all"])]
    diag = StageForecaster(progress=False, uncertainty_samples=200).fit(main).predict().diagnostics
    diag = diag.set_index("unique_id")
    for uid in ("purchase|inflow|all", "post-purchase|inflow|all"):
        row = diag.loc[uid]
        # scored on windows the factor was not computed from
        assert abs(row.coverage_calibrated - 0.8) <= 0.1, (uid, row.coverage_calibrated)
        assert abs(row.coverage_calibrated - 0.8) <= abs(row[f"{row.model}_coverage"] - 0.8) + 0.05
    # Prophet's own intervals are too narrow on the returning customers' sales: widened
    assert diag.loc["post-purchase|inflow|all", "prophet_coverage"] < 0.7
    assert diag.loc["post-purchase|inflow|all", "calibration"] > 1.2
    assert diag.stage.tolist() == ["purchase", "post-purchase"]


# --- backtest and calibration by hand -------------------------------------------------------

def test_backtest_scores_match_a_hand_computation():
    pattern = np.array([10.0, 20, 30, 40, 50, 60, 70])
    rising = np.concatenate([pattern + shift for shift in (0, 1, 3, 6, 10)])  # 5 weeks
    steady = np.tile(pattern, 5)
    series = _long(rising=_daily(rising, "2025-01-06"), steady=_daily(steady, "2025-01-06"))
    settings = ForecastSettings(min_history=14, uncertainty_samples=50)
    scores = backtest(series, horizon=7, folds=1, models=("seasonal_naive", "weekday_mean"),
                      settings=settings, backend="serial", progress=False)
    scores = scores.set_index(["unique_id", "model"])
    # seasonal naive repeats week 4 (+6) for week 5 (+10): off by 4 every day; the in-sample
    # seasonal-naive MAE of weeks 1-4 is mean(1, 2, 3) = 2
    assert scores.loc[("rising", "seasonal_naive"), "mae"] == pytest.approx(4.0)
    assert scores.loc[("rising", "seasonal_naive"), "mase"] == pytest.approx(2.0)
    # the 4-week weekday mean is pattern + 2.5: off by 7.5
    assert scores.loc[("rising", "weekday_mean"), "mae"] == pytest.approx(7.5)
    assert scores.loc[("rising", "weekday_mean"), "mase"] == pytest.approx(3.75)
    # every resampled residual (at most +3 and +4.67) stays short of the jump to +10
    assert scores.loc[("rising", "seasonal_naive"), "coverage"] == 0.0
    assert scores.loc[("rising", "weekday_mean"), "coverage"] == 0.0
    # a series that repeats exactly is forecast exactly; MASE is undefined (zero scale)
    assert (scores.loc["steady", "mae"] == 0).all() and (scores.loc["steady", "coverage"] == 1).all()
    assert scores.loc["steady", "mase"].isna().all()
    assert (scores.n == 7).all() and (scores.cutoff == pd.Timestamp("2025-02-02")).all()


def test_coverage_is_scored_on_open_days_only():
    ones = np.ones(4)
    fold = FoldForecast(model="weekday_mean", fold=0, cutoff=pd.Timestamp("2025-01-01"),
                        actual=np.array([10.0, 30.0, 0.0, 0.0]), scale=1.0,
                        closed=np.array([False, False, True, True]), point=np.array([10.0, 10.0, 0.0, 0.0]),
                        lower=np.array([5.0, 5.0, 0.0, 0.0]), upper=np.array([20.0, 20.0, 0.0, 0.0]))
    row = fold.scores()
    # one of the two open days is inside its band; the closed days' zeros would have made it 3 of 4
    assert row["coverage"] == 0.5 and row["mae"] == pytest.approx(5.0) and row["n"] == 4
    shut = replace(fold, closed=ones.astype(bool), actual=np.zeros(4), point=np.zeros(4))
    assert np.isnan(shut.scores()["coverage"])  # nothing open: no coverage to speak of
    # an open day without money lies on a band clipped at zero: not scored either
    empty = replace(fold, actual=np.array([10.0, 30.0, 0.0, 0.0]), closed=np.zeros(4, bool),
                    lower=np.array([5.0, 5.0, 0.0, 0.0]))
    assert empty.scores()["coverage"] == 0.5
    assert empty.scored_days().tolist() == [True, True, False, False]


def _level_and_noise(rng, shape, level_sd, noise_sd, block=7):
    """Deviations with a level drawn per block of days (same in each of its days) plus daily noise."""
    days, draws = shape
    level = np.repeat(rng.normal(0, level_sd, (-(-days // block), draws)), block, axis=0)[:days]
    return level + rng.normal(0, noise_sd, shape)


def _synthetic_folds(level_sd, noise_sd, folds=40, days=28, draws=400, seed=3):
    """Windows whose actuals follow level 2 per week plus noise 1 a day, forecast by paths with
    the given spreads (the truth's when level_sd=2, noise_sd=1)."""
    rng = np.random.default_rng(seed)
    point = np.full(days, 10.0)
    return [FoldForecast(model="ets", fold=k, cutoff=pd.Timestamp("2025-01-01"),
                         actual=point + _level_and_noise(rng, (days, 1), 2.0, 1.0)[:, 0], scale=1.0,
                         closed=np.zeros(days, bool), raw_point=point,
                         raw_paths=point[:, None] + _level_and_noise(rng, (days, draws), level_sd, noise_sd))
            for k in range(folds)]


def test_calibration_keeps_honest_paths_and_separates_level_from_day_to_day():
    honest = calibration_factor(_synthetic_folds(2.0, 1.0), 0.8)
    assert honest.level == pytest.approx(1.0, rel=0.2) and honest.daily == pytest.approx(1.0, rel=0.25)
    assert abs(honest.coverage_daily - 0.8) < 0.05 and abs(honest.coverage_weekly - 0.8) < 0.1
    # a level three times too wide (a random walk that wanders too far) but the right daily noise:
    # the level is shrunk by about 3, the day-to-day spread kept
    wide = calibration_factor(_synthetic_folds(6.0, 1.0), 0.8)
    assert wide.level == pytest.approx(1 / 3, rel=0.25) and wide.daily == pytest.approx(1.0, rel=0.3)
    assert abs(wide.coverage_daily - 0.8) < 0.05 and abs(wide.coverage_weekly - 0.8) < 0.1
    # one factor for both (scaling the whole deviation) cannot hold both: the weekly totals of a
    # forecast calibrated on days alone stay far too wide
    one = finish(np.full(28, 10.0), _synthetic_folds(6.0, 1.0, folds=1)[0].raw_paths, wide.daily,
                 np.zeros(28, bool), False)[1]
    two = finish(np.full(28, 10.0), _synthetic_folds(6.0, 1.0, folds=1)[0].raw_paths, wide.daily,
                 np.zeros(28, bool), False, wide.level)[1]
    assert one[:7].sum(axis=0).std() > 2 * two[:7].sum(axis=0).std()
    # nothing to calibrate on
    assert calibration_factor([], 0.8) == Calibration()


def _lumpy_folds(folds, seed, days=28, draws=300):
    """Windows of a sparse shop's takings (half the days without a sale, the others around 100 with a
    long tail) forecast by symmetric paths around their mean: clipped at zero, most of the empty
    days lie on the lower bound."""
    rng = np.random.default_rng(seed)
    point = np.full(days, 50.0)
    sale = rng.random((folds, days)) < 0.5
    actual = np.where(sale, rng.gamma(2.0, 50.0, (folds, days)), 0.0)
    return [FoldForecast(model="ets", fold=k, cutoff=pd.Timestamp("2025-01-01"), actual=actual[k], scale=1.0,
                         closed=np.zeros(days, bool), raw_point=point, clip=True,
                         raw_paths=point[:, None] + rng.normal(0, 40, (days, draws)))
            for k in range(folds)]


def test_calibration_holds_on_the_days_with_a_sale_of_a_clipped_flow():
    spread = calibration_factor(_lumpy_folds(20, seed=11), 0.8)
    assert abs(spread.coverage_daily - 0.8) < 0.05
    # on new windows of the same shop, the served bands hold 80% of the days with a sale: the
    # factor was searched on the paths as served (clipped keeping each week's total), and the
    # empty days, covered by any band that reaches zero, were not counted
    covered = []
    for fold in _lumpy_folds(20, seed=12):
        _, paths = finish(fold.raw_point, fold.raw_paths, spread.daily, fold.closed, True, spread.level)
        lower, upper = np.percentile(paths, [10, 90], axis=1)
        sale = fold.actual > 0
        covered.append(((lower <= fold.actual) & (fold.actual <= upper))[sale])
    assert abs(np.concatenate(covered).mean() - 0.8) < 0.05


def test_a_combination_is_the_median_draw_by_draw():
    rng = np.random.default_rng(4)
    members = [(np.full(5, c), c + rng.normal(0, 1, (5, 30))) for c in (1.0, 2.0, 10.0)]
    point, paths = combine(members)
    assert np.array_equal(point, np.full(5, 2.0))  # the stray member does not pull the point
    stacked = np.stack([p for _, p in members])
    assert np.array_equal(paths, np.median(stacked, axis=0))  # draw k from the members' draws k
    assert np.allclose(combine(members[:2])[1], (members[0][1] + members[1][1]) / 2)


def test_finished_paths_stay_coherent():
    rng = np.random.default_rng(5)
    point = np.linspace(50, 80, 30)
    raw = point[:, None] + _level_and_noise(rng, (30, 200), 5.0, 2.0)
    closed = np.zeros(30, bool)
    closed[[5, 6, 12, 13]] = True
    _, plain = finish(point, raw, 1.7, closed, False)
    _, same = finish(point, raw, 1.7, closed, False, 1.7)
    assert np.allclose(plain, same)  # equal factors: the plain scaling
    opened = ~closed
    _, split = finish(point, raw, 1.7, closed, False, 0.5)
    # each week's total over its open days moves by the level factor exactly, draw by draw
    for start in range(0, 30, 7):
        days = np.arange(start, min(start + 7, 30))
        days = days[opened[days]]
        raw_total = (raw[days] - point[days, None]).sum(axis=0)
        assert np.allclose((split[days] - point[days, None]).sum(axis=0), 0.5 * raw_total)
    assert (split[closed] == 0).all()
    # clipped at zero, each week keeps its total (zero where it was negative)
    low = point[:, None] - 60 + 40 * rng.standard_normal((30, 200))
    kept = clipped_keeping_totals(low, 7)
    assert (kept >= 0).all()
    for start in range(0, 30, 7):
        week = slice(start, start + 7)
        assert np.allclose(kept[week].sum(axis=0), np.maximum(low[week].sum(axis=0), 0.0))
    # held beyond 14 days: later levels spread no more than the largest before
    level = block_level(raw - point[:, None], opened, 7)
    held = steady_level(level * np.arange(1, 31)[:, None], 14)
    assert held[14:].std(axis=1).max() <= held[:14].std(axis=1).max() + 1e-9
    assert np.array_equal(held[:14], (level * np.arange(1, 31)[:, None])[:14])


def test_totals_of_a_stationary_series_are_not_blown_up():
    # weekly pattern plus independent daily noise: the true 28-day total has a spread of
    # noise * sqrt(28); models with a wandering level must not serve a much wider band
    rng = np.random.default_rng(8)
    days = pd.date_range("2025-01-06", periods=420, freq="D")
    noise = 40.0
    y = 1000 * np.tile([1.2, 1.0, 1.0, 1.0, 1.3, 0.7, 0.8], 60) + rng.normal(0, noise, 420)
    result = StageForecaster(horizon=84, holiday_country=None, uncertainty_samples=300, progress=False,
                             backend="serial").fit(_long(shop=_daily(y, "2025-01-06"))).predict()
    totals = result.paths.to_numpy()[-28:].sum(axis=0)
    band = np.subtract(*np.percentile(totals, [90, 10]))
    truth = 2 * 1.2816 * noise * np.sqrt(28)
    assert 0.5 * truth < band < 2.5 * truth, (band, truth)
    row = result.diagnostics.iloc[0]
    assert 0.6 <= row.coverage_weekly <= 1.0 and 0.7 <= row.coverage_calibrated <= 0.9


def test_import_and_fits_are_quiet(capfd, mixed_series):
    done = subprocess.run([sys.executable, "-c", "import toolkit.forecast"], capture_output=True,
                          text=True, check=True)
    assert done.stderr == "" and done.stdout == ""
    capfd.readouterr()
    pm = mixed_series.query("unique_id == 'pm'")[["ds", "y"]]
    forecast_series(("pm", pm, ForecastSettings(**PLAIN_SETTINGS, uncertainty_samples=10)))
    out, err = capfd.readouterr()
    assert "cmdstanpy" not in out + err and "plotly" not in out + err


def test_prophet_features_built_once_give_prophets_own_forecast():
    # Holidays on, a fold's fit and the full fit: the features sliced from the grid built once
    # must give the numbers Prophet gives when it builds them itself.
    history = _peyton_manning().iloc[-500:].reset_index(drop=True)
    settings = ForecastSettings(holiday_country="US", uncertainty_samples=50)
    dates = pd.date_range(history.ds.iloc[-1] + pd.Timedelta(days=1), periods=28)
    shared = SeasonalFeatures(pd.DatetimeIndex(history.ds).append(dates))
    for train, ahead in ((history.iloc[:472], pd.DatetimeIndex(history.ds.iloc[472:])), (history, dates)):
        own = prophet_forecast(fit_prophet(train, settings), ahead, seed=5)
        cached = prophet_forecast(fit_prophet(train, settings, features=shared), ahead, seed=5)
        assert np.allclose(own[0], cached[0], rtol=1e-6) and np.allclose(own[1], cached[1], rtol=1e-6)


def test_series_on_one_grid_share_the_features_built_once(monkeypatch):
    # Two series of one run on the same dates: the second takes the first one's feature table.
    from toolkit.forecast import methods

    monkeypatch.setattr(methods, "_BUILT", {})
    built = []
    build = Prophet.make_all_seasonality_features
    monkeypatch.setattr(Prophet, "make_all_seasonality_features",
                        lambda self, df: built.append(len(df)) or build(self, df))
    history = _peyton_manning().iloc[-400:].reset_index(drop=True)
    grid = pd.DatetimeIndex(history.ds).append(pd.date_range(history.ds.iloc[-1] + pd.Timedelta(days=1), periods=28))
    settings = ForecastSettings(holiday_country="US", uncertainty_samples=10)
    for scale in (1.0, 3.0):
        fit_prophet(history.assign(y=history.y * scale), settings, features=SeasonalFeatures(grid))
    assert built == [len(grid)]


@pytest.mark.parametrize("extra", [{"holiday_country": "US"},
                                   {"holiday_country": "GB", "prophet_kwargs": {"seasonality_mode": "multiplicative"}}])
def test_prophet_point_is_prophets_own_yhat(extra):
    # The point is computed from the features without predict's table of components: it must be
    # predict's yhat to the bit, additive and multiplicative, holidays on.
    history = _peyton_manning().iloc[-500:].reset_index(drop=True)
    dates = pd.date_range(history.ds.iloc[-1] + pd.Timedelta(days=1), periods=28)
    model = fit_prophet(history, ForecastSettings(uncertainty_samples=20, **extra),
                        features=SeasonalFeatures(pd.DatetimeIndex(history.ds).append(dates)))
    point, _ = prophet_forecast(model, dates, seed=5)
    model.uncertainty_samples = 0
    assert np.array_equal(point, model.predict(pd.DataFrame({"ds": dates}))["yhat"].to_numpy())


@pytest.mark.parametrize("shape", ["multiplicative", "with closed days", "no season"])
def test_theta_gives_statsmodels_theta_forecast(shape):
    # The direct Theta must forecast what statsmodels' ThetaModel (its two-step fit) forecasts:
    # the same season test and decomposition, the same drift, the same smoothing weight.
    from statsmodels.tsa.forecasting.theta import ThetaModel

    rng = np.random.default_rng(7)
    n = 400
    weekly = np.tile([1.3, 1.0, 0.9, 1.0, 1.2, 0.6, 0.7], n // 7 + 1)[:n]
    y = (200 + 0.1 * np.arange(n) + rng.normal(0, 12, n).cumsum() * 0.3) * weekly
    if shape == "with closed days":
        y[np.arange(n) % 7 == 6] = 0.0
    if shape == "no season":
        y = 150 + rng.normal(0, 10, n)
    history = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=n), "y": y})
    expected = ThetaModel(y, period=7).fit(use_mle=False).forecast(28).to_numpy()
    point, paths = theta_forecast(history, 28, 7, 50, 3)
    assert np.allclose(point, expected, rtol=1e-4)  # both stop at their optimiser's tolerance
    assert paths.shape == (28, 50)


def _seasonal_days(n: int, season: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = 1 + 0.3 * np.sin(2 * np.pi * np.arange(n) / season)
    return (400 + 0.2 * np.arange(n) + rng.normal(0, 15, n).cumsum() * 0.5) * shape + rng.normal(0, 20, n)


@pytest.mark.parametrize("season", [7, 12])
@pytest.mark.parametrize("damped", [False, True])
def test_ets_fits_statsmodels_holt_winters(season, damped):
    # The compiled ETS is statsmodels' heuristic Holt-Winters fit: the same start states, the same
    # (or a lower) sum of squared errors, weights and AICc; its point ahead is the same recursion.
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    from toolkit.forecast.ets import fit_ets, start_states

    y = _seasonal_days(500, season, seed=season + damped)
    model = ExponentialSmoothing(y, trend="add" if damped else None, damped_trend=damped, seasonal="add",
                                 seasonal_periods=season, initialization_method="heuristic")
    level, trend, seasons = model.initial_values()
    ours = start_states(y, season, damped)
    assert np.isclose(ours[0], level) and np.isclose(ours[1], trend or 0.0) and np.allclose(ours[2], seasons)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = model.fit(use_brute=False)
    fit = fit_ets(y, season, damped)
    assert fit.errors @ fit.errors <= expected.sse * (1 + 1e-7)
    assert np.allclose(fit.errors, expected.resid, rtol=1e-3, atol=1e-3 * y.std())
    assert fit.aicc == pytest.approx(expected.aicc, abs=1e-3)
    assert fit.alpha == pytest.approx(expected.params["smoothing_level"], abs=1e-3)
    ahead = expected.simulate(28, anchor="end", repetitions=1, random_errors=np.zeros((28, 1)))
    assert np.allclose(fit.paths(np.zeros((28, 1)))[:, 0], ahead, rtol=1e-3)


def test_ets_paths_are_its_own_recursion():
    # A path continues the history: fed back as data, its one-step errors are the errors it was drawn with.
    from toolkit.forecast.ets import _one_step_errors, fit_ets, start_states

    y = _seasonal_days(300, 7, seed=4)
    fit = fit_ets(y, 7, damped_trend=True)
    surprises = np.random.default_rng(3).normal(0, 25, size=(21, 1))
    path = fit.paths(surprises)[:, 0]
    level, trend, seasons = start_states(y, 7, True)
    errors = _one_step_errors(np.concatenate([y, path]), fit.alpha, fit.beta, fit.gamma, fit.phi, level, trend,
                              seasons)[0]
    assert np.allclose(errors[-21:], surprises[:, 0])


@pytest.mark.parametrize("method", ["ets", "theta"])
def test_smoothing_methods_follow_the_level_with_seeded_paths(method):
    rng = np.random.default_rng(2)
    days = pd.date_range("2025-01-06", periods=210, freq="D")
    weekly = np.tile([1.2, 1.0, 1.0, 1.0, 1.3, 0.7, 0.8], 30)
    y = np.where(np.arange(210) < 170, 500.0, 300.0) * weekly + rng.normal(0, 15, 210)
    history = pd.DataFrame({"ds": days, "y": y})
    history.loc[100, "y"] = np.nan  # an unknown day
    point, paths = SMOOTHING[method](history, 28, 7, 200, 11)
    again = SMOOTHING[method](history, 28, 7, 200, 11)
    assert paths.shape == (28, 200) and np.array_equal(paths, again[1]) and np.array_equal(point, again[0])
    assert point.mean() == pytest.approx(300 * weekly.mean(), rel=0.1)
    # the spread of a level that may wander grows with the horizon
    spread = paths.std(axis=1)
    assert spread[-7:].mean() > spread[:7].mean()
