"""One forecast from one method: Prophet, ETS, Theta or a baseline, as a point forecast plus sample paths.

Every method returns *raw* paths; :func:`finish` then applies what the toolkit
adds on top, in this order: widen or narrow the spread around the point
forecast by the calibration factors, set closed weekdays to exactly zero, and
clip at zero flows that cannot be negative (keeping each week's total).
Quantiles are always taken from the finished paths, so intervals, paths and their sums agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from toolkit.forecast.baselines import BASELINES, baseline_forecast
from toolkit.forecast.engine import fit_together
from toolkit.forecast.settings import ForecastSettings
from toolkit.forecast.smoothing import ets_forecast, theta_forecast
from toolkit.forecast.stan_io import FastJsonModel, quiet_logging

if TYPE_CHECKING:
    from prophet import Prophet

#: The exponential smoothing candidates (see :mod:`.smoothing`).
SMOOTHING = {"ets": ets_forecast, "theta": theta_forecast}

__all__ = ["SMOOTHING", "SeasonalFeatures", "block_level", "clipped_keeping_totals", "combine", "finish", "fit_prophet", "forecast_with", "interval", "load_methods", "new_prophet",
           "prophet_forecast", "steady_level", "training_rows"]


@cache
def _holiday_names(country: str, years: tuple[int, ...]) -> tuple[str, ...]:
    """The names of ``country``'s holidays in ``years``, in Prophet's order (what a fit on them models)."""
    from prophet.make_holidays import make_holidays_df

    return tuple(make_holidays_df(year_list=list(years), country=country)["holiday"].unique())


@cache
def _checked_country(country: str) -> str:
    """``country`` once checked by Prophet's ``add_country_holidays`` (its holidays' names are valid).

    The check builds every holiday of the country (a fifth of a backtest fit's
    own time); it depends on the country alone, so it is done once a process.
    """
    from prophet import Prophet

    Prophet().add_country_holidays(country_name=country)
    return country


#: Feature tables built in this process, by grid and model configuration (see :class:`SeasonalFeatures`).
_BUILT: dict[tuple, tuple] = {}

#: Most feature tables kept in a process (a table of three years of days is about half a megabyte).
_BUILT_MOST = 16


class SeasonalFeatures:
    """Prophet's regression features (seasonalities, holidays) of a series' dates, built once.

    A series is fitted on a rolling origin several times and once more on its
    whole history, always on dates of the same grid. The features of a date
    depend on the date alone, so they are built once for the whole grid (the
    history and the horizon) per model configuration and set of holidays, and
    each fit and prediction takes its rows: building them, holidays above
    all, was about half of every Prophet fit. The series of a run mostly
    share one grid, so the tables are kept for the process (the last
    ``_BUILT_MOST``) and every series on the same grid takes its rows from
    the same table. The holidays are those Prophet would use: the ones of the
    training years, fixed at the fit (as Prophet fixes them for its
    predictions), so the numbers are Prophet's own.
    """

    def __init__(self, dates: pd.DatetimeIndex) -> None:
        self.dates = pd.DatetimeIndex(dates)
        self._grid = self.dates.asi8.tobytes()
        self._fitted: dict[tuple, Prophet] = {}

    @staticmethod
    def _fit_key(train: pd.DataFrame, settings: ForecastSettings) -> tuple:
        return (repr(settings), train["ds"].to_numpy().tobytes(), train["y"].to_numpy(dtype=float).tobytes())

    def prefit(self, fits: Sequence[tuple[pd.DataFrame, ForecastSettings, tuple[int, ...]]]) -> None:
        """Fit Prophet on each ``(history, settings, closed)`` together and keep the models for :func:`fit_prophet`.

        A series' backtest windows and its final fit are solved in one batched
        call (:mod:`.engine`) rather than one by one; :func:`fit_prophet` then
        takes the model fitted on exactly its training rows and settings, once.
        A fit that failed here is simply not kept: :func:`fit_prophet` fits it
        alone and raises Prophet's own error.
        """
        trainings = {self._fit_key(train, settings): (train, settings)
                     for train, settings in ((training_rows(history, closed), settings)
                                             for history, settings, closed in fits)}
        try:
            fitted = fit_together({key: train for key, (train, _) in trainings.items()},
                                  lambda key: new_prophet(trainings[key][1], self))
        except Exception:  # nothing kept: each fit is then done alone and raises where it fails
            return
        self._fitted.update(fitted)

    def take_fitted(self, train: pd.DataFrame, settings: ForecastSettings) -> Prophet | None:
        """The model :meth:`prefit` fitted on ``train`` with ``settings``, handed out once; else ``None``."""
        return self._fitted.pop(self._fit_key(train, settings), None)

    @staticmethod
    def _configuration(model: Prophet) -> tuple:
        seasonalities = tuple(sorted((name, props["period"], props["fourier_order"], props["prior_scale"],
                                      props["mode"], props["condition_name"])
                                     for name, props in model.seasonalities.items()))
        return (seasonalities, model.country_holidays, model.holidays_prior_scale, model.holidays_mode,
                None if model.train_holiday_names is None else tuple(model.train_holiday_names))

    def attach(self, model: Prophet) -> None:
        """Serve ``model``'s features from the grid's (built on first use); other dates as Prophet would."""
        build = model.make_all_seasonality_features

        def features(df: pd.DataFrame) -> tuple:
            rows = self.dates.get_indexer(pd.DatetimeIndex(df["ds"]))
            if (rows < 0).any() or model.extra_regressors or model.holidays is not None:
                return build(df)
            if model.train_holiday_names is None and model.country_holidays:  # the fit: its years' holidays
                years = tuple(sorted(set(pd.DatetimeIndex(df["ds"]).year)))
                model.train_holiday_names = pd.Series(_holiday_names(model.country_holidays, years))
            key = (self._grid, self._configuration(model))
            if key not in _BUILT:
                while len(_BUILT) >= _BUILT_MOST:
                    del _BUILT[next(iter(_BUILT))]
                _BUILT[key] = build(pd.DataFrame({"ds": self.dates}))
            table, priors, components, modes = _BUILT[key]
            return (table.iloc[rows].reset_index(drop=True), list(priors), components.copy(),
                    {mode: list(names) for mode, names in modes.items()})

        model.make_all_seasonality_features = features


def training_rows(history: pd.DataFrame, closed: tuple[int, ...] = ()) -> pd.DataFrame:
    """The rows (``ds, y``) Prophet is fitted on: closed weekdays that are zero are left out.

    Prophet has no notion of a closed day and would otherwise bend its weekly
    pattern towards them (their forecast is set to zero in :func:`finish`).
    """
    train = history[["ds", "y"]]
    if closed:
        train = train[~(train["ds"].dt.day_of_week.isin(closed) & (train["y"] == 0))]
    return train


def new_prophet(settings: ForecastSettings, features: SeasonalFeatures | None = None) -> Prophet:
    """An unfitted Prophet with the toolkit's settings.

    Holidays of ``settings.holiday_country`` are added for daily series.
    ``yearly="auto"`` leaves the choice to Prophet, which turns yearly
    seasonality on only with at least two years of history. ``features``
    serves the regression features of the series' grid, built once for all
    its fits.
    """
    quiet_logging()  # before Prophet's import-time plotly notice
    from prophet import Prophet  # imported here: reading a stored forecast does not need it

    model = Prophet(yearly_seasonality=settings.yearly, interval_width=settings.interval_width,
                    uncertainty_samples=settings.uncertainty_samples, **settings.prophet_kwargs)
    if settings.holiday_country and settings.freq == "D":
        _checked_country(settings.holiday_country)
        model.country_holidays = settings.holiday_country
    model.stan_backend.model = FastJsonModel(model.stan_backend.model)
    if features is not None:
        features.attach(model)
    return model


def fit_prophet(history: pd.DataFrame, settings: ForecastSettings,
                closed: tuple[int, ...] = (), features: SeasonalFeatures | None = None) -> Prophet:
    """Fit one Prophet model to a series (``ds, y``) with the toolkit's settings.

    The model comes from ``features`` when :meth:`SeasonalFeatures.prefit`
    fitted it with the series' other fits; otherwise it is fitted now, by the
    batched engine (:mod:`.engine`: prophet-batch's exact MAP, Stan where that
    does not apply), and by Stan when the engine fails, so that a fit that
    cannot be done raises Prophet's own error. See :func:`training_rows` and
    :func:`new_prophet` for what is fitted.
    """
    train = training_rows(history, closed)
    model = features.take_fitted(train, settings) if features is not None else None
    if model is None:
        model = fit_together({0: train}, lambda _: new_prophet(settings, features)).get(0)
    return model if model is not None else new_prophet(settings, features).fit(train)


def prophet_forecast(model: Prophet, dates: pd.DatetimeIndex, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Prophet's point forecast (``yhat``) and its sample paths over ``dates``.

    Prophet draws from NumPy's global generator; it is seeded here and restored
    afterwards. The paths are exactly the draws ``Prophet.predict`` takes its
    interval from, so with a factor of 1 and nothing clipped the toolkit's
    interval equals Prophet's own.

    Both the paths and the point need ``dates`` set up (scaled time) and
    their seasonality and holiday features, which Prophet would build once
    per call (about a tenth of a whole series' forecast): they are built once
    and handed to both calls. They depend on the dates alone, so the numbers
    are Prophet's to the bit. The point is Prophet's ``yhat`` computed as
    ``predict`` computes it (trend times one plus the multiplicative terms,
    plus the additive terms) without the table of every component that
    ``predict`` builds around it (tested equal to ``predict``).
    """
    future = pd.DataFrame({"ds": dates})
    prepared = model.setup_dataframe(future.copy())
    features = model.make_all_seasonality_features(prepared)
    model.make_all_seasonality_features = lambda df: features
    if not model.extra_regressors:  # else each call sets up its own regressor draws
        model.setup_dataframe = lambda df, initialize_scales=False: prepared.copy()
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        paths = model.predictive_samples(future)["yhat"]
        point = _point(model, prepared, features)
    finally:
        np.random.set_state(state)
        del model.make_all_seasonality_features
        model.__dict__.pop("setup_dataframe", None)
    return point, np.asarray(paths, dtype=float)


def _point(model: Prophet, prepared: pd.DataFrame, features: tuple) -> np.ndarray:
    """Prophet's ``yhat`` on ``prepared`` dates with their ``features``, by ``Prophet.predict``'s arithmetic."""
    table, _, components, _ = features
    values, beta = table.to_numpy(), model.params["beta"]

    def terms(name: str) -> np.ndarray:
        return np.nanmean(np.matmul(values, (beta * components[name].to_numpy()).T), axis=1)

    trend = np.asarray(model.predict_trend(prepared), dtype=float)
    return trend * (1 + terms("multiplicative_terms")) + terms("additive_terms") * model.y_scale


def load_methods() -> None:
    """Import what every method needs and load ETS's compiled recursion, in this process.

    A local pool's workers are forked from the process that starts them and
    inherit what it holds: loaded here once, not once in every worker of every
    run (about a second of CPU each: numba and ETS's compiled code, the
    statsmodels helpers of Theta).
    """
    import statsmodels.tsa.seasonal  # noqa: F401
    import statsmodels.tsa.stattools  # noqa: F401

    from toolkit.forecast.ets import load_compiled

    load_compiled()


def forecast_with(method: str, history: pd.DataFrame, dates: pd.DatetimeIndex,
                  settings: ForecastSettings, closed: tuple[int, ...], seed: int,
                  features: SeasonalFeatures | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Raw point forecast and paths of ``method`` (one of ``MODELS``); may raise.

    ``features``: Prophet's features of a grid holding the history and ``dates``.
    """
    if method == "prophet":
        return prophet_forecast(fit_prophet(history, settings, closed, features), dates, seed)
    if method in SMOOTHING:
        return SMOOTHING[method](history, len(dates), settings.season, settings.uncertainty_samples, seed)
    if method in BASELINES:
        return baseline_forecast(history, dates, method, settings.season,
                                 settings.uncertainty_samples, np.random.default_rng(seed),
                                 weeks=settings.baseline_weeks, closed=closed)
    raise ValueError(f"unknown forecasting method {method!r}")


def combine(forecasts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The median of several methods' raw forecasts: point by point, and path by path per draw.

    Draw ``k`` of the median is the median of every method's draw ``k``, so
    sums over dates and series stay draws of one scenario. With three or
    more members the median leaves out the one that strays on a given day (a
    level shift one method followed and the others did not); of two it is
    their mean. On the benchmark's windows it beat the inverse-error weighted
    mean on CDNOW (total 0.443 vs 0.456 MASE, repeat 0.551 vs 0.583) and the
    sample shop, and lost a little on Superstore (1.376 vs 1.358). Combining
    draws of independent methods narrows the spread; the calibration (scored
    on the combination's own backtest windows) widens it back.
    """
    points, paths = zip(*forecasts)
    return np.median(points, axis=0), np.median(paths, axis=0)


def block_level(deviation: np.ndarray, open_days: np.ndarray, block: int) -> np.ndarray:
    """Each path's mean deviation over the open days of its block of ``block`` periods, per period.

    ``deviation`` is paths minus point (periods x draws); blocks run from the
    first period on. The level is zero on closed days, so the sum of a
    block's deviations over its open days is exactly its level times their
    number: scaling the level scales the path's block totals, and nothing
    else does.
    """
    weights = np.asarray(open_days, dtype=float)
    starts = np.arange(0, len(deviation), block)
    if not len(starts):
        return np.zeros_like(deviation)
    sums = np.add.reduceat(deviation * weights[:, None], starts, axis=0)
    counts = np.add.reduceat(weights, starts)
    means = sums / np.maximum(counts, 1.0)[:, None]
    return np.repeat(means, np.diff(np.append(starts, len(deviation))), axis=0) * weights[:, None]


def steady_level(level: np.ndarray, after: int) -> np.ndarray:
    """``level`` (periods x draws) with its spread across draws held, from period ``after`` on, at
    the largest it reached before.

    A model whose level is a random walk (ETS, Theta) lets the spread of
    its totals grow without bound; the backtest checks it only over its
    windows. Beyond them each period's level is shrunk towards the point
    (the same share in every draw, so a path keeps its shape and its rank)
    until its spread is no larger than within them: the level is assumed
    to wander no further than was measured.
    """
    if len(level) <= after or after < 1:
        return level
    spread = level.std(axis=1)
    reached = spread[:after].max()
    shrink = np.divide(reached, spread, out=np.ones_like(spread), where=spread > reached)
    shrink[:after] = 1.0
    return level * shrink[:, None]


def clipped_keeping_totals(paths: np.ndarray, block: int) -> np.ndarray:
    """``paths`` clipped at zero, each block's other days lowered by what the clip added.

    Raising a path's negative days to zero adds money to its totals that no
    model forecast, most on lumpy flows with a wide day-to-day spread (card
    settlements bunched on Mondays), and it adds up over a cash horizon.
    Taking the added amount back from
    the block's positive days, in proportion, keeps every block total at its
    unclipped value (zero when that is negative), so clipping does not bias
    the balance.
    """
    clipped = np.maximum(paths, 0.0)
    starts = np.arange(0, len(paths), block)
    if not len(starts):
        return clipped
    added = np.add.reduceat(clipped - paths, starts, axis=0)
    positive = np.add.reduceat(clipped, starts, axis=0)
    keep = np.clip(1.0 - np.divide(added, positive, out=np.zeros_like(added), where=positive > 0), 0.0, 1.0)
    return clipped * np.repeat(keep, np.diff(np.append(starts, len(paths))), axis=0)


def finish(point: np.ndarray, paths: np.ndarray, factor: float, closed_mask: np.ndarray,
           clip: bool, level_factor: float | None = None, block: int = 7,
           level_horizon: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Calibrate the spread, zero closed days and clip at zero (see the module docstring).

    Without ``level_factor`` and ``level_horizon`` every path's distance from
    the point is scaled by ``factor``. With them, the distance is split into
    its level (the path's mean deviation over each block of ``block``
    periods, see :func:`block_level`) and the day-to-day rest: the level is
    scaled by ``level_factor`` (what weekly and longer totals depend on) and
    held from period ``level_horizon`` on (see :func:`steady_level`), the
    rest scaled by ``factor``. A path's level is correlated from block to
    block (a wandering level), its rest is not, so one factor fitted on daily
    coverage would blow up or shrink the spread of totals as well.
    """
    deviation = paths - point[:, None]
    if level_factor is None and level_horizon is None:
        paths = point[:, None] + factor * deviation
    else:
        level = block_level(deviation, ~closed_mask, block)
        rest = deviation - level
        if level_horizon is not None:
            level = steady_level(level, level_horizon)
        paths = point[:, None] + (factor if level_factor is None else level_factor) * level + factor * rest
    point = np.where(closed_mask, 0.0, point)
    paths = np.where(closed_mask[:, None], 0.0, paths)
    if clip:
        point, paths = np.maximum(point, 0.0), clipped_keeping_totals(paths, block)
    return point, paths


def interval(paths: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``width`` interval of the paths, per period (Prophet's percentiles)."""
    lower, upper = np.percentile(paths, [100 * (1 - width) / 2, 100 * (1 + width) / 2], axis=1)
    return lower, upper
