"""Who will buy again, how often, and for how much: BG/NBD, Pareto/NBD and Gamma-Gamma.

The buy-till-you-die models of the repeat-buying literature: each customer buys at their own steady rate while
active and may quietly drop out (BG/NBD: after a purchase; Pareto/NBD: at any
time). From a customer's frequency, recency and age alone they give the
probability the customer is still active, the expected purchases over the next
days, and -- with the Gamma-Gamma model of spend per purchase -- the customer's
lifetime value.

The BG/NBD and the Gamma-Gamma are fitted and predicted in closed form
(:mod:`toolkit.opportunities.bgnbd`: pymc-marketing's formulas and default
priors, its MAP found with SciPy, its numbers to the optimiser's tolerance)
without importing pymc, which cost 2-3 s in every process that fitted or
predicted. The Pareto/NBD, whose likelihood needs more care, is
pymc-marketing's own ``ParetoNBDModel`` (pymc is imported then, and pytensor's
compiled C is cached in the project's ``.cache/pytensor`` unless the user chose
another place).

A fit can be wrong without failing: on data with no sign of customers dropping
out (Superstore's four years, where 792 of 804 customers come back) the drop-out
parameters run to the boundary (a = 1e-6) and every customer, however long
silent, is "100% likely active". The modified BG/NBD and the Pareto/NBD land on
the same boundary there (measured), so a better-identified model does not help:
the data hold no drop-out to learn. ``RepurchaseModel`` checks every fit
(:func:`fit_problem`) and, when it is degenerate, serves a BG/NBD whose drop-out
is an assumption stated in its notes (``ASSUMED_DROPOUT``), so that silence
still lowers a frequent buyer's chance of being active.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from toolkit.notes import Note
from toolkit.opportunities import bgnbd
from toolkit.opportunities.segments import OpportunityError, purchases, require_columns

__all__ = [
    "ASSUMED_DROPOUT",
    "HoldoutCheck",
    "RepurchaseModel",
    "fit_problem",
    "holdout_check",
    "no_predictions",
    "repeat_customers",
    "summary_from_orders",
]

#: Length of one model time unit in days.
TIME_UNITS = {"D": 1, "W": 7}
#: A month in days, as pymc-marketing's customer_lifetime_value counts it in each time unit.
_MONTH_DAYS = {"D": 30.0, "W": 4.345 * 7}
_MODELS = ("bgnbd", "pareto_nbd")
_MODEL_NAMES = {"bgnbd": "BG/NBD", "pareto_nbd": "Pareto/NBD"}
#: The drop-out served when the data show none: after each purchase a customer stops buying with
#: probability 0.15 on average, varying between customers as Beta(a=0.6, b=3.4) (a + b = 4). It
#: lies among the fits of data that do show drop-out -- the published CDNOW fit (0.25, a + b = 3.2),
#: the full CDNOW master (0.19) and the sample shop's planted 1/7 (a + b = 7) -- on the cautious side.
ASSUMED_DROPOUT = 0.15
ASSUMED_DROPOUT_SPREAD = 4.0
#: A prior this narrow holds the drop-out where it is put, whatever the likelihood prefers.
_ASSUMPTION_WEIGHT = 200_000
#: The fewest customers with a repeat purchase day (and its spend) the models can be fitted on.
MIN_REPEAT_CUSTOMERS = 2
#: The columns of :meth:`RepurchaseModel.predict` with the spend model.
PREDICTION_COLUMNS = ("customer_id", "probability_alive", "expected_purchases", "expected_spend",
                      "expected_value", "customer_value", "window_start_days", "window_end_days")
#: Drop-out parameters below this are on the boundary: drop-out never happens.
_BOUNDARY = 1e-3
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _unit_days(time_unit: str) -> int:
    if time_unit not in TIME_UNITS:
        raise OpportunityError(f"time_unit must be one of {sorted(TIME_UNITS)}, got {time_unit!r}")
    return TIME_UNITS[time_unit]


def summary_from_orders(orders: pd.DataFrame, observation_end: str | pd.Timestamp,
                        calibration_end: str | pd.Timestamp | None = None,
                        time_unit: str = "D") -> pd.DataFrame:
    """Frequency, recency, age and mean repeat spend per customer, as the models need them.

    Purchases are completed orders with a positive amount; all of a customer's
    purchases on one day count as one purchase (the convention of the repeat-
    buying papers), so ``frequency`` is the number of distinct purchase days
    after the first.

    Parameters
    ----------
    orders : canonical orders.
    observation_end : the last day observed (inclusive).
    calibration_end : if given, the models' data ends here and the days after
        it up to ``observation_end`` are a holdout: only customers who first
        bought by ``calibration_end`` are kept and two more columns say what
        they did next, ``frequency_holdout`` (purchase days in the holdout) and
        ``duration_holdout`` (the holdout's length).
    time_unit : "D" (days) or "W" (weeks) for recency, T and the holdout's length.

    Returns
    -------
    DataFrame with customer_id, frequency, recency (first to last purchase),
    T (first purchase to the end of the period) and monetary_value (mean spend
    per repeat purchase day, 0 for customers who never came back).
    """
    unit = _unit_days(time_unit)
    observation_end = pd.Timestamp(observation_end).normalize()
    period_end = observation_end if calibration_end is None else pd.Timestamp(calibration_end).normalize()
    if period_end > observation_end:
        raise OpportunityError("calibration_end must not be after observation_end")
    bought = purchases(orders, observation_end)
    daily = (bought.assign(day=bought["ts"].dt.normalize())
             .groupby(["customer_id", "day"], as_index=False)["amount"].sum())
    calibration = daily[daily["day"] <= period_end]
    if calibration.empty:
        raise OpportunityError(f"no completed purchases up to {period_end.date()}")
    per_customer = calibration.groupby("customer_id")["day"].agg(["min", "max", "size"])
    first = calibration["customer_id"].map(per_customer["min"])
    repeat_spend = calibration[calibration["day"] > first].groupby("customer_id")["amount"].mean()
    summary = pd.DataFrame({
        "customer_id": per_customer.index,
        "frequency": (per_customer["size"] - 1).to_numpy(),
        "recency": (per_customer["max"] - per_customer["min"]).dt.days.to_numpy() / unit,
        "T": (period_end - per_customer["min"]).dt.days.to_numpy() / unit,
        "monetary_value": repeat_spend.reindex(per_customer.index).fillna(0.0).to_numpy(),
    })
    if calibration_end is not None:
        holdout = daily[daily["day"] > period_end].groupby("customer_id").size()
        summary["frequency_holdout"] = holdout.reindex(summary["customer_id"]).fillna(0).astype(
            "int64").to_numpy()
        summary["duration_holdout"] = (observation_end - period_end).days / unit
    return summary


def repeat_customers(summary: pd.DataFrame) -> int:
    """Customers of a :func:`summary_from_orders` table who came back and spent: what the models learn from.

    Both the purchase and the spend model need at least ``MIN_REPEAT_CUSTOMERS`` of them.
    """
    return int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum())


def no_predictions() -> pd.DataFrame:
    """:meth:`RepurchaseModel.predict`'s columns with no rows, for a shop no model could be fitted on."""
    return pd.DataFrame({c: pd.Series(dtype="str" if c == "customer_id" else "float64")
                         for c in PREDICTION_COLUMNS})


def _clv_library() -> SimpleNamespace:
    """Import pymc-marketing's Pareto/NBD, keeping pytensor's compile cache in the project."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "base_compiledir" not in flags and (_PROJECT_ROOT / "pyproject.toml").exists():
        cache = _PROJECT_ROOT / ".cache" / "pytensor"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["PYTENSOR_FLAGS"] = ",".join(filter(None, [flags, f"base_compiledir={cache}"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # arviz announces its refactor on import
        from pymc_extras.prior import Prior
        from pymc_marketing.clv import ParetoNBDModel
    return SimpleNamespace(Prior=Prior, ParetoNBDModel=ParetoNBDModel)


def _plain_idata(idata) -> dict:
    """An InferenceData as plain dicts of arrays (xarray's ``to_dict``), which unpickle without arviz."""
    return {"attrs": dict(idata.attrs), "groups": {group: idata[group].to_dict(data="array")
                                                   for group in idata.groups()}}


def _idata(plain: dict):
    """The InferenceData :func:`_plain_idata` took apart."""
    import arviz as az
    import xarray as xr

    return az.InferenceData(attrs=plain["attrs"], **{group: xr.Dataset.from_dict(data)
                                                      for group, data in plain["groups"].items()})


def _point(values) -> np.ndarray:
    """The MAP point of a (chain, draw, customer_id) prediction as a 1-d array."""
    return np.asarray(values.mean(("chain", "draw")))


#: BG/NBD priors that pin the drop-out at ``ASSUMED_DROPOUT``; the purchase rate keeps the defaults'.
ASSUMED_DROPOUT_PRIORS: dict[str, bgnbd.Prior] = {
    "alpha": bgnbd.DEFAULT_PRIORS["alpha"],
    "phi_dropout": ("Beta", {"alpha": ASSUMED_DROPOUT * _ASSUMPTION_WEIGHT,
                             "beta": (1 - ASSUMED_DROPOUT) * _ASSUMPTION_WEIGHT}),
    "kappa_dropout": ("Gamma", {"mu": ASSUMED_DROPOUT_SPREAD, "sigma": ASSUMED_DROPOUT_SPREAD / 100}),
    "r": bgnbd.DEFAULT_PRIORS["r"],
}


def fit_problem(params: dict[str, float], summary: pd.DataFrame, probability_alive: np.ndarray,
                time_unit: str = "D") -> str | None:
    """Why a fitted purchase model cannot be trusted, in words, or None when nothing is wrong.

    Three signs of a degenerate fit, checked in turn: drop-out parameters on the
    boundary (BG/NBD's a or b, Pareto/NBD's s, near 0), an absurd purchase rate
    (r above 100 or alpha above 100 times the longest customer age, where the
    rate's spread between customers has vanished), and frequent buyers who went
    silent -- at least 2 repeat purchases, then no purchase for over three times
    their own usual gap and over 90 days -- still almost all (90%) at least 99%
    likely active; it takes 10 such customers to judge.
    """
    dropout = {k: params[k] for k in ("a", "b", "s") if k in params}
    low = {k: v for k, v in dropout.items() if v < _BOUNDARY}
    if low:
        values = ", ".join(f"{k} = {v:.2g}" for k, v in low.items())
        return f"its drop-out parameters sit on the boundary ({values})"
    if params["r"] > 100 or params["alpha"] > 100 * float(summary["T"].max()):
        return f"its purchase-rate parameters are absurd (r = {params['r']:.3g}, alpha = {params['alpha']:.3g})"
    frequency = summary["frequency"].to_numpy()
    silence = (summary["T"] - summary["recency"]).to_numpy()
    usual_gap = summary["recency"].to_numpy() / np.maximum(frequency, 1)
    lapsed = (frequency >= 2) & (silence > 3 * usual_gap) & (silence > 90 / TIME_UNITS[time_unit])
    if lapsed.sum() >= 10 and (np.asarray(probability_alive)[lapsed] >= 0.99).mean() >= 0.9:
        return (f"it calls {int(lapsed.sum()):,} frequent buyers who went silent for over three times "
                f"their usual gap at least 99% likely active")
    return None


class RepurchaseModel:
    """Repeat purchases (BG/NBD or Pareto/NBD) and spend per purchase (Gamma-Gamma).

    Parameters
    ----------
    model : "bgnbd" or "pareto_nbd".
    spend_model : also fit the Gamma-Gamma model of spend per purchase
        (needed for expected spend and customer value).
    discount_rate : annual discount rate for customer value (``Config.discount_rate``).
    time_unit : the unit of the summary's recency and T, "D" or "W".
    seed : seed of pymc's optimiser for the Pareto/NBD (the closed-form fits draw nothing at random).
    maximum_likelihood : flat (HalfFlat) priors, so the MAP fit is the
        maximum-likelihood fit the papers report; otherwise pymc-marketing's
        weakly informative default priors, which steady fits on little data.
    assume_dropout_when_degenerate : when the fit is degenerate (see
        :func:`fit_problem`), serve a BG/NBD with the drop-out of
        ``ASSUMED_DROPOUT`` instead, and say so in ``notes_``.

    Attributes
    ----------
    params_ : dict of fitted parameters: r, alpha, a, b (BG/NBD) or r, alpha, s, beta
        (Pareto/NBD), and p, q, v for the spend model (v is the papers' gamma).
    model_name_ : the purchase model served, e.g. "BG/NBD" or "BG/NBD with assumed drop-out".
    fit_problem_ : why the first fit was doubtful (None when it was not).
    notes_ : list of ``Note`` about the fit, for the pages.
    summary_ : the summary the model was fitted on.
    """

    def __init__(self, model: str = "bgnbd", spend_model: bool = True, discount_rate: float = 0.10,
                 time_unit: str = "D", seed: int = 42, maximum_likelihood: bool = False,
                 assume_dropout_when_degenerate: bool = True) -> None:
        if model not in _MODELS:
            raise OpportunityError(f"model must be one of {_MODELS}, got {model!r}")
        _unit_days(time_unit)
        self.model = model
        self.spend_model = spend_model
        self.discount_rate = discount_rate
        self.time_unit = time_unit
        self.seed = seed
        self.maximum_likelihood = maximum_likelihood
        self.assume_dropout_when_degenerate = assume_dropout_when_degenerate

    def fit(self, summary: pd.DataFrame) -> RepurchaseModel:
        """Fit the purchase model (and the spend model) on a :func:`summary_from_orders` table."""
        require_columns(summary, ("customer_id", "frequency", "recency", "T"), "the summary")
        if (summary["frequency"] > 0).sum() < MIN_REPEAT_CUSTOMERS:
            raise OpportunityError("too few repeat customers to fit a repurchase model")
        self.summary_ = summary.reset_index(drop=True)
        self.notes_: list[Note] = []
        self.model_name_ = _MODEL_NAMES[self.model]
        self._pareto = None
        if self.model == "bgnbd":
            flat = {n: bgnbd.FLAT for n in ("alpha", "a", "b", "r")} if self.maximum_likelihood else None
            self.params_ = bgnbd.fit_bgnbd(*self._rfm(self.summary_), flat)
        else:
            self._pareto = self._fit_pareto(self.summary_)
            self.params_ = {name: float(self._pareto.fit_result[name].mean())
                            for name in self._pareto.fit_result.data_vars}
        self.fit_problem_ = fit_problem(self.params_, summary, self.probability_alive().to_numpy(),
                                        self.time_unit)
        if self.fit_problem_ is not None and self.assume_dropout_when_degenerate:
            self._pareto = None
            self.params_ = bgnbd.fit_bgnbd(*self._rfm(self.summary_), ASSUMED_DROPOUT_PRIORS)
            self.model_name_ = "BG/NBD with assumed drop-out"
            self.notes_.append(Note("repurchase", (
                f"The {_MODEL_NAMES[self.model]} fit is degenerate: {self.fit_problem_}. The data show "
                f"no sign of customers dropping out, so P(active) and expected purchases use an assumed "
                f"drop-out of {ASSUMED_DROPOUT:.0%} after each purchase, not one learned from the data."),
                "warning"))
            served = fit_problem(self.params_, summary, self.probability_alive().to_numpy(), self.time_unit)
            if served is not None:
                self.notes_.append(Note("repurchase", f"The {self.model_name_} is doubtful too: {served}.",
                                        "warning"))
        elif self.fit_problem_ is not None:
            self.notes_.append(Note("repurchase", f"The {self.model_name_} fit is degenerate: "
                                                  f"{self.fit_problem_}.", "warning"))
        if self.spend_model:
            require_columns(summary, ("monetary_value",), "the summary")
            repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
            if len(repeat) < MIN_REPEAT_CUSTOMERS:
                raise OpportunityError("too few repeat customers with spend to fit the spend model")
            self.params_.update(bgnbd.fit_gamma_gamma(repeat["frequency"], repeat["monetary_value"]))
        return self

    def _fit_pareto(self, data: pd.DataFrame):
        """pymc-marketing's Pareto/NBD, fitted by ``find_MAP``."""
        lib = _clv_library()
        flat = {n: lib.Prior("HalfFlat") for n in ("r", "alpha", "s", "beta")} if self.maximum_likelihood else None
        model = lib.ParetoNBDModel(model_config=flat)
        with warnings.catch_warnings():
            # the model is small: pytensor's note that it found no BLAS library does not matter
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            model.fit(data=data[["customer_id", "frequency", "recency", "T"]], method="map",
                      progressbar=False, seed=self.seed)
        return model

    @staticmethod
    def _rfm(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tuple(data[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))

    # A fitted model travels (pickle, the pipeline's result store) with its parameters; a Pareto/NBD
    # also with its fit's InferenceData taken apart into plain dicts and arrays: pymc models do not
    # pickle, and an InferenceData's pickle imports arviz (2 s) in whichever process reads the
    # scores. The Pareto/NBD is rebuilt on first use, so reading stored scores imports neither.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if state.get("_pareto") is not None:
            state["_pareto"] = _plain_idata(state["_pareto"].idata)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _pareto_model(self):
        """The fitted Pareto/NBD (None for a BG/NBD), rebuilt from its InferenceData after a pickle."""
        if isinstance(self._pareto, dict):
            self._pareto = _clv_library().ParetoNBDModel.build_from_idata(_idata(self._pareto))
        return self._pareto

    def _data(self, summary: pd.DataFrame | None) -> pd.DataFrame:
        if not hasattr(self, "params_"):
            raise OpportunityError("fit the repurchase model before predicting")
        data = self.summary_ if summary is None else summary.reset_index(drop=True)
        return data

    def _series(self, data: pd.DataFrame, values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(values, index=pd.Index(data["customer_id"], name="customer_id"), name=name)

    def probability_alive(self, summary: pd.DataFrame | None = None) -> pd.Series:
        """Probability each customer is still active (has not dropped out)."""
        data = self._data(summary)
        pareto = self._pareto_model()
        if pareto is None:
            alive = bgnbd.probability_alive(self.params_, *self._rfm(data))
        else:
            alive = _point(pareto.expected_probability_alive(data=data[["customer_id", "frequency", "recency",
                                                                         "T"]]))
        return self._series(data, alive, "probability_alive")

    def expected_purchases(self, days: float | Sequence[float],
                           summary: pd.DataFrame | None = None) -> pd.Series | pd.DataFrame:
        """Expected purchases (purchase days) of each customer over the next ``days`` days.

        With several horizons, a frame with one column per horizon from one
        call of the model: each customer appears once per horizon, as a row of
        its own (the model's arithmetic is row by row).
        """
        data = self._data(summary)
        horizons = np.atleast_1d(np.asarray(days, dtype=float)) / TIME_UNITS[self.time_unit]
        pareto = self._pareto_model()
        if pareto is None:
            x, t_x, T = (c[:, None] for c in self._rfm(data))
            expected = bgnbd.expected_purchases(self.params_, x, t_x, T, horizons[None, :])
        else:
            rows = data[["frequency", "recency", "T"]].iloc[np.tile(np.arange(len(data)), len(horizons))]
            rows = rows.assign(customer_id=np.arange(len(rows)), future_t=np.repeat(horizons, len(data)))
            expected = _point(pareto.expected_purchases(data=rows)).reshape(len(horizons), len(data)).T
        if np.ndim(days) == 0:
            return self._series(data, expected[:, 0], "expected_purchases")
        return pd.DataFrame(expected, index=pd.Index(data["customer_id"], name="customer_id"), columns=list(days))

    def expected_purchases_by_period(self, ends: Sequence[float],
                                     summary: pd.DataFrame | None = None) -> pd.DataFrame:
        """Expected purchases of each customer in each period, the periods ending ``ends`` days ahead.

        The first period starts now; each is the difference of :meth:`expected_purchases`
        at its end and at the end of the one before. One column per period, named by its end.
        """
        cumulative = self.expected_purchases(list(ends), summary)
        return pd.DataFrame(np.diff(cumulative.to_numpy(), axis=1, prepend=0.0), index=cumulative.index,
                            columns=cumulative.columns)

    def expected_spend(self, summary: pd.DataFrame | None = None) -> pd.Series:
        """Expected spend per purchase: the customer's own mean shrunk towards everyone's."""
        data = self._data(summary)
        if "p" not in self.params_:
            raise OpportunityError("expected spend needs the spend model: fit with spend_model=True")
        spend = bgnbd.expected_spend(self.params_, data["frequency"], data["monetary_value"])
        return self._series(data, np.asarray(spend), "expected_spend")

    def customer_value(self, days: int = 365, summary: pd.DataFrame | None = None,
                       discount_rate: float | None = None) -> pd.Series:
        """Discounted value of each customer's expected purchases over the next ``days`` days.

        Purchases are valued month by month at the expected spend per purchase
        and discounted at the monthly equivalent of the annual discount rate
        (the model's ``discount_rate`` unless another is given), as
        pymc-marketing's ``customer_lifetime_value`` does (a month is 30 days,
        or 4.345 weeks).
        """
        data = self._data(summary)
        spend = self.expected_spend(data).to_numpy()
        months = np.arange(1, max(1, round(days / 30)) + 1)
        annual = self.discount_rate if discount_rate is None else discount_rate
        monthly_rate = (1 + annual) ** (1 / 12) - 1
        by_month = self.expected_purchases_by_period(_MONTH_DAYS[self.time_unit] * months, data).to_numpy()
        value = (spend[:, None] * by_month / (1 + monthly_rate) ** months[None, :]).sum(axis=1)
        return self._series(data, value, "customer_value")

    def next_purchase_window(self, summary: pd.DataFrame | None = None,
                             coverage: float = 0.5) -> pd.DataFrame:
        """When each customer's next purchase is most likely, if they are still active.

        Given that a customer is active, their purchase rate follows
        Gamma(r + frequency, alpha + T) in both models, so the wait to the next
        purchase is Lomax distributed. The window is its central ``coverage``
        interval, in days after the end of the summary's period.
        """
        data = self._data(summary)
        unit = TIME_UNITS[self.time_unit]
        shape = self.params_["r"] + data["frequency"].to_numpy()
        scale = self.params_["alpha"] + data["T"].to_numpy()
        low, high = (1 - coverage) / 2, (1 + coverage) / 2

        def wait(q: float) -> np.ndarray:
            return scale * ((1 - q) ** (-1 / shape) - 1) * unit

        index = pd.Index(data["customer_id"], name="customer_id")
        return pd.DataFrame({"window_start_days": wait(low), "window_end_days": wait(high)},
                            index=index)

    def predict(self, days: int = 90, summary: pd.DataFrame | None = None) -> pd.DataFrame:
        """Everything per customer: P(alive), expected purchases and value over ``days``, window.

        Columns: customer_id, probability_alive, expected_purchases, and with the
        spend model expected_spend, expected_value (expected purchases x spend,
        undiscounted) and customer_value (discounted, over ``days``); then
        window_start_days and window_end_days (see :meth:`next_purchase_window`).
        """
        data = self._data(summary)
        parts = [self.probability_alive(data), self.expected_purchases(days, data)]
        if "p" in self.params_:
            spend = self.expected_spend(data)
            parts += [spend, (parts[1] * spend).rename("expected_value"),
                      self.customer_value(days, data)]
        parts.append(self.next_purchase_window(data))
        return pd.concat(parts, axis=1).reset_index()


def probability_alive_matrix(model: RepurchaseModel, recency_steps: int = 20) -> pd.DataFrame:
    """P(active) over repeat purchases (0 to the most seen) and time from first to last purchase.

    Every cell is a customer whose first purchase was as long ago as the
    longest-standing fitted customer's: ``frequency, recency, probability_alive``.
    The classic picture of a BG/NBD fit: who bought often but not lately has
    most likely dropped out.
    """
    summary = model.summary_
    age = float(summary["T"].max())
    frequency, recency = np.meshgrid(np.arange(int(summary["frequency"].max()) + 1),
                                     np.unique(np.round(np.linspace(0, age, recency_steps))),
                                     indexing="ij")
    grid = pd.DataFrame({"customer_id": np.arange(frequency.size), "frequency": frequency.ravel(),
                         "recency": recency.ravel(), "T": age, "monetary_value": 0.0})
    grid["probability_alive"] = model.probability_alive(grid).to_numpy()
    return grid[["frequency", "recency", "probability_alive"]]


@dataclass(frozen=True)
class HoldoutCheck:
    """Predicted against actual repeat purchases in a holdout period.

    ``customers`` has customer_id, predicted, actual and error (predicted - actual).
    """

    customers: pd.DataFrame
    predicted_total: float
    actual_total: int
    mae: float
    params: dict[str, float]


def holdout_check(orders: pd.DataFrame, calibration_end: str | pd.Timestamp,
                  observation_end: str | pd.Timestamp, model: str = "bgnbd",
                  time_unit: str = "D", maximum_likelihood: bool = False,
                  seed: int = 42) -> HoldoutCheck:
    """Fit on the calibration period and compare its forecast with the holdout's purchases.

    The error per customer is predicted minus actual repeat purchase days in the
    holdout; ``mae`` is its mean absolute value over customers.
    """
    summary = summary_from_orders(orders, observation_end, calibration_end, time_unit)
    fitted = RepurchaseModel(model=model, spend_model=False, time_unit=time_unit, seed=seed,
                             maximum_likelihood=maximum_likelihood).fit(summary)
    duration_days = float(summary["duration_holdout"].iloc[0]) * TIME_UNITS[time_unit]
    predicted = fitted.expected_purchases(duration_days).to_numpy()
    actual = summary["frequency_holdout"].to_numpy()
    customers = pd.DataFrame({"customer_id": summary["customer_id"], "predicted": predicted,
                              "actual": actual, "error": predicted - actual})
    return HoldoutCheck(customers=customers, predicted_total=float(predicted.sum()),
                        actual_total=int(actual.sum()), mae=float(np.abs(predicted - actual).mean()),
                        params=dict(fitted.params_))
