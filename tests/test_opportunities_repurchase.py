"""Repurchase models against the published CDNOW results and the sample shop's planted truth."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from toolkit import sample
from toolkit.opportunities import (OpportunityError, RepurchaseModel, fit_problem, holdout_check,
                                   summary_from_orders)

CDNOW = Path(__file__).resolve().parent / "data" / "cdnow"
CALIBRATION_END, OBSERVATION_END = "1997-09-30", "1998-06-30"

#: Fader, Hardie & Lee (2005) and Fader & Hardie (2013), on the 1/10 sample in weeks.
PAPER_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PAPER_PARETO = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
PAPER_SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}


def _relative_gap(fitted: dict, paper: dict) -> dict:
    return {k: abs(fitted[k] / v - 1) for k, v in paper.items()}


@pytest.fixture(scope="module")
def cdnow_orders() -> pd.DataFrame:
    """CDNOW_sample.txt as canonical-like orders: one completed order per transaction row."""
    raw = pd.read_csv(CDNOW / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["master_id", "customer_id", "date", "cds", "amount"],
                      dtype={"customer_id": "str", "date": "str"})
    return pd.DataFrame({
        "order_id": [f"T{i:05d}" for i in range(len(raw))],
        "customer_id": raw["customer_id"].astype(int).astype("str"),
        "ts": pd.to_datetime(raw["date"], format="%Y%m%d"),
        "amount": raw["amount"].astype(float),
        "quantity": raw["cds"].astype("int64"),
        "status": "completed",
    })


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_orders) -> pd.DataFrame:
    return summary_from_orders(cdnow_orders, OBSERVATION_END, CALIBRATION_END, time_unit="W")


@pytest.fixture(scope="module")
def cdnow_model(cdnow_summary) -> RepurchaseModel:
    return RepurchaseModel(time_unit="W", maximum_likelihood=True).fit(cdnow_summary)


def test_summary_from_raw_transactions_equals_the_published_summary(cdnow_summary):
    published = pd.read_csv(CDNOW / "cdnow_customers_summary_with_transactions.csv")
    ours = cdnow_summary.assign(id=cdnow_summary["customer_id"].astype(int)).sort_values("id")
    assert ours["id"].tolist() == published["ID"].tolist()  # all 2,357 customers, none extra
    np.testing.assert_array_equal(ours["frequency"], published["x"])
    # the published file rounds to 2 decimals
    np.testing.assert_allclose(ours["recency"], published["t_x"], atol=0.0051)
    np.testing.assert_allclose(ours["T"], published["T"], atol=0.0051)
    np.testing.assert_allclose(ours["monetary_value"], published["zbar"], atol=0.0051)
    plain = pd.read_csv(CDNOW / "cdnow_customers_summary.csv")
    np.testing.assert_array_equal(ours["frequency"], plain["frequency"])
    np.testing.assert_allclose(ours["recency"], plain["recency"], atol=0.0051)
    assert ((ours["frequency"] > 0) & (ours["monetary_value"] > 0)).sum() == 946


def test_cdnow_bgnbd_and_gamma_gamma_match_the_papers(cdnow_model):
    gaps = _relative_gap(cdnow_model.params_, PAPER_BGNBD | PAPER_SPEND)
    assert max(gaps.values()) < 0.01, gaps


def test_fit_on_the_published_summary_matches_the_fit_on_raw_transactions(cdnow_model):
    published = pd.read_csv(CDNOW / "cdnow_customers_summary.csv").rename(columns={"ID": "customer_id"})
    direct = RepurchaseModel(time_unit="W", spend_model=False, maximum_likelihood=True).fit(published)
    gaps = _relative_gap(direct.params_, {k: cdnow_model.params_[k] for k in PAPER_BGNBD})
    assert max(gaps.values()) < 0.002, gaps


def test_cdnow_pareto_nbd_matches_the_paper(cdnow_summary):
    model = RepurchaseModel("pareto_nbd", spend_model=False, time_unit="W",
                            maximum_likelihood=True).fit(cdnow_summary)
    gaps = _relative_gap(model.params_, PAPER_PARETO)
    assert max(gaps.values()) < 0.01, gaps


def test_cdnow_holdout_forecast_beats_extrapolating_each_customers_own_rate(cdnow_orders, cdnow_summary):
    check = holdout_check(cdnow_orders, CALIBRATION_END, OBSERVATION_END, time_unit="W",
                          maximum_likelihood=True)
    assert check.actual_total == cdnow_summary["frequency_holdout"].sum()
    assert abs(check.predicted_total / check.actual_total - 1) < 0.15
    # naive: each customer keeps buying at their calibration-period rate
    naive = cdnow_summary["frequency"] / cdnow_summary["T"] * cdnow_summary["duration_holdout"]
    naive_mae = (naive - cdnow_summary["frequency_holdout"]).abs().mean()
    assert check.mae < naive_mae
    np.testing.assert_allclose(check.customers["error"].abs().mean(), check.mae)


def test_predictions_are_consistent(cdnow_model):
    predicted = cdnow_model.predict(days=91)
    assert predicted["probability_alive"].between(0, 1).all()
    # customers who never came back are certainly alive under BG/NBD
    never = cdnow_model.summary_["frequency"].to_numpy() == 0
    assert (predicted.loc[never, "probability_alive"] == 1).all()
    longer = cdnow_model.expected_purchases(182)
    assert (longer.to_numpy() > predicted["expected_purchases"].to_numpy()).all()
    assert (predicted["window_end_days"] > predicted["window_start_days"]).all()
    undiscounted = cdnow_model.customer_value(365, discount_rate=0.0)
    assert (cdnow_model.customer_value(365, discount_rate=0.5) < undiscounted).all()
    # without discounting, value is expected purchases times expected spend per purchase
    expected = cdnow_model.expected_purchases(12 * 4.345 * 7) * cdnow_model.expected_spend()
    np.testing.assert_allclose(undiscounted, expected, rtol=1e-6)
    # several horizons in one call: each column is that horizon's own call, customers in the same order
    several = cdnow_model.expected_purchases([91, 182])
    assert list(several.columns) == [91, 182]
    pd.testing.assert_series_equal(several[182], longer, check_names=False)
    assert several.index.equals(longer.index)


def test_summary_hand_counts():
    orders = pd.DataFrame({
        "order_id": ["1", "2", "3", "4", "5", "6", "7"],
        "customer_id": ["a", "a", "a", "a", "b", "b", "a"],
        "ts": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 18:00", "2024-01-11", "2024-01-15",
                              "2024-01-05", "2024-01-25", "2024-01-21"], format="ISO8601"),
        "amount": [10.0, 20.0, 40.0, -40.0, 5.0, 7.0, 99.0],
        "status": ["completed", "completed", "completed", "refunded", "completed", "completed",
                   "cancelled"],
    })
    summary = summary_from_orders(orders, "2024-01-31", calibration_end="2024-01-20").set_index(
        "customer_id")
    # a: purchase days Jan 1 (two orders, one occasion) and Jan 11; refund and cancellation ignored
    assert summary.loc["a", ["frequency", "recency", "T"]].tolist() == [1, 10, 19]
    assert summary.loc["a", "monetary_value"] == 40.0
    assert summary.loc["b", ["frequency", "recency", "T", "monetary_value"]].tolist() == [0, 0, 15, 0]
    assert summary.loc["b", "frequency_holdout"] == 1 and summary.loc["a", "frequency_holdout"] == 0
    assert (summary["duration_holdout"] == 11).all()
    weekly = summary_from_orders(orders, "2024-01-31", time_unit="W").set_index("customer_id")
    assert weekly.loc["b", "recency"] == pytest.approx(20 / 7)
    with pytest.raises(OpportunityError, match="time_unit"):
        summary_from_orders(orders, "2024-01-31", time_unit="M")
    with pytest.raises(OpportunityError, match="frequency"):
        RepurchaseModel().fit(summary.reset_index().drop(columns="frequency"))


def test_sample_fit_in_days_lands_near_the_planted_process(sample_tables):
    """The sample's repeat purchases are BG/NBD-like but thinned by the shop's seasonality.

    Thinning keeps a candidate purchase day with probability weight / max weight,
    so the effective purchase rate is the planted mean rate times the mean
    acceptance; the planted dropout after each purchase is a / (a + b) = 1/7.
    """
    summary = summary_from_orders(sample_tables["orders"], sample.END)
    params = RepurchaseModel(maximum_likelihood=True, spend_model=False).fit(summary).params_
    weights = sample._day_weights(pd.date_range(sample.START, sample.END, freq="D"))
    effective_rate = sample.REPEAT_R / sample.REPEAT_ALPHA * weights.mean() / weights.max()
    assert params["r"] / params["alpha"] == pytest.approx(effective_rate, rel=0.25)
    planted_dropout = sample.DROPOUT_A / (sample.DROPOUT_A + sample.DROPOUT_B)
    assert params["a"] / (params["a"] + params["b"]) == pytest.approx(planted_dropout, rel=0.4)


def test_probability_alive_matrix_covers_the_grid_and_falls_with_silence(cdnow_model):
    from toolkit.opportunities import probability_alive_matrix

    matrix = probability_alive_matrix(cdnow_model, recency_steps=10)
    most = int(cdnow_model.summary_["frequency"].max())
    assert len(matrix) == (most + 1) * matrix.recency.nunique()
    assert matrix.probability_alive.between(0, 1).all()
    # a customer who never bought again is certainly alive in BG/NBD; a frequent buyer who went
    # quiet long ago is the likeliest to have dropped out, and buying lately makes alive likelier
    assert (matrix[matrix.frequency == 0].probability_alive == 1).all()
    frequent = matrix[matrix.frequency == most].sort_values("recency").probability_alive
    assert frequent.is_monotonic_increasing and frequent.iloc[0] < 0.05


def test_a_pickled_model_predicts_the_same(cdnow_model, cdnow_summary):
    """The result store pickles fitted models; a Pareto/NBD travels as its InferenceData, rebuilt on use."""
    copy = pickle.loads(pickle.dumps(cdnow_model))
    assert copy.params_ == cdnow_model.params_
    pd.testing.assert_frame_equal(copy.predict(days=91), cdnow_model.predict(days=91))
    pareto = RepurchaseModel("pareto_nbd", spend_model=False, time_unit="W", maximum_likelihood=True,
                             assume_dropout_when_degenerate=False).fit(cdnow_summary)
    copy = pickle.loads(pickle.dumps(pareto))
    assert isinstance(vars(copy)["_pareto"], dict)  # plain arrays until used
    pd.testing.assert_series_equal(copy.expected_purchases(91), pareto.expected_purchases(91))


def test_stored_scores_unpickle_without_importing_arviz_or_pymc(cdnow_model, tmp_path):
    """A page that only reads the stored scores must not pay the 2 s import of arviz and pymc."""
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(cdnow_model))
    code = ("import pickle, sys; model = pickle.loads(open(sys.argv[1], 'rb').read()); "
            "print(sorted(m for m in ('arviz', 'pymc', 'pymc_marketing') if m in sys.modules), model.params_['r'])")
    assert _printed_in_new_process(code, str(tmp_path / "model.pkl")).split() == ["[]", str(cdnow_model.params_["r"])]


def _printed_in_new_process(code: str, *args: str) -> str:
    """What ``code`` prints, run by a fresh interpreter in the project (nothing imported before it)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[1]).stdout


def _loyal_shop(customers: int = 800, years: int = 4, seed: int = 0) -> pd.DataFrame:
    """Customers who never drop out: each buys at their own steady rate (Poisson, mean one in 90 days).

    The data hold no drop-out to learn, as in Superstore's four years (where the
    plain fit lands on a = 1e-6 and calls every customer 100% likely active).
    """
    rng = np.random.default_rng(seed)
    start, days = pd.Timestamp("2021-01-01"), 365 * years
    rows = []
    for i, rate in enumerate(rng.gamma(2.0, 1 / 180, customers)):
        day = float(rng.integers(0, days // 2))
        while day < days:
            rows.append((f"C{i}", start + pd.Timedelta(days=int(day))))
            day += rng.exponential(1 / rate)
    orders = pd.DataFrame(rows, columns=["customer_id", "ts"])
    return orders.assign(order_id=[f"O{i}" for i in range(len(orders))], amount=50.0, status="completed")


def test_a_shop_without_drop_out_gets_an_assumed_drop_out_and_says_so():
    orders = _loyal_shop()
    summary = summary_from_orders(orders, orders["ts"].max())
    plain = RepurchaseModel(spend_model=False, assume_dropout_when_degenerate=False).fit(summary)
    assert plain.fit_problem_.startswith("its drop-out parameters sit on the boundary")
    assert plain.model_name_ == "BG/NBD" and plain.notes_[0].level == "warning"
    assert (plain.probability_alive() > 0.99).all()  # the symptom: everyone certainly active

    served = RepurchaseModel(spend_model=False).fit(summary)
    assert served.model_name_ == "BG/NBD with assumed drop-out"
    assert "assumed drop-out of 15%" in served.notes_[0].text
    assert served.params_["a"] / (served.params_["a"] + served.params_["b"]) == pytest.approx(0.15, rel=0.1)
    # P(active) falls with silence for frequent buyers
    alive = served.probability_alive().to_numpy()
    frequent = summary["frequency"].to_numpy() >= 2
    silence = (summary["T"] - summary["recency"]).to_numpy()
    gap = summary["recency"].to_numpy() / np.maximum(summary["frequency"].to_numpy(), 1)
    assert pd.Series(alive[frequent]).corr(pd.Series(silence[frequent]), method="spearman") < -0.7
    lapsed, recent = frequent & (silence > 3 * gap) & (silence > 180), frequent & (silence < gap)
    assert lapsed.sum() >= 10 and alive[lapsed].mean() < 0.6 < 0.85 < alive[recent].mean()
    copy = pickle.loads(pickle.dumps(served))  # the served model travels through the result store too
    pd.testing.assert_series_equal(copy.probability_alive(), served.probability_alive())


def test_fit_problem_names_each_sign_of_a_degenerate_fit(cdnow_model):
    assert cdnow_model.fit_problem_ is None and cdnow_model.model_name_ == "BG/NBD"
    assert cdnow_model.notes_ == []
    summary = cdnow_model.summary_
    alive = cdnow_model.probability_alive().to_numpy()
    params = dict(cdnow_model.params_)
    assert fit_problem(params, summary, alive, "W") is None
    assert "b = 1e-07" in fit_problem({**params, "b": 1e-7}, summary, alive, "W")
    assert "s = 0.0001" in fit_problem({"r": 0.5, "alpha": 10.0, "s": 1e-4, "beta": 10.0}, summary, alive, "W")
    assert "absurd (r = 500" in fit_problem({**params, "r": 500.0}, summary, alive, "W")
    lapsed_alive = fit_problem(params, summary, np.ones_like(alive), "W")
    assert lapsed_alive.endswith("frequent buyers who went silent for over three times their usual gap "
                                 "at least 99% likely active")


def test_guest_lines_are_no_ones_purchases():
    orders = pd.DataFrame({
        "order_id": ["1", "1", "2", "3", "4"],
        "customer_id": pd.array(["a", "a", None, "a", None], dtype="str"),
        "ts": pd.to_datetime(["2024-01-01 09:00", "2024-01-01 09:00", "2024-01-02", "2024-01-11",
                              "2024-01-12"], format="ISO8601"),
        "amount": [10.0, 5.0, 99.0, 40.0, 70.0],
        "status": "completed",
    })
    summary = summary_from_orders(orders, "2024-01-31")
    # one customer; two lines of one order are one purchase; guest lines belong to no one
    assert summary["customer_id"].tolist() == ["a"]
    assert summary[["frequency", "recency", "T", "monetary_value"]].iloc[0].tolist() == [1, 10, 30, 40.0]


@pytest.fixture(scope="module")
def pymc_marketing():
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value

    return BetaGeoModel, GammaGammaModel, customer_lifetime_value, Prior


def _pymc_config(priors: dict, prior_class) -> dict:
    return {name: prior_class(dist, **kwargs) for name, (dist, kwargs) in priors.items()}


@pytest.mark.parametrize("priors", ["default", "flat", "assumed drop-out"])
def test_closed_form_fit_finds_pymc_marketings_map(cdnow_summary, pymc_marketing, priors):
    """``bgnbd`` optimises the objective ``pymc.find_MAP`` does: the same point, a log posterior as high."""
    from toolkit.opportunities import bgnbd
    from toolkit.opportunities.repurchase import ASSUMED_DROPOUT_PRIORS

    beta_geo, gamma_gamma, _, prior_class = pymc_marketing
    chosen = {"default": None, "flat": {n: bgnbd.FLAT for n in ("alpha", "a", "b", "r")},
              "assumed drop-out": ASSUMED_DROPOUT_PRIORS}[priors]
    buyers = cdnow_summary[["customer_id", "frequency", "recency", "T"]]
    spenders = cdnow_summary.loc[cdnow_summary["frequency"] > 0, ["customer_id", "frequency", "monetary_value"]]
    ours = bgnbd.fit_bgnbd(buyers["frequency"], buyers["recency"], buyers["T"], chosen)
    theirs = beta_geo(model_config=chosen and _pymc_config(chosen, prior_class))
    ours_spend = bgnbd.fit_gamma_gamma(spenders["frequency"], spenders["monetary_value"])
    theirs_spend = gamma_gamma()
    for fitted, rows, params in ((theirs, buyers, ours), (theirs_spend, spenders.reset_index(drop=True), ours_spend)):
        fitted.fit(data=rows, method="map", progressbar=False, seed=1)
        assert list(params) == list(fitted.fit_result.data_vars)
        for name in fitted.fit_result.data_vars:
            assert params[name] == pytest.approx(fitted.fit_result[name].item(), rel=2e-3), name
        log_posterior = fitted.model.compile_logp(jacobian=False)
        assert (log_posterior(_transformed_point(fitted, params))
                >= log_posterior(_transformed_point(fitted, {n: fitted.fit_result[n].item() for n in params})) - 1e-6)


def test_closed_form_predictions_are_pymc_marketings(cdnow_summary, pymc_marketing):
    """At the same parameters, P(alive), expected purchases, spend and customer value equal pymc-marketing's."""
    from toolkit.opportunities import bgnbd

    beta_geo, gamma_gamma, customer_lifetime_value, _ = pymc_marketing
    buyers = cdnow_summary[["customer_id", "frequency", "recency", "T"]]
    spenders = cdnow_summary.loc[cdnow_summary["frequency"] > 0]
    theirs, theirs_spend = beta_geo(), gamma_gamma()
    theirs.fit(data=buyers, method="map", progressbar=False, seed=1)
    theirs_spend.fit(data=spenders[["customer_id", "frequency", "monetary_value"]].reset_index(drop=True),
                     method="map", progressbar=False, seed=1)
    params = {n: theirs.fit_result[n].item() for n in theirs.fit_result.data_vars}
    params |= {n: theirs_spend.fit_result[n].item() for n in theirs_spend.fit_result.data_vars}
    rfm = [buyers[c].to_numpy(float) for c in ("frequency", "recency", "T")]
    point = lambda values: np.asarray(values.mean(("chain", "draw")))  # noqa: E731
    np.testing.assert_allclose(bgnbd.probability_alive(params, *rfm),
                               point(theirs.expected_probability_alive(data=buyers)), rtol=1e-10)
    for weeks in (1.0, 13.0, 52.0):
        np.testing.assert_allclose(bgnbd.expected_purchases(params, *rfm, weeks),
                                   point(theirs.expected_purchases(data=buyers, future_t=weeks)), rtol=1e-10)
    spend = bgnbd.expected_spend(params, cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    np.testing.assert_allclose(spend, point(theirs_spend.expected_customer_spend(
        data=cdnow_summary[["customer_id", "frequency", "monetary_value"]])), rtol=1e-10)
    model = RepurchaseModel(time_unit="W").fit(cdnow_summary)
    model.params_ = params  # the same point as pymc-marketing's
    value = customer_lifetime_value(transaction_model=theirs, data=buyers.assign(future_spend=np.asarray(spend)),
                                    future_t=12, discount_rate=(1.1 ** (1 / 12) - 1), time_unit="W")
    np.testing.assert_allclose(model.customer_value(365).to_numpy(), point(value), rtol=1e-9)


def test_fitting_and_predicting_a_bgnbd_imports_no_pymc():
    """The BG/NBD and Gamma-Gamma run without pymc: importing it cost 2-3 s in every kernel that scored."""
    code = ("import sys, pandas as pd\n"
            "from toolkit import sample\n"
            "from toolkit.opportunities import RepurchaseModel, summary_from_orders\n"
            "orders = sample.generate(customers=600, seed=1)['orders']\n"
            "RepurchaseModel().fit(summary_from_orders(orders, orders['ts'].max())).predict(90)\n"
            "print(sorted(m for m in ('arviz', 'pymc', 'pymc_marketing', 'pytensor') if m in sys.modules))")
    assert _printed_in_new_process(code).strip() == "[]"


def _transformed_point(fitted, params: dict) -> dict[str, np.ndarray]:
    """``params`` as pymc's log density of ``fitted`` takes them: each free variable on its own scale."""
    model, point = fitted.model, {}
    for rv in model.free_RVs:
        value = np.asarray(params[rv.name])
        transform = model.rvs_to_transforms[rv]
        if transform is not None:
            value = transform.forward(value, *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = value
    return point
