"""The batched Prophet engine (prophet-batch) against Stan: at least as good a fit, the same numbers every time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prophet import Prophet

from toolkit.forecast.backtest import backtest_series
from toolkit.forecast.engine import fit_together, solved_by_stan
from toolkit.forecast.methods import (
    SeasonalFeatures,
    fit_prophet,
    new_prophet,
    prophet_forecast,
    training_rows,
)
from toolkit.forecast.settings import ForecastSettings, future_dates, series_seed

CDNOW = Path(__file__).parent / "data" / "cdnow" / "CDNOW_sample.txt"


@pytest.fixture(scope="module")
def revenue() -> pd.DataFrame:
    """CDNOW's daily revenue (a real export: 18 months, spiky, quiet days at zero)."""
    raw = pd.read_csv(CDNOW, sep=r"\s+", header=None, names=["line", "customer", "date", "quantity", "amount"])
    daily = raw.groupby(pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"))["amount"].sum()
    daily = daily.reindex(pd.date_range(daily.index.min(), daily.index.max(), freq="D"), fill_value=0.0)
    return pd.DataFrame({"ds": daily.index, "y": daily.to_numpy()})


def _horizon(history: pd.DataFrame) -> pd.DatetimeIndex:
    return future_dates(history["ds"].iloc[-1], 90, "D")


@pytest.mark.parametrize("country", ["US", None])
def test_the_engine_fits_at_least_as_well_as_stan_and_forecasts_close_to_it(revenue, country):
    settings = ForecastSettings(holiday_country=country)
    engine = fit_prophet(revenue, settings)
    stan = new_prophet(settings).fit(training_rows(revenue))
    assert not solved_by_stan(engine) and solved_by_stan(stan)
    # Stan's L-BFGS stops short of the optimum (measured: 898.6 vs 902.5 with US holidays, 891.2 vs 895.5 without).
    assert engine.params["lp__"].item() >= stan.params["lp__"].item()
    engine_point, engine_paths = prophet_forecast(engine, _horizon(revenue), seed=7)
    stan_point, stan_paths = prophet_forecast(stan, _horizon(revenue), seed=7)
    level = revenue["y"].mean()
    # Measured: at most 6.1% (US holidays) and 3.8% (none) of the mean daily revenue apart.
    assert np.abs(engine_point - stan_point).max() <= 0.08 * level
    assert engine_paths.shape == stan_paths.shape
    # The 90-day total: measured 7.3% (US holidays) apart, the engine's the lower (a flatter trend).
    engine_total, stan_total = engine_paths.sum(axis=0).mean(), stan_paths.sum(axis=0).mean()
    assert abs(engine_total - stan_total) <= 0.10 * stan_total


def test_a_fit_gives_the_same_numbers_alone_twice_or_solved_with_others(revenue):
    settings = ForecastSettings()

    def make(_key):
        return new_prophet(settings)

    alone = fit_together({"all": revenue}, make)["all"]
    again = fit_together({"all": revenue}, make)["all"]
    shorter = revenue.iloc[:-60]
    together = fit_together({"short": shorter, "all": revenue, "scaled": revenue.assign(y=revenue["y"] * 3)},
                            make)
    for name in ("k", "m", "delta", "beta", "sigma_obs"):
        np.testing.assert_array_equal(alone.params[name], again.params[name])
        np.testing.assert_array_equal(alone.params[name], together["all"].params[name])
    assert not np.array_equal(together["short"].params["beta"], alone.params["beta"])
    point, paths = prophet_forecast(alone, _horizon(revenue), seed=3)
    point_again, paths_again = prophet_forecast(together["all"], _horizon(revenue), seed=3)
    np.testing.assert_array_equal(point, point_again)
    np.testing.assert_array_equal(paths, paths_again)


def test_backtest_windows_solved_together_equal_each_window_fitted_alone(revenue):
    settings = ForecastSettings(backtest_folds=3, uncertainty_samples=100, backtest_samples=100)
    history = revenue.iloc[-400:].reset_index(drop=True)
    features = SeasonalFeatures(pd.DatetimeIndex(history["ds"]).append(_horizon(history)))
    folds = backtest_series(history, settings, "cdnow", models=("prophet",), features=features)
    assert len(folds) == 3 and all(f.error is None for f in folds)
    for fold in folds:
        train = history[history["ds"] <= fold.cutoff]
        dates = pd.date_range(fold.cutoff + pd.Timedelta(days=1), periods=len(fold.actual))
        alone = fit_prophet(train, settings, features=SeasonalFeatures(pd.DatetimeIndex(history["ds"])))
        point, paths = prophet_forecast(alone, dates, series_seed(settings.seed, f"cdnow|fold{fold.fold}"))
        np.testing.assert_allclose(fold.raw_point, point, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fold.raw_paths, paths, rtol=1e-9, atol=1e-9)
    # The fit on the whole history was solved with the windows and is handed to the final fit, once.
    final = features.take_fitted(training_rows(history), settings)
    assert final is not None and not solved_by_stan(final)
    assert features.take_fitted(training_rows(history), settings) is None


def test_stan_fits_what_the_engine_does_not_solve(revenue):
    """Logistic growth is outside prophet-batch's solver: Stan fits it, with exactly Stan's result."""
    history = revenue.assign(cap=revenue["y"].max() * 1.5)

    def logistic(_key):
        return Prophet(growth="logistic", uncertainty_samples=0)

    model = fit_together({"logistic": history}, logistic)["logistic"]
    stock = logistic(None).fit(history)
    assert solved_by_stan(model)
    for name in ("k", "m", "delta", "beta", "sigma_obs"):
        np.testing.assert_array_equal(model.params[name], stock.params[name])


def test_a_fit_the_engine_cannot_do_raises_prophets_own_error():
    settings = ForecastSettings(holiday_country=None)
    one_row = pd.DataFrame({"ds": pd.to_datetime(["2025-01-01"]), "y": [3.0]})
    assert fit_together({0: one_row}, lambda _: new_prophet(settings)) == {}
    with pytest.raises(ValueError, match="less than 2 non-NaN rows"):
        fit_prophet(one_row, settings)
