"""The committed sample is exactly what the generator makes, and it carries what it promises."""

from __future__ import annotations

import filecmp

import pandas as pd

from conftest import SAMPLE_DIR
from toolkit import sample
from toolkit.cli import main


def test_regeneration_reproduces_committed_sample_exactly(tmp_path):
    assert main(["sample", "--out", str(tmp_path)]) == 0
    for name in ("orders.csv", "events.csv", "costs.csv", "contacts.csv", "campaigns.csv",
                 "commitments.csv", "balances.csv"):
        assert filecmp.cmp(tmp_path / name, SAMPLE_DIR / name, shallow=False), name


def test_seed_and_size_change_the_data():
    small = sample.generate(customers=300, seed=1)
    other = sample.generate(customers=300, seed=2)
    assert small["events"].customer_id.nunique() == 300
    assert not small["orders"].equals(other["orders"])


def test_planted_shape_of_the_sample():
    tables = sample.generate(customers=3000, seed=3)
    orders, events, costs = tables["orders"], tables["events"], tables["costs"]
    # every table stays inside the sample period
    for frame in tables.values():
        assert frame.ts.min() >= sample.START and frame.ts.max() <= sample.END + pd.Timedelta(days=1)
    # all three order types, refunds as negative amounts, cancellations kept
    assert set(orders.order_type) == {"new", "repeat", "upsell"}
    assert (orders.loc[orders.status == "refunded", "amount"] < 0).all()
    assert (orders.status == "cancelled").any()
    # each buyer's first order is "new", and only the first
    firsts = orders[orders.amount > 0].sort_values("ts").groupby("customer_id").order_type.first()
    assert (firsts == "new").all()
    new_sales = orders[(orders.order_type == "new") & (orders.amount > 0)]
    assert new_sales.customer_id.is_unique
    # touchpoints for every stage and costs for every stage
    from toolkit.config import DEFAULT_STAGE_MAP

    assert set(events.event_type) == set(DEFAULT_STAGE_MAP)
    assert set(costs.stage) == {"awareness", "consideration", "evaluation", "purchase",
                                "post-purchase", "operations"}
    # weekly seasonality: Mondays busier than Saturdays
    by_weekday = orders[orders.amount > 0].groupby(orders.ts.dt.day_of_week).size()
    assert by_weekday[0] > 1.3 * by_weekday[5]


def test_messy_export_carries_what_real_exports_do(tmp_path):
    assert main(["sample", "--messy", "--out", str(tmp_path), "--customers", "2000", "--seed", "3"]) == 0
    export = pd.read_csv(tmp_path / "orders.csv", dtype=str, keep_default_na=False)
    assert (tmp_path / "journeycast.yml").exists() and not (tmp_path / "costs.csv").exists()
    ts = pd.to_datetime(export["InvoiceDate"], format="%d/%m/%Y %H:%M")
    # one year, day-first dates, a closed Christmas week and a last day cut off mid-morning
    assert ts.min() >= sample.MESSY_START and ts.max() < sample.END + pd.Timedelta(hours=sample.MESSY_CUTOFF_HOUR)
    assert not ts.between(*sample.MESSY_CLOSURE).any()
    assert (ts.dt.day > 12).any()
    # order lines: orders with several lines; guests; cancellations as C-invoices with negative quantities
    assert export["InvoiceNo"].duplicated().any()
    assert (export["CustomerID"] == "").any() and (export["CustomerID"] != "").any()
    returns = export["InvoiceNo"].str.startswith("C")
    assert returns.any() and (export.loc[returns, "Quantity"].astype(int) < 0).all()
    assert (export.loc[~returns, "Quantity"].astype(int) > 0).all()
    # the same arguments give the same file
    again = tmp_path / "again"
    assert main(["sample", "--messy", "--out", str(again), "--customers", "2000", "--seed", "3"]) == 0
    assert filecmp.cmp(tmp_path / "orders.csv", again / "orders.csv", shallow=False)


def test_past_campaigns_carry_the_planted_uplift(sample_tables):
    """Treated minus control two-week purchase rates per planted segment, on the committed sample."""
    orders, events = sample_tables["orders"], sample_tables["events"]
    contacts, campaigns = sample_tables["contacts"], sample_tables["campaigns"]
    assert set(campaigns.campaign_id) == set(sample.PAST_CAMPAIGNS) == set(contacts.campaign_id)
    assert set(contacts.group) == {"treatment", "control"}
    # every contact is a buyer once, per campaign, and the control share is the planned one
    assert not contacts.duplicated(["campaign_id", "customer_id"]).any()
    assert contacts.customer_id.isin(orders.customer_id).all()
    share = contacts.groupby("campaign_id").group.apply(lambda g: (g == "control").mean())
    assert share.between(0.11, 0.19).all()
    # the variants' set-up costs add up to one campaign's
    assert campaigns.groupby("campaign_id").fixed_cost.sum().eq(sample.CAMPAIGN_FIXED_COST).all()
    rows = []
    for campaign_id, sent in contacts.groupby("campaign_id"):
        send = sent.ts.iloc[0]
        segments = sample.campaign_segments(orders, events, send)
        end = send.normalize() + pd.Timedelta(days=sample.CAMPAIGN_RESPONSE_DAYS)
        window = orders[orders.ts.between(send, end, inclusive="left") & (orders.amount > 0)
                        & (orders.status == "completed")]
        rows.append(sent.assign(segment=sent.customer_id.map(segments.segment),
                                bought=sent.customer_id.isin(window.customer_id)))
    contacted = pd.concat(rows)
    assert contacted.segment.notna().all()
    rate = contacted.groupby(["segment", "group"]).bought.mean().unstack("group")
    effect = rate["treatment"] - rate["control"]
    assert effect["persuadable"] > 0.15
    assert effect["do not disturb"] < 0
    assert abs(effect["other"]) < 0.05
    assert effect["persuadable"] > effect["other"] + 0.1 and effect["persuadable"] > effect["sure thing"] + 0.1


def _planted_segments_at_send(tables: dict) -> pd.Series:
    """Each past contact's planted segment on the day it was sent (what the generator acted on)."""
    contacts = tables["contacts"]
    segment = pd.Series("other", index=contacts.index, dtype=object)
    for sent, part in contacts.groupby("ts"):
        found = sample.campaign_segments(tables["orders"], tables["events"], sent)["segment"]
        segment[part.index] = part["customer_id"].map(found).fillna("other").to_numpy()
    return segment


def test_measurement_recovers_the_planted_effects_within_their_intervals(sample_tables):
    """Past campaigns measured per planted segment and discount: the planted lift lies in each 95% interval."""
    from toolkit.opportunities import contact_outcomes, measure_campaigns, measured_lift

    outcomes = contact_outcomes(sample_tables["contacts"], sample_tables["campaigns"], sample_tables["orders"])
    planted = _planted_segments_at_send({**sample_tables, "contacts": outcomes})
    results = measure_campaigns(outcomes.assign(planted=planted), sample_tables["campaigns"], gross_margin=0.58,
                                by="planted", seed=7)
    lift = measured_lift(results, sample_tables["campaigns"]).table.set_index(["planted", "discount"])
    for discount in (0.1, 0.2):
        for segment in ("persuadable", "other"):
            truth = sample.PLANTED_CAMPAIGN_EFFECTS[segment] * sample.PLANTED_DISCOUNT_RESPONSE[discount]
            row = lift.loc[(segment, discount)]
            assert row["incremental_probability_low"] <= truth <= row["incremental_probability_high"], (segment,
                                                                                                        discount)
    persuadable, sure = lift.loc[("persuadable", 0.1)], lift.loc[("sure thing", 0.1)]
    assert persuadable["incremental_probability_low"] > sure["incremental_probability_high"]
    # do not disturb loses purchases: its point estimate is negative at both discounts
    assert (lift.loc["do not disturb", "incremental_probability"] < 0).all()


def test_the_sample_has_persuadables_now_and_a_squeeze_before_its_credit_line(sample_tables):
    """The planted best plan's ingredients: browsing lapsing buyers at the data's end, stock before the credit line."""
    orders, events = sample_tables["orders"], sample_tables["events"]
    now = sample.campaign_segments(orders, events, sample.END + pd.Timedelta(days=1))
    later = sample.campaign_segments(orders, events, sample.END + pd.Timedelta(days=29))
    assert (now["segment"] == "persuadable").sum() > 100
    assert (later["segment"] == "persuadable").sum() < 0.5 * (now["segment"] == "persuadable").sum()  # views expire
    commitments = sample_tables["commitments"].set_index("description")
    holiday = commitments[(commitments["ts"] == pd.Timestamp("2026-11-09")) & (commitments["direction"] == "out")]
    assert holiday["amount"].sum() == 85_000.0  # the stock and its supplies, paid the same day
    assert commitments.loc["seasonal credit line drawn", "ts"] == pd.Timestamp("2026-11-13")


def test_bad_order_lines_go_in_at_their_time_and_leave_the_good_lines_as_they_are():
    orders = sample.generate(customers=300, seed=1)["orders"]
    good = orders.assign(ts=orders["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).to_csv(
        index=False, float_format="%.2f", lineterminator="\n")
    written = sample.with_bad_order_lines(good, orders["ts"]).splitlines()
    bad = [text for _, text in sample.BAD_ORDER_LINES]
    assert all(written.count(text) == 1 for text in bad)
    kept = [line for line in written if line not in bad]  # the good lines, one of them twice
    twice = [i for i in range(1, len(kept)) if kept[i] == kept[i - 1]]
    assert len(twice) == 1 and kept[:twice[0]] + kept[twice[0] + 1:] == good.splitlines()
    assert kept[twice[0]].split(",")[2] >= sample.DUPLICATED_ORDER_DAY > kept[twice[0] - 2].split(",")[2]
    # each bad line sits among the lines of its time, so the file stays in time order around it
    for at, text in sample.BAD_ORDER_LINES:
        position = written.index(text)
        before, after = written[position - 1].split(",")[2], written[position + 1].split(",")[2]
        assert before < at <= after, text


def test_the_committed_sample_shows_page_01_its_rejects(sample_dir, sample_config):
    from toolkit.ingest import load_tables

    result = load_tables(sample_dir, sample_config)
    counts = result.counts["orders"]
    assert counts["rejected"] == len(sample.BAD_ORDER_LINES) + 1
    assert counts["rows_in"] == counts["accepted"] + counts["rejected"]
    assert set(result.rejects["column"]) == {"ts", "quantity", "order_type", "amount", "order_id"}
    assert not result.tables["orders"]["order_id"].isin(["O900001", "O900002", "O900003", "O900004"]).any()
