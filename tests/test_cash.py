"""Cash position and scenarios, checked against balances and probabilities known by construction."""

from __future__ import annotations

from datetime import date
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from toolkit.cash import (
    BASELINE,
    CashError,
    DemandShock,
    ExtraFlows,
    MoveCommitment,
    OneOffCost,
    OutflowChange,
    ReceiptDelay,
    Scenario,
    apply_scenario,
    balance_check,
    balance_record,
    cash_position,
    cash_position_from_net_flow,
    compare_scenarios,
    compare_scenarios_with_notes,
    days_of_cash,
    low_point,
    scenario_from_dict,
)
from toolkit.errors import JourneycastError
from toolkit.forecast import net_flow_draws

HISTORY_START = pd.Timestamp("2026-10-22")
HORIZON_START = pd.Timestamp("2026-11-01")  # the day after the last actual day


def make_paths(series: dict[str, np.ndarray], start: pd.Timestamp = HORIZON_START) -> pd.DataFrame:
    """Sample paths from one (days x draws) array per series id."""
    frames = []
    for uid, values in series.items():
        days, draws = values.shape
        index = pd.MultiIndex.from_product(
            [[uid], pd.date_range(start, periods=days)], names=["unique_id", "ds"]
        )
        frames.append(pd.DataFrame(values, index=index, columns=[f"draw_{i}" for i in range(draws)]))
    return pd.concat(frames)


def make_history(daily: dict[str, float], days: int = 10) -> pd.DataFrame:
    """Actual flows: a constant amount a day for each series id, ending the day before the horizon."""
    rows = []
    for uid, amount in daily.items():
        stage, direction, segment = uid.split("|")
        for ds in pd.date_range(HORIZON_START - pd.Timedelta(days=days), periods=days):
            rows.append((uid, ds, amount, stage, direction, segment))
    return pd.DataFrame(rows, columns=["unique_id", "ds", "y", "stage", "direction", "segment"])


def constant(value: float, days: int, draws: int) -> np.ndarray:
    return np.full((days, draws), float(value))


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return make_history({"purchase|inflow|all": 100.0, "operations|outflow|all": 40.0})


@pytest.fixture(scope="module")
def mixed_paths() -> pd.DataFrame:
    """Random gamma paths for inflows and outflows of several stages, 60 days x 200 draws."""
    rng = np.random.default_rng(7)
    shape = (60, 200)
    return make_paths(
        {
            "purchase|inflow|new": rng.gamma(4.0, 30.0, shape),
            "post-purchase|inflow|repeat": rng.gamma(4.0, 20.0, shape),
            "awareness|outflow|all": rng.gamma(5.0, 10.0, shape),
            "consideration|outflow|all": rng.gamma(5.0, 4.0, shape),
            "operations|outflow|all": rng.gamma(9.0, 12.0, shape),
        }
    )


# ----------------------------------------------------------- the position


def test_constant_flows_give_the_exact_balance_breach_and_runway(history):
    # History: 10 days of +100 -40, opening 1000 -> 1600 at the end.
    # Forecast: +50 -80 a day in every draw -> 1600 - 30 t on forecast day t.
    paths = make_paths(
        {"purchase|inflow|all": constant(50, 30, 5), "operations|outflow|all": constant(80, 30, 5)}
    )
    outlook = cash_position(history, paths, opening_balance=1000, minimum_cash=1000)

    past = outlook.bands[~outlook.bands["is_forecast"]]
    future = outlook.bands[outlook.bands["is_forecast"]]
    assert len(past) == 10 and len(future) == 30
    np.testing.assert_allclose(past["actual"], 1000 + 60 * np.arange(1, 11))
    expected = 1600 - 30 * np.arange(1, 31)
    for column in ("p10", "p50", "p90"):
        np.testing.assert_allclose(future[column], expected)
    np.testing.assert_allclose(outlook.balance_draws.to_numpy(), np.tile(expected[:, None], 5))
    assert future["actual"].isna().all()
    assert outlook.as_of == pd.Timestamp("2026-10-31")
    # The bands join the actual line on the last actual day.
    assert past.iloc[-1][["p10", "p50", "p90"]].tolist() == [1600, 1600, 1600]
    assert past.iloc[:-1][["p10", "p50", "p90"]].isna().all().all()

    # 1600 - 30 t < 1000 first for t = 21 (t = 20 leaves exactly the minimum).
    breach = HORIZON_START + pd.Timedelta(days=20)
    assert outlook.first_breach_date == breach
    assert outlook.runway_days == 20
    assert outlook.shortfall_probability == 1.0
    daily = outlook.shortfall.set_index("ds")["probability"]
    assert (daily[daily.index < breach] == 0).all() and (daily[daily.index >= breach] == 1).all()
    first = outlook.breach_distribution.set_index("ds")["first_breach_probability"]
    assert first[breach] == 1.0 and first.sum() == 1.0


def test_without_an_opening_balance_the_outlook_is_the_cumulative_net_flow_and_no_risk(history):
    # History: 10 days of +100 -40 -> +600 since the first day; forecast: -30 a day.
    paths = make_paths(
        {"purchase|inflow|all": constant(50, 30, 5), "operations|outflow|all": constant(80, 30, 5)}
    )
    outlook = cash_position(history, paths, opening_balance=None, minimum_cash=1000)
    known = cash_position(history, paths, opening_balance=1000, minimum_cash=1000)

    assert not outlook.balance_known and known.balance_known
    assert outlook.measure == "cumulative net cash flow since 22 Oct 2026"
    assert known.measure == "cash balance"
    past = outlook.bands[~outlook.bands["is_forecast"]]
    np.testing.assert_allclose(past["actual"], 60 * np.arange(1, 11))
    # the same path as with a balance, less the opening balance
    for column in ("actual", "p10", "p50", "p90"):
        np.testing.assert_allclose(outlook.bands[column], known.bands[column] - 1000)
    # a minimum means nothing against a flow: no shortfall figures at all
    assert outlook.minimum_cash is None and outlook.opening_balance is None
    assert (outlook.shortfall_probability, outlook.first_breach_date, outlook.runway_days) == (None, None, None)
    assert not outlook.risk_assessed
    assert outlook.shortfall["probability"].isna().all()
    assert outlook.breach_distribution["cumulative_probability"].isna().all()
    summary = outlook.summary()
    assert summary["balance_known"] is False and summary["shortfall_probability"] is None
    assert summary["ending_p50"] == pytest.approx(600 - 30 * 30)
    assert known.summary()["shortfall_probability"] == 1.0


def test_without_a_minimum_the_balance_is_kept_and_the_risk_is_not_assessed(history):
    paths = make_paths({"purchase|inflow|all": constant(50, 30, 5)})
    outlook = cash_position(history, paths, opening_balance=1000, minimum_cash=None)
    assert outlook.balance_known and not outlook.risk_assessed
    assert outlook.runway_days is None and outlook.first_breach_date is None
    assert outlook.bands["p50"].iloc[-1] == pytest.approx(1600 + 50 * 30)


def test_no_breach_gives_the_whole_horizon_as_runway(history):
    paths = make_paths({"purchase|inflow|all": constant(50, 30, 5)})
    outlook = cash_position(history, paths, opening_balance=1000, minimum_cash=0)
    assert outlook.first_breach_date is None
    assert outlook.runway_days == 30
    assert outlook.shortfall_probability == 0.0
    assert outlook.breach_distribution["cumulative_probability"].iloc[-1] == 0.0


def test_daily_shortfall_probability_matches_the_normal_cdf():
    # One inflow N(mu, sd) a day, a constant outflow: balance on day t is
    # N(b0 + t (mu - c), t sd^2), so P(balance < minimum) is known exactly.
    rng = np.random.default_rng(11)
    days, draws, mu, sd, cost = 60, 4000, 1000.0, 150.0, 1010.0
    paths = make_paths(
        {
            "purchase|inflow|all": rng.normal(mu, sd, (days, draws)),
            "operations|outflow|all": constant(cost, days, draws),
        }
    )
    history = make_history({"purchase|inflow|all": 500.0}, days=4)  # 2000 opening + 4 x 500
    b0, minimum = 2000.0 + 4 * 500.0, 3500.0
    outlook = cash_position(history, paths, opening_balance=2000, minimum_cash=minimum)

    t = np.arange(1, days + 1)
    truth = np.array([NormalDist(b0 + k * (mu - cost), sd * np.sqrt(k)).cdf(minimum) for k in t])
    estimate = outlook.shortfall["probability"].to_numpy()
    standard_error = np.sqrt(np.maximum(truth * (1 - truth), 1 / draws) / draws)
    assert np.all(np.abs(estimate - truth) < 4.5 * standard_error)
    assert truth.max() > 0.2  # the check is not trivial: sizeable probabilities are tested

    median = np.array([b0 + k * (mu - cost) for k in t])
    p50 = outlook.bands.loc[outlook.bands["is_forecast"], "p50"].to_numpy()
    assert np.all(np.abs(p50 - median) < 4.5 * 1.2533 * sd * np.sqrt(t) / np.sqrt(draws))


def test_paths_are_summed_draw_by_draw_not_quantile_by_quantile():
    # Ten independent inflows, N(100, 30) on a single day: the sum's P90 is
    # 1000 + 1.2816 * 30 * sqrt(10) ~ 1121.6, while adding the ten P90s gives
    # 10 * (100 + 1.2816 * 30) ~ 1384.5.
    rng = np.random.default_rng(3)
    draws = 20000
    series = {f"purchase|inflow|s{i}": rng.normal(100, 30, (1, draws)) for i in range(10)}
    paths = make_paths(series)
    history = make_history({"purchase|inflow|all": 0.0}, days=1)
    outlook = cash_position(history, paths, opening_balance=0, minimum_cash=0)

    z = NormalDist().inv_cdf(0.9)
    truth = 1000 + z * 30 * np.sqrt(10)
    summed_p90s = sum(np.quantile(v, 0.9) for v in series.values())
    ending_p90 = outlook.summary()["ending_p90"]
    assert abs(ending_p90 - truth) < 5  # sampling error of the P90 here is about 1.2
    assert abs(summed_p90s - (1000 + 10 * z * 30)) < 10
    assert summed_p90s - ending_p90 > 250


def test_horizon_shortfall_counts_draws_that_breach_at_least_once():
    # Three draws over four days against a minimum of 0 (opening balance 10).
    # draw 0 never dips; draw 1 dips on day 2 and recovers; draw 2 dips on day 4.
    net = np.array(
        [
            [0.0, 0.0, 0.0],
            [0.0, -15.0, 0.0],
            [0.0, 15.0, 0.0],
            [0.0, 0.0, -11.0],
        ]
    )
    paths = make_paths(
        {"purchase|inflow|all": np.clip(net, 0, None), "operations|outflow|all": np.clip(-net, 0, None)}
    )
    history = make_history({"purchase|inflow|all": 0.0}, days=1)
    outlook = cash_position(history, paths, opening_balance=10, minimum_cash=0)

    np.testing.assert_allclose(outlook.shortfall["probability"], [0, 1 / 3, 0, 1 / 3])
    assert outlook.shortfall_probability == pytest.approx(2 / 3)
    assert outlook.first_breach_date is None  # no single day is more likely short than not
    assert outlook.runway_days == 4
    dist = outlook.breach_distribution
    np.testing.assert_allclose(dist["first_breach_probability"], [0, 1 / 3, 0, 1 / 3])
    np.testing.assert_allclose(dist["cumulative_probability"], [0, 1 / 3, 1 / 3, 2 / 3])


def test_horizon_shortfall_and_first_breaches_match_a_draw_by_draw_count(history, mixed_paths):
    outlook = cash_position(history, mixed_paths, opening_balance=0, minimum_cash=400)
    balance = outlook.balance_draws.to_numpy()
    breaches = [np.flatnonzero(balance[:, j] < 400) for j in range(balance.shape[1])]
    firsts = [b[0] for b in breaches if len(b)]
    assert 0 < len(firsts) < balance.shape[1]  # some draws breach, some do not
    assert outlook.shortfall_probability == pytest.approx(len(firsts) / balance.shape[1])
    counts = np.bincount(firsts, minlength=balance.shape[0]) / balance.shape[1]
    np.testing.assert_allclose(outlook.breach_distribution["first_breach_probability"], counts)
    np.testing.assert_allclose(
        outlook.breach_distribution["cumulative_probability"].iloc[-1], outlook.shortfall_probability
    )


@pytest.mark.parametrize("draws", [199, 200])
def test_first_breach_date_and_runway_agree_with_the_p50_band(draws):
    rng = np.random.default_rng(5)
    paths = make_paths(
        {
            "purchase|inflow|all": rng.gamma(4.0, 25.0, (60, draws)),
            "operations|outflow|all": rng.gamma(4.0, 27.0, (60, draws)),
        }
    )
    history = make_history({"purchase|inflow|all": 0.0}, days=1)
    outlook = cash_position(history, paths, opening_balance=1000, minimum_cash=700)
    future = outlook.bands[outlook.bands["is_forecast"]].reset_index(drop=True)
    below = future.index[future["p50"] < 700]
    assert len(below) > 0
    assert outlook.first_breach_date == future.loc[below[0], "ds"]
    daily = outlook.shortfall["probability"].to_numpy()
    assert daily[below[0]] >= 0.5 and np.all(daily[: below[0]] < 0.5)
    assert outlook.runway_days == (outlook.first_breach_date - outlook.as_of).days - 1
    # The bands are the empirical quantiles of the balance draws.
    q = np.quantile(outlook.balance_draws.to_numpy(), [0.1, 0.5, 0.9], axis=1, method="inverted_cdf")
    np.testing.assert_allclose(future[["p10", "p50", "p90"]].to_numpy().T, q)


def test_a_series_without_a_row_on_a_day_moves_no_money(history):
    full = make_paths(
        {"purchase|inflow|all": constant(10, 5, 2), "operations|outflow|all": constant(4, 5, 2)}
    )
    gap = full.drop(index=("operations|outflow|all", HORIZON_START + pd.Timedelta(days=2)))
    outlook = cash_position(history, gap, opening_balance=0, minimum_cash=0)
    np.testing.assert_allclose(outlook.balance_draws["draw_0"], 600 + np.array([6, 12, 22, 28, 34]))


def test_row_order_of_paths_and_repeated_runs_give_identical_results(history, mixed_paths):
    first = cash_position(history, mixed_paths, 0, 400)
    again = cash_position(history, mixed_paths, 0, 400)
    shuffled = mixed_paths.sample(frac=1.0, random_state=1)
    reordered = cash_position(history, shuffled, 0, 400)
    for other in (again, reordered):
        pd.testing.assert_frame_equal(first.bands, other.bands)
        pd.testing.assert_frame_equal(first.shortfall, other.shortfall)
        pd.testing.assert_frame_equal(first.balance_draws, other.balance_draws, rtol=1e-12)
        assert first.summary() == other.summary()


def test_the_net_flow_of_a_stored_forecast_gives_the_same_outlook_as_its_paths(history, mixed_paths):
    net = net_flow_draws(mixed_paths)
    # inflows minus outflows, day by day and draw by draw
    signs = {"inflow": 1.0, "outflow": -1.0}
    by_hand = sum(signs[uid.split("|")[1]] * mixed_paths.loc[uid]
                  for uid in mixed_paths.index.unique(level="unique_id"))
    np.testing.assert_allclose(net.to_numpy(), by_hand.to_numpy(), rtol=1e-12, atol=1e-9)
    assert list(net.columns) == list(mixed_paths.columns) and net.index.name == "ds"

    from_net = cash_position_from_net_flow(history, net, 0, 400)
    from_paths = cash_position(history, mixed_paths, 0, 400)
    for field in ("bands", "shortfall", "breach_distribution", "balance_draws"):
        pd.testing.assert_frame_equal(getattr(from_net, field), getattr(from_paths, field))
    assert from_net.summary() == from_paths.summary()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n.assign(draw_0=np.nan), "finite"),
        (lambda n: n.assign(total=1.0), "draw columns"),
        (lambda n: n.reset_index(drop=True), "indexed by the forecast dates"),
        (lambda n: n.iloc[::-1], "in date order"),
        (lambda n: n.iloc[:0], "no rows"),
    ],
)
def test_bad_net_flow_is_a_clear_error(history, mixed_paths, change, message):
    with pytest.raises(CashError, match=message):
        cash_position_from_net_flow(history, change(net_flow_draws(mixed_paths)), 0, 0)


def test_inputs_are_never_modified(history, mixed_paths):
    extra = pd.DataFrame({"amount": [-50.0, 80.0]}, index=["2026-11-03", "2026-11-04"])
    before = (history.copy(deep=True), mixed_paths.copy(deep=True), extra.copy(deep=True))
    scenarios = [
        Scenario(
            "everything",
            (
                OutflowChange("awareness", 20, "2026-11-10"),
                OneOffCost("2026-11-05", 500),
                DemandShock(-30, "2026-11-20", "2026-11-30"),
                ReceiptDelay(3),
                ExtraFlows(extra, "campaign"),
            ),
        )
    ]
    apply_scenario(mixed_paths, scenarios[0])
    cash_position(history, mixed_paths, 0, 400)
    compare_scenarios(history, mixed_paths, scenarios, 0, 400)
    pd.testing.assert_frame_equal(history, before[0])
    pd.testing.assert_frame_equal(mixed_paths, before[1])
    pd.testing.assert_frame_equal(extra, before[2])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda h, p: (h, p.rename(index={"purchase|inflow|new": "purchase-new"})),
            "stage|direction|segment",
        ),
        (lambda h, p: (h, p.assign(draw_0=np.nan)), "finite"),
        (lambda h, p: (h, p.assign(model="prophet")), "draw columns"),
        (lambda h, p: (h.drop(columns="direction"), p), "direction"),
        (lambda h, p: (h.assign(direction="in"), p), "direction must be one of"),
        (lambda h, p: (h.iloc[:0], p), "no rows"),
        (
            lambda h, p: (h.assign(ds=h["ds"] + pd.Timedelta(days=5)), p),
            "forecast days must come after the last actual day",
        ),
        (lambda h, p: (h, pd.concat([p, p.iloc[:1]])), "more than one row"),
    ],
)
def test_bad_inputs_are_clear_errors(history, mixed_paths, change, message):
    bad_history, bad_paths = change(history, mixed_paths)
    with pytest.raises(JourneycastError, match=message):
        cash_position(bad_history, bad_paths, 0, 0)


def test_sample_shop_balance_follows_its_orders_and_costs(sample_tables, sample_config):
    from toolkit.flows import stage_flows

    history = stage_flows(sample_tables)
    orders, costs = sample_tables["orders"], sample_tables["costs"]
    moved = orders.loc[orders["status"] != "cancelled", "amount"].sum() - costs["amount"].sum()
    closing = sample_config.opening_balance + moved

    start = history["ds"].max() + pd.Timedelta(days=1)
    quiet = make_paths({uid: constant(0, 30, 4) for uid in history["unique_id"].unique()}, start)
    outlook = cash_position(history, quiet, sample_config.opening_balance, sample_config.minimum_cash)
    assert outlook.as_of == orders["ts"].max().normalize()
    assert outlook.bands["actual"].dropna().iloc[-1] == pytest.approx(closing, abs=0.01)
    np.testing.assert_allclose(outlook.balance_draws, closing)

    # A one-off cost that leaves the balance one unit short on the 10th day.
    cost = OneOffCost(start + pd.Timedelta(days=9), closing - sample_config.minimum_cash + 1)
    short = cash_position(
        history, apply_scenario(quiet, Scenario("cost", (cost,))),
        sample_config.opening_balance, sample_config.minimum_cash,
    )
    assert short.first_breach_date == cost.date and short.runway_days == 9
    assert short.shortfall_probability == 1.0


# ------------------------------------------------------------ adjustments


def rows_of(paths: pd.DataFrame, uid: str) -> pd.DataFrame:
    return paths.xs(uid, level="unique_id")


def test_outflow_change_scales_one_stage_from_its_start_only(history, mixed_paths):
    start = pd.Timestamp("2026-11-15")
    changed = apply_scenario(mixed_paths, Scenario("push", (OutflowChange("awareness", 20, start),)))

    awareness = rows_of(mixed_paths, "awareness|outflow|all")
    new = rows_of(changed, "awareness|outflow|all")
    pd.testing.assert_frame_equal(new[new.index < start], awareness[awareness.index < start])
    pd.testing.assert_frame_equal(new[new.index >= start], awareness[awareness.index >= start] * 1.2)
    others = mixed_paths.drop(index="awareness|outflow|all", level="unique_id")
    pd.testing.assert_frame_equal(changed.drop(index="awareness|outflow|all", level="unique_id"), others)

    base = cash_position(history, mixed_paths, 0, 0).balance_draws
    push = cash_position(history, changed, 0, 0).balance_draws
    pd.testing.assert_frame_equal(push[push.index < start], base[base.index < start])
    extra_cost = (0.2 * awareness.mul(awareness.index >= start, axis=0)).cumsum()
    np.testing.assert_allclose((base - push).to_numpy(), extra_cost.to_numpy())


def test_one_off_cost_lowers_the_balance_from_its_date_on(history, mixed_paths):
    day = pd.Timestamp("2026-11-20")
    scenario = Scenario(
        "roof", (OneOffCost(day, 5000), OneOffCost(day, 1000), OneOffCost("2026-11-25", 10, "awareness"))
    )
    changed = apply_scenario(mixed_paths, scenario)
    one_off = rows_of(changed, "operations|outflow|one-off")
    assert list(one_off.index) == [day] and (one_off.to_numpy() == 6000).all()
    assert (rows_of(changed, "awareness|outflow|one-off").to_numpy() == 10).all()

    base = cash_position(history, mixed_paths, 0, 0).balance_draws
    after = cash_position(history, changed, 0, 0).balance_draws
    drop = (base - after).to_numpy()
    days = base.index
    np.testing.assert_allclose(drop[days < day], 0)
    np.testing.assert_allclose(drop[(days >= day) & (days < "2026-11-25")], 6000)
    np.testing.assert_allclose(drop[days >= "2026-11-25"], 6010)


def test_demand_shock_scales_chosen_inflows_inside_its_window(mixed_paths):
    shock = DemandShock(-30, "2026-11-10", "2026-11-20", stages=["purchase"])
    changed = apply_scenario(mixed_paths, Scenario("slump", (shock,)))
    purchase = rows_of(mixed_paths, "purchase|inflow|new")
    inside = (purchase.index >= "2026-11-10") & (purchase.index <= "2026-11-20")
    assert inside.sum() == 11  # both ends included
    np.testing.assert_allclose(rows_of(changed, "purchase|inflow|new")[inside], 0.7 * purchase[inside])
    np.testing.assert_allclose(rows_of(changed, "purchase|inflow|new")[~inside], purchase[~inside])
    untouched = mixed_paths.drop(index="purchase|inflow|new", level="unique_id")
    pd.testing.assert_frame_equal(changed.drop(index="purchase|inflow|new", level="unique_id"), untouched)

    every_inflow = apply_scenario(mixed_paths, Scenario("all", (DemandShock(50, "2026-11-10"),)))
    late = mixed_paths.index.get_level_values("ds") >= "2026-11-10"
    inflow = mixed_paths.index.get_level_values("unique_id").str.contains("|inflow|", regex=False)
    np.testing.assert_allclose(every_inflow[late & inflow], 1.5 * mixed_paths[late & inflow])
    np.testing.assert_allclose(every_inflow[~(late & inflow)], mixed_paths[~(late & inflow)])


@pytest.mark.parametrize("days", [0, 1, 7])
def test_receipt_delay_shifts_inflows_and_conserves_money_but_the_tail(mixed_paths, days):
    changed = apply_scenario(mixed_paths, Scenario("slow payers", (ReceiptDelay(days),)))
    assert changed.index.equals(mixed_paths.index)
    last = mixed_paths.index.get_level_values("ds").max()
    for uid in ("purchase|inflow|new", "post-purchase|inflow|repeat"):
        old, new = rows_of(mixed_paths, uid), rows_of(changed, uid)
        np.testing.assert_allclose(new.iloc[:days], 0)
        np.testing.assert_allclose(new.iloc[days:], old.iloc[: len(old) - days])
        tail = old[old.index > last - pd.Timedelta(days=days)]
        np.testing.assert_allclose(new.sum(), old.sum() - tail.sum())
    outflows = mixed_paths.index.get_level_values("unique_id").str.contains("|outflow|", regex=False)
    pd.testing.assert_frame_equal(changed[outflows], mixed_paths[outflows])


def test_extra_flows_add_their_net_amounts_draw_by_draw(history, mixed_paths):
    rng = np.random.default_rng(2)
    dates = pd.date_range("2026-12-20", periods=20)  # the last 8 days fall after the horizon
    extra = pd.DataFrame(rng.normal(0, 100, (20, 200)), index=dates, columns=mixed_paths.columns)
    changed = apply_scenario(mixed_paths, Scenario("campaign", (ExtraFlows(extra, "winback"),)))
    inflow, outflow = rows_of(changed, "extra|inflow|winback"), rows_of(changed, "extra|outflow|winback")
    assert (inflow.to_numpy() >= 0).all() and (outflow.to_numpy() >= 0).all()
    assert inflow.index.max() == pd.Timestamp("2026-12-30")

    base = cash_position(history, mixed_paths, 0, 0).balance_draws
    after = cash_position(history, changed, 0, 0).balance_draws
    added = extra.reindex(base.index, fill_value=0.0).cumsum()
    np.testing.assert_allclose((after - base).to_numpy(), added.to_numpy(), atol=1e-9)

    # A single column is the same amount in every draw.
    flat = pd.DataFrame({"amount": [-300.0]}, index=[pd.Timestamp("2026-11-03")])
    fee = Scenario("fee", (ExtraFlows(flat, "fee"),))
    once = cash_position(history, apply_scenario(mixed_paths, fee), 0, 0)
    diff = (once.balance_draws - base).to_numpy()
    np.testing.assert_allclose(diff[:2], 0)
    np.testing.assert_allclose(diff[2:], -300)


@pytest.mark.parametrize(
    ("adjustment", "message"),
    [
        (lambda: OutflowChange("purchase", 10, "2026-11-05"), "no outflow series for stage 'purchase'"),
        (lambda: OutflowChange("awareness", 10, "2027-06-01"), "after the forecast horizon"),
        (lambda: OneOffCost("2027-06-01", 100), "outside the forecast horizon"),
        (lambda: DemandShock(-10, "2026-11-05", stages=["awareness"]), "no inflow series"),
        (lambda: DemandShock(-10, "2027-03-01", "2027-03-05"), "does not overlap"),
        (
            lambda: ExtraFlows(pd.DataFrame({"a": [1.0]}, index=[pd.Timestamp("2026-10-01")]), "x"),
            "before the forecast horizon",
        ),
        (
            lambda: ExtraFlows(
                pd.DataFrame({"draw_0": [1.0], "draw_1": [1.0]}, index=[pd.Timestamp("2026-11-02")]), "x"
            ),
            "draw columns or a single column",
        ),
    ],
)
def test_adjustments_that_would_change_nothing_or_history_are_errors(mixed_paths, adjustment, message):
    with pytest.raises(CashError, match=message):
        apply_scenario(mixed_paths, Scenario("what-if", (adjustment(),)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OutflowChange("marketing", 10, "2026-11-05"), "not a stage"),
        (lambda: OutflowChange("awareness", -120, "2026-11-05"), "below -100"),
        (lambda: OutflowChange("awareness", "20%", "2026-11-05"), "must be a number"),
        (lambda: OneOffCost("next week", 100), "must be a date"),
        (lambda: OneOffCost("2026-11-05", -100), "must be positive"),
        (lambda: DemandShock(-10, "2026-11-05", "2026-11-01"), "before start"),
        (lambda: DemandShock(-10, "2026-11-05", stages="purchase"), "list of stages"),
        (lambda: ReceiptDelay(-2), "whole number"),
        (lambda: ReceiptDelay(2.5), "whole number"),
        (
            lambda: ExtraFlows(pd.DataFrame({"a": [np.nan]}, index=[pd.Timestamp("2026-11-02")]), "x"),
            "finite",
        ),
        (lambda: Scenario("", ()), "non-empty name"),
        (lambda: Scenario("x", ("outflow_change",)), "not an adjustment"),
    ],
)
def test_invalid_adjustments_are_rejected_when_built(build, message):
    with pytest.raises(CashError, match=message):
        build()


# ------------------------------------------------------------- comparing


def test_compare_scenarios_puts_the_baseline_first_and_matches_each_position(history, mixed_paths):
    push = {
        "name": "marketing push",
        "adjustments": [
            {"type": "outflow_change", "stage": "awareness", "pct": 20, "start": "2026-11-15"}
        ],
    }
    delay = Scenario("slow payers", (ReceiptDelay(5),))
    table = compare_scenarios(history, mixed_paths, [push, delay], 0, 400)

    assert table["scenario"].tolist() == [BASELINE, "marketing push", "slow payers"]
    assert list(table.columns) == [
        "scenario", "balance_known", "shortfall_probability", "first_breach_date", "runway_days",
        "ending_p10", "ending_p50", "ending_p90", "lowest_p50", "lowest_p50_date",
    ]
    scenarios = [Scenario(BASELINE), scenario_from_dict(push), delay]
    for row, scenario in zip(table.itertuples(index=False), scenarios):
        outlook = cash_position(history, apply_scenario(mixed_paths, scenario), 0, 400)
        expected = {"scenario": scenario.name} | outlook.summary()
        expected["first_breach_date"] = expected["first_breach_date"] or pd.NaT  # None shows as NaT
        assert row._asdict() == expected
    # More spending and slower receipts cannot leave more cash at the end, draw for draw.
    assert (table["ending_p50"].iloc[1:] < table["ending_p50"].iloc[0]).all()
    assert (table["shortfall_probability"].iloc[1:] >= table["shortfall_probability"].iloc[0]).all()

    future = cash_position(history, mixed_paths, 0, 400).bands.query("is_forecast")
    assert table.loc[0, "lowest_p50"] == future["p50"].min()
    assert table.loc[0, "lowest_p50_date"] == future.loc[future["p50"].idxmin(), "ds"]


def test_scenarios_on_money_the_forecast_lacks_are_left_out_with_a_note(history):
    """No awareness costs and no inflow of stage evaluation: those what-ifs compare nothing."""
    paths = make_paths({"purchase|inflow|all": constant(50, 30, 5), "operations|outflow|all": constant(20, 30, 5)})
    push = {"name": "marketing push", "adjustments": [
        {"type": "outflow_change", "stage": "awareness", "pct": 30, "start": "2026-11-01"}]}
    trials = Scenario("trial sales", (DemandShock(10, "2026-11-01", stages=("evaluation",)),))
    slow = Scenario("slow payers", (ReceiptDelay(7),))
    table, notes = compare_scenarios_with_notes(history, paths, [push, trials, slow], 1000, 0)

    assert table["scenario"].tolist() == [BASELINE, "slow payers"]
    assert [n.level for n in notes] == ["missing", "missing"]
    assert "'marketing push' is left out" in notes[0].text and "stage 'awareness'" in notes[0].text
    assert "'trial sales' is left out" in notes[1].text and "evaluation" in notes[1].text
    assert compare_scenarios(history, paths, [push, slow], 1000, 0)["scenario"].tolist() == [
        BASELINE, "slow payers"]
    # applied on its own, the same change is still an error that names it
    with pytest.raises(CashError, match="no outflow series for stage 'awareness'"):
        apply_scenario(paths, scenario_from_dict(push))


def test_compare_scenarios_without_an_opening_balance_leaves_the_risk_empty(history, mixed_paths):
    delay = Scenario("slow payers", (ReceiptDelay(5),))
    table = compare_scenarios(history, mixed_paths, [delay], None, 400)
    assert not table["balance_known"].any()
    assert table["shortfall_probability"].isna().all() and table["runway_days"].isna().all()
    assert table["shortfall_probability"].dtype == float and table["first_breach_date"].isna().all()
    with_balance = compare_scenarios(history, mixed_paths, [delay], 0, 400)
    # the same flows, only the starting point differs
    np.testing.assert_allclose(table["ending_p50"], with_balance["ending_p50"])


def test_compare_scenarios_rejects_repeated_names(history, mixed_paths):
    with pytest.raises(CashError, match="repeated: \\['baseline'\\]"):
        compare_scenarios(history, mixed_paths, [Scenario(BASELINE)], 0, 0)
    with pytest.raises(CashError, match="repeated: \\['a'\\]"):
        compare_scenarios(history, mixed_paths, [Scenario("a"), Scenario("a")], 0, 0)


# ------------------------------------------------------ scenarios from dicts


def test_scenario_from_dict_builds_every_configurable_adjustment():
    scenario = scenario_from_dict(
        {
            "name": "hard winter",
            "adjustments": [
                {"type": "outflow_change", "stage": "awareness", "pct": 20, "start": "2026-11-15"},
                {"type": "one_off_cost", "date": date(2026, 12, 1), "amount": 25000},  # YAML date
                {"type": "demand_shock", "pct": -15, "start": "2026-12-01", "end": "2026-12-31",
                 "stages": ["purchase"]},
                {"type": "receipt_delay", "days": 14},
            ],
        }
    )
    assert scenario == Scenario(
        "hard winter",
        (
            OutflowChange("awareness", 20.0, pd.Timestamp("2026-11-15")),
            OneOffCost(pd.Timestamp("2026-12-01"), 25000.0, "operations"),
            DemandShock(-15.0, pd.Timestamp("2026-12-01"), pd.Timestamp("2026-12-31"), ("purchase",)),
            ReceiptDelay(14),
        ),
    )


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"adjustments": []}, "needs a 'name'"),
        ({"name": "x", "adjustment": []}, "unknown keys \\['adjustment'\\]"),
        ({"name": "x", "adjustments": {"type": "receipt_delay"}}, "list of mappings"),
        (
            {"name": "x", "adjustments": [{"type": "price_rise", "pct": 5}]},
            "unknown type 'price_rise'; types are",
        ),
        ({"name": "x", "adjustments": [{"days": 3}]}, "with a 'type'"),
        (
            {"name": "x", "adjustments": [{"type": "receipt_delay", "days": 3, "stage": "purchase"}]},
            "adjustment 1 \\(receipt_delay\\): unknown fields \\['stage'\\]; fields are \\['days'\\]",
        ),
        (
            {
                "name": "x",
                "adjustments": [
                    {"type": "receipt_delay", "days": 1},
                    {"type": "outflow_change", "stage": "awareness"},
                ],
            },
            "adjustment 2 \\(outflow_change\\): missing fields \\['pct', 'start'\\]",
        ),
        ({"name": "x", "adjustments": [{"type": "extra_flows", "label": "c"}]}, "build ExtraFlows in code"),
        (
            {"name": "x", "adjustments": [{"type": "demand_shock", "pct": -10, "start": "soon"}]},
            "scenario 'x', adjustment 1: demand_shock: start must be a date",
        ),
        ("marketing push", "must be a mapping"),
    ],
)
def test_scenario_from_dict_names_what_is_wrong(mapping, message):
    with pytest.raises(JourneycastError, match=message):
        scenario_from_dict(mapping)


def test_move_commitment_from_a_mapping_and_its_limits():
    paths = make_paths({"purchase|inflow|all": constant(100, 20, 4),
                        "purchase|outflow|committed:stock": constant(0, 20, 4)})
    paths.loc[("purchase|outflow|committed:stock", HORIZON_START + pd.Timedelta(days=3))] = 5000.0
    scenario = scenario_from_dict({"name": "later", "adjustments": [
        {"type": "move_commitment", "category": "stock", "date": "2026-11-04", "days": 7}]})
    moved = apply_scenario(paths, scenario).loc["purchase|outflow|committed:stock"]
    assert moved.loc["2026-11-04"].eq(0).all() and moved.loc["2026-11-11"].eq(5000).all()
    assert moved.to_numpy().sum() == 5000 * 4  # moved, not lost, in every draw
    beyond = apply_scenario(paths, Scenario("past the horizon", (MoveCommitment("stock", "2026-11-04", 30),)))
    assert beyond.loc["purchase|outflow|committed:stock"].to_numpy().sum() == 0
    with pytest.raises(CashError, match="before the forecast horizon"):
        apply_scenario(paths, Scenario("too early", (MoveCommitment("stock", "2026-11-04", -10),)))
    history = make_history({"purchase|inflow|all": 100})
    table, notes = compare_scenarios_with_notes(
        history, paths, [Scenario("rent later", (MoveCommitment("rent", "2026-11-04", 7),))], 1000.0, 0.0)
    assert list(table["scenario"]) == [BASELINE] and "no commitment of category 'rent'" in notes[0].text


def test_days_of_cash_and_low_point_by_hand():
    history = make_history({"purchase|inflow|all": 100, "operations|outflow|all": 50})
    paths = make_paths({"purchase|inflow|all": constant(100, 10, 3), "operations|outflow|all": constant(50, 10, 3),
                        "operations|outflow|committed:rent": constant(0, 10, 3)})
    paths.loc[("operations|outflow|committed:rent", HORIZON_START + pd.Timedelta(days=4))] = 2000.0
    outlook = cash_position(history, paths, 1000.0, 0.0)
    # 1,000 + 10 days x 50 = 1,500 at the last actual day; 50 a day going out
    assert days_of_cash(outlook, history) == pytest.approx(1500 / 50)
    low = low_point(outlook, paths)
    # 1,500 + 5 x 50 - 2,000 on 5 Nov is the lowest; the rent drives it
    assert low.p50 == pytest.approx(-250.0) and low.p50_date == pd.Timestamp("2026-11-05")
    assert low.commitment == {"category": "rent", "stage": "operations", "ds": pd.Timestamp("2026-11-05"),
                              "amount": 2000.0}
    assert low.stage == "operations"
    assert "after the rent payment" in low.sentence(lambda v: f"{v:,.0f}")
    flows_only = cash_position(history, paths, None, None)
    assert days_of_cash(flows_only, history) is None


def test_the_rolling_check_compares_the_balance_an_earlier_run_forecast():
    history = make_history({"purchase|inflow|all": 100})
    paths = make_paths({"purchase|inflow|all": np.tile([[80.0, 100.0, 120.0]], (10, 1))})
    earlier = cash_position(history, paths, 1000.0, 0.0)
    record = balance_record(earlier)
    assert record["ds"][0] == "2026-11-01" and record["p50"][:2] == [2100.0, 2200.0]
    # the next run: three more actual days at 100, 50 and 130 a day
    later_days = pd.date_range(HORIZON_START, periods=3)
    later = pd.concat([history, pd.DataFrame({"unique_id": "purchase|inflow|all", "ds": later_days,
                                               "y": [100.0, 50.0, 130.0], "stage": "purchase",
                                               "direction": "inflow", "segment": "all"})], ignore_index=True)
    now = cash_position(later, make_paths({"purchase|inflow|all": constant(100, 5, 3)},
                                           start=HORIZON_START + pd.Timedelta(days=3)), 1000.0, 0.0)
    check = balance_check(record, now)
    assert check["ds"].tolist() == list(later_days)
    assert check["actual"].tolist() == [2100.0, 2150.0, 2280.0]
    assert check["error"].tolist() == [0.0, -50.0, -20.0]
    # P10 after two days is 2,000 + 2 x 80 = 2,160: 2,150 is below the band
    assert check["within_band"].tolist() == [True, False, True]
    assert balance_check(None, now).empty
