"""Upsell: who is ready to trade up or add an add-on, when, and with which offer.

A transparent scikit-learn model (logistic regression by default, gradient
boosting as an option) scores each customer's propensity to place an upsell
order within the next 90 days from what the shop already knows: recency,
frequency, spend, tenure, the customer's current product tier, and engagement
signals in the events (review reads, wishlist adds, product views, review
ratings). It is judged on a time split -- features up to a cutoff, outcomes
after it -- by AUC, lift in the top decile and calibration.

Product tiers come from the SKU prefix (ESS essentials, PRO pro, ELI elite,
ADD add-ons) when every SKU has one, otherwise from each SKU's unit-price rank.
The suggested offer is the next tier up, or for customers already at the top a
bundle of the add-ons most often bought by customers of that tier, with a
discount that never exceeds the margin the customer is expected to bring.

``suggest_offers`` needs that ladder: a shop whose SKUs carry no tier prefix
(Superstore's product ids, CDNOW's orders without products) gets no offers from it
rather than "upgrades" between unrelated products ranked by price;
``offer_ladder_problem`` says why, and every function here accepts the empty
tables that result. ``personal_offers`` works on any shop with product ids: it
reads a category from each SKU (the part before its last "-": "FUR-BO" of
Superstore's "FUR-BO-10001798"; the tier ladder where SKUs carry one) and a
price band from unit-price quantiles within the category, and offers each
customer the next band of what they bought last, or what customers who bought
the same went on to buy (co-purchase), or else a discount on their usual range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from toolkit.opportunities.segments import OpportunityError, purchases, require_columns, rfm_table

__all__ = [
    "ENGAGEMENT_EVENTS",
    "TIER_PREFIXES",
    "UpsellEvaluation",
    "UpsellModel",
    "addon_bundles",
    "empty_offers",
    "evaluate_upsell",
    "offer_ladder_problem",
    "personal_offers",
    "product_tiers",
    "suggest_offers",
    "upsell_features",
    "upsell_labels",
]

#: SKU prefixes of the product tiers, lowest first, and the prefix of add-ons.
TIER_PREFIXES: dict[str, str] = {"ESS": "essentials", "PRO": "pro", "ELI": "elite"}
ADDON_PREFIX = "ADD"
#: Event types counted as engagement; review ratings are averaged separately.
ENGAGEMENT_EVENTS: tuple[str, ...] = ("review_read", "wishlist_add", "product_view")

_COUNT_FEATURES = ("recency_days", "frequency", "spend", "tenure_days", *ENGAGEMENT_EVENTS)
_LEVEL_FEATURES = ("current_tier", "mean_rating")
FEATURES: tuple[str, ...] = (*_COUNT_FEATURES, *_LEVEL_FEATURES)
#: Upsells a period must hold to train or check the model on it.
MIN_UPSELLS = 10
#: The columns of :func:`suggest_offers`, also when it has no offer to make.
OFFER_COLUMNS: dict[str, str] = {
    "customer_id": "str", "propensity": "float64", "current_tier": "str", "offer": "str",
    "offer_skus": "object", "list_price": "float64", "discount_amount": "float64", "offer_price": "float64",
    "window_start": "datetime64[ns]", "window_end": "datetime64[ns]"}


def _log_count(values: np.ndarray) -> np.ndarray:
    """log(1 + x) of counts, days and money, so a few heavy customers do not dominate."""
    return np.log1p(np.clip(values, 0, None))


def product_tiers(orders: pd.DataFrame, n_tiers: int = 3) -> pd.DataFrame:
    """Tier of every SKU: rank (0 = lowest), name, add-on flag and median unit price.

    SKU prefixes decide when every SKU has a known one; otherwise SKUs are cut
    into ``n_tiers`` groups by their median unit price (add-ons: prefix ADD only).
    """
    require_columns(orders, ("sku", "amount"), "orders")
    bought = purchases(orders)
    quantity = bought["quantity"].clip(lower=1) if "quantity" in bought.columns else 1
    unit = (bought["amount"] / quantity).groupby(bought["sku"]).median()
    prefix = unit.index.str.slice(0, 3).str.upper()
    is_addon = pd.Series(prefix == ADDON_PREFIX, index=unit.index)
    names = list(TIER_PREFIXES.values())
    if set(prefix[~is_addon.to_numpy()]) <= set(TIER_PREFIXES):
        rank = pd.Series(prefix, index=unit.index).map({p: i for i, p in enumerate(TIER_PREFIXES)})
    else:
        main = unit[~is_addon]
        cut = min(n_tiers, main.nunique())
        rank = pd.Series(pd.qcut(main.rank(method="dense"), cut, labels=False), index=main.index)
        names = [f"tier {i + 1}" for i in range(cut)]
    rank = rank.reindex(unit.index).fillna(-1).astype("int64")
    name = rank.map(dict(enumerate(names))).where(~is_addon, "add-on").astype("str")
    return pd.DataFrame({"sku": unit.index, "tier": rank.to_numpy(), "tier_name": name.to_numpy(),
                         "is_addon": is_addon.to_numpy(), "unit_price": unit.to_numpy()})


def offer_ladder_problem(orders: pd.DataFrame) -> str | None:
    """Why no upsell offer can be made from these orders, in words, or None when offers can be made.

    Offers climb the product ladder, so the SKUs must name their tier: a prefix
    ESS, PRO or ELI (essentials, pro, elite), or ADD for add-ons.
    """
    skus = purchases(orders)["sku"].dropna() if "sku" in orders.columns else pd.Series(dtype="str")
    if skus.nunique() < 2:  # an export without products gets one placeholder sku on every line
        return "the orders name no products (no sku, or the same one on every line)"
    prefix = skus.str.slice(0, 3).str.upper()
    if not set(prefix) <= {*TIER_PREFIXES, ADDON_PREFIX}:
        prefixes = ", ".join(f"{p} for {n}" for p, n in TIER_PREFIXES.items())
        return f"the SKUs carry no product tier (a prefix {prefixes}, {ADDON_PREFIX} for add-ons)"
    return None


def empty_offers() -> pd.DataFrame:
    """The offers table with no offer in it."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in OFFER_COLUMNS.items()})


def _with_tiers(orders: pd.DataFrame, tiers: pd.DataFrame) -> pd.DataFrame:
    return purchases(orders).merge(tiers[["sku", "tier", "is_addon"]], on="sku", how="left")


def upsell_labels(orders: pd.DataFrame, start: str | pd.Timestamp, days: int = 90) -> pd.Series:
    """Whether each customer placed an upsell order in the ``days`` days after the day ``start``.

    Upsell orders are those of order_type "upsell"; data that never marks one
    counts an order above the customer's highest tier so far, or an add-on, instead.
    """
    bought = purchases(orders).sort_values("ts", kind="stable")
    if "order_type" in bought.columns and (bought["order_type"] == "upsell").any():
        is_upsell = bought["order_type"] == "upsell"
    else:
        tiered = _with_tiers(bought, product_tiers(orders)).set_index(bought.index)
        best_before = tiered.groupby("customer_id")["tier"].transform(
            lambda t: t.cummax().shift(1))
        is_upsell = (tiered["tier"] > best_before) | (tiered["is_addon"] & best_before.notna())
    begin = pd.Timestamp(start).normalize() + pd.Timedelta(days=1)
    inside = (bought["ts"] >= begin) & (bought["ts"] < begin + pd.Timedelta(days=days))
    return bought[inside & is_upsell].groupby("customer_id").size().gt(0).rename("upsell")


def upsell_features(orders: pd.DataFrame, as_of: str | pd.Timestamp,
                    events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per customer who bought by ``as_of``, indexed by customer_id, columns FEATURES.

    recency_days, frequency, spend (net) and tenure_days come from the RFM table;
    current_tier is the tier of the latest non-add-on purchase; engagement
    counts and mean_rating come from events up to ``as_of`` (0 counts and the
    everyone's mean rating when there are no events).
    """
    day = pd.Timestamp(as_of).normalize()
    rfm = rfm_table(orders, day).set_index("customer_id")
    features = rfm[["recency_days", "frequency", "monetary", "tenure_days"]].rename(
        columns={"monetary": "spend"})
    tiered = _with_tiers(purchases(orders, day), product_tiers(orders))
    main = tiered[~tiered["is_addon"].astype(bool)].sort_values("ts", kind="stable")
    features["current_tier"] = main.groupby("customer_id")["tier"].last().reindex(
        features.index).fillna(0).astype(float)
    counts = pd.DataFrame(0.0, index=features.index, columns=list(ENGAGEMENT_EVENTS))
    mean_rating = pd.Series(np.nan, index=features.index)
    if events is not None:
        seen = events[events["ts"] < day + pd.Timedelta(days=1)]
        seen = seen[seen["customer_id"].isin(features.index)]
        counted = seen[seen["event_type"].isin(ENGAGEMENT_EVENTS)]
        counts = counted.groupby(["customer_id", "event_type"]).size().unstack(fill_value=0).reindex(
            index=features.index, columns=list(ENGAGEMENT_EVENTS), fill_value=0).astype(float)
        reviews = seen[(seen["event_type"] == "review") & seen["value"].notna()]
        mean_rating = reviews.groupby("customer_id")["value"].mean().reindex(features.index)
    overall = mean_rating.mean()
    features[list(ENGAGEMENT_EVENTS)] = counts
    features["mean_rating"] = mean_rating.fillna(overall if pd.notna(overall) else 0.0)
    return features[list(FEATURES)].astype(float)


class UpsellModel:
    """Propensity to place an upsell order, from :func:`upsell_features`.

    Parameters
    ----------
    method : "logistic" (log-scaled counts, standardized, L2 logistic regression:
        its coefficients read as the effect of one standard deviation) or
        "gradient_boosting" (scikit-learn's gradient boosting of shallow trees, for
        effects that are not linear in the log counts; ``weights_`` then holds
        the trees' feature importances).
    seed : random state of the estimator.

    Attributes
    ----------
    estimator_ : the fitted scikit-learn pipeline.
    weights_ : Series per feature: standardized coefficients (logistic) or
        feature importances (gradient boosting).
    """

    def __init__(self, method: str = "logistic", seed: int = 42) -> None:
        if method not in ("logistic", "gradient_boosting"):
            raise OpportunityError(f"method must be 'logistic' or 'gradient_boosting', got {method!r}")
        self.method = method
        self.seed = seed

    def fit(self, features: pd.DataFrame, labels: pd.Series) -> UpsellModel:
        """Fit on features and a boolean label per customer (missing labels count as no upsell)."""
        # scikit-learn is imported on first use: notebooks that only read stored scores skip it
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import GradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        y = labels.reindex(features.index).fillna(False).astype(bool).to_numpy()
        if y.all() or not y.any():
            raise OpportunityError("upsell training data needs customers with and without upsells")
        log_scale = FunctionTransformer(_log_count,
                                        feature_names_out="one-to-one")
        prepare = ColumnTransformer([("log", log_scale, list(_COUNT_FEATURES)),
                                     ("level", "passthrough", list(_LEVEL_FEATURES))],
                                    verbose_feature_names_out=False)
        if self.method == "logistic":
            steps = [("prepare", prepare), ("scale", StandardScaler()),
                     ("model", LogisticRegression(max_iter=1000, random_state=self.seed))]
        else:
            steps = [("prepare", prepare),
                     ("model", GradientBoostingClassifier(n_estimators=150, max_depth=2,
                                                          learning_rate=0.05,
                                                          random_state=self.seed))]
        self.estimator_ = Pipeline(steps).fit(features[list(FEATURES)], y)
        model = self.estimator_["model"]
        weights = model.coef_[0] if self.method == "logistic" else model.feature_importances_
        self.weights_ = pd.Series(weights, index=list(FEATURES), name="weight")
        return self

    def predict_proba(self, features: pd.DataFrame) -> pd.Series:
        """Probability of an upsell order in the label window, per customer."""
        if not hasattr(self, "estimator_"):
            raise OpportunityError("fit the upsell model before scoring")
        proba = self.estimator_.predict_proba(features[list(FEATURES)])[:, 1]
        return pd.Series(proba, index=features.index, name="propensity")


@dataclass(frozen=True)
class UpsellEvaluation:
    """How well upsell propensity ranked and calibrated on a later period.

    ``calibration`` has one row per bin of predicted propensity: predicted
    (mean), observed (upsell rate) and customers. ``features`` are the
    customers' features as of the cutoff and ``scores["upsell"]`` their
    outcomes: together, the training data of a model refitted up to the cutoff.
    ``reason`` says why nothing could be checked (then ``model`` is None and
    the scores NaN), e.g. "not enough upsells to check"; None when checked.
    """

    auc: float
    top_decile_lift: float
    base_rate: float
    calibration: pd.DataFrame
    customers: int
    model: UpsellModel | None
    scores: pd.DataFrame
    features: pd.DataFrame
    reason: str | None = None

    @property
    def checked(self) -> bool:
        """Whether the model could be trained and checked at all."""
        return self.reason is None

    @classmethod
    def not_checked(cls, reason: str, features: pd.DataFrame | None = None,
                    actual: pd.Series | None = None) -> UpsellEvaluation:
        """The evaluation of a model that could not be trained or checked, and why."""
        if features is None:
            features = pd.DataFrame(columns=list(FEATURES), dtype=float,
                                    index=pd.Index([], dtype="str", name="customer_id"))
        if actual is None:
            actual = pd.Series(False, index=features.index, dtype=bool)
        calibration = pd.DataFrame({"bin": pd.Series(dtype="int64"), "predicted": pd.Series(dtype=float),
                                    "observed": pd.Series(dtype=float), "customers": pd.Series(dtype="int64")})
        return cls(auc=float("nan"), top_decile_lift=float("nan"),
                   base_rate=float(actual.mean()) if len(actual) else float("nan"),
                   calibration=calibration, customers=len(features), model=None,
                   scores=pd.DataFrame({"propensity": np.nan, "upsell": actual}, index=features.index),
                   features=features, reason=reason)


def evaluate_upsell(orders: pd.DataFrame, cutoff: str | pd.Timestamp,
                    events: pd.DataFrame | None = None, horizon_days: int = 90,
                    method: str = "logistic", bins: int = 10, seed: int = 42) -> UpsellEvaluation:
    """Train on the period before ``cutoff`` and score the ``horizon_days`` after it.

    Training uses features as of ``cutoff - horizon_days`` and upsells in the
    following ``horizon_days``; the test uses features as of ``cutoff`` and
    upsells in the ``horizon_days`` after it, so nothing from the test period
    leaks into the model. Either period needs ``MIN_UPSELLS`` upsells and a
    customer without one; otherwise the evaluation's ``reason`` says "not
    enough upsells to check" (and no model is fitted).
    """
    from sklearn.metrics import roc_auc_score

    cutoff = pd.Timestamp(cutoff).normalize()
    train_day = cutoff - pd.Timedelta(days=horizon_days)
    if purchases(orders, train_day).empty:
        return UpsellEvaluation.not_checked(
            f"not enough upsells to check: no purchase before {train_day:%Y-%m-%d} to train on")
    test = upsell_features(orders, cutoff, events)
    actual = upsell_labels(orders, cutoff, horizon_days).reindex(test.index).fillna(False).astype(bool)
    train_labels = upsell_labels(orders, train_day, horizon_days)
    counts = (int(train_labels.sum()), int(actual.sum()))
    if min(counts) < MIN_UPSELLS or actual.all():
        reason = (f"not enough upsells to check ({counts[0]} in the {horizon_days} days to train on, "
                  f"{counts[1]} in the {horizon_days} days to check on; {MIN_UPSELLS} needed in each)")
        return UpsellEvaluation.not_checked(reason, test, actual)
    train = upsell_features(orders, train_day, events)
    model = UpsellModel(method, seed).fit(train, train_labels)
    score = model.predict_proba(test)
    base_rate = float(actual.mean())
    top = score.rank(method="first", ascending=False) <= max(1, round(0.1 * len(score)))
    binned = pd.qcut(score.rank(method="first"), bins, labels=False)
    calibration = pd.DataFrame({"predicted": score, "observed": actual.astype(float), "bin": binned})
    calibration = calibration.groupby("bin").agg(predicted=("predicted", "mean"),
                                                 observed=("observed", "mean"),
                                                 customers=("observed", "size")).reset_index()
    return UpsellEvaluation(
        auc=float(roc_auc_score(actual, score)),
        top_decile_lift=float(actual[top].mean() / base_rate) if base_rate > 0 else float("nan"),
        base_rate=base_rate, calibration=calibration, customers=len(test), model=model,
        scores=pd.DataFrame({"propensity": score, "upsell": actual}), features=test)


def _addon_ranking(orders: pd.DataFrame, tiers: pd.DataFrame) -> pd.DataFrame:
    """Per tier, its customers' add-ons ranked by how many of them bought each: tier, sku, customers."""
    tiered = _with_tiers(orders, tiers)
    addon_buyers = tiered[tiered["is_addon"].astype(bool)][["customer_id", "sku"]].drop_duplicates()
    tier_buyers = tiered[~tiered["is_addon"].astype(bool)][["customer_id", "tier"]].drop_duplicates()
    pairs = tier_buyers.merge(addon_buyers, on="customer_id")
    counts = pairs.groupby(["tier", "sku"]).size().rename("customers").reset_index()
    return counts.sort_values(["tier", "customers", "sku"], ascending=[True, False, True], ignore_index=True)


def addon_bundles(orders: pd.DataFrame, bundle_size: int = 2) -> pd.DataFrame:
    """The add-ons most often bought by customers of each tier (customer-level co-occurrence).

    Returns one row per tier with skus (list of add-on SKUs, most co-bought
    first), price (their summed median unit price) and customers (how many of
    the tier's customers bought the first of them).
    """
    tiers = product_tiers(orders)
    counts = _addon_ranking(orders, tiers)
    if counts.empty:
        return pd.DataFrame(columns=["tier", "skus", "price", "customers"])
    price = tiers.set_index("sku")["unit_price"]
    rows = []
    for tier, group in counts.groupby("tier"):
        skus = group["sku"].head(bundle_size).tolist()
        rows.append((int(tier), skus, round(float(price[skus].sum()), 2), int(group["customers"].iloc[0])))
    return pd.DataFrame(rows, columns=["tier", "skus", "price", "customers"])


def suggest_offers(orders: pd.DataFrame, propensity: pd.Series, as_of: str | pd.Timestamp,
                   predictions: pd.DataFrame | None = None, margin_share: float = 0.58,
                   max_discount: float = 0.15, bundle_size: int = 2,
                   horizon_days: int = 90) -> pd.DataFrame:
    """The offer for each scored customer: next tier up, or an add-on bundle at the top tier.

    The bundle is the add-ons most bought by customers of the top tier that
    this customer does not own yet, so customers who already bought some get
    the next ones.

    Parameters
    ----------
    orders : canonical orders (for tiers, prices and bundles).
    propensity : upsell propensity per customer_id (:meth:`UpsellModel.predict_proba`).
    as_of : the day the offers are made.
    predictions : :meth:`RepurchaseModel.predict` output (customer_id,
        expected_value, window_start_days, window_end_days); it times the offer
        and bounds the discount.
    margin_share : gross margin as a share of the price (1 - fulfilment share).
    max_discount : the largest discount offered, as a share of the offer price.

    Returns
    -------
    DataFrame with customer_id, propensity, current_tier, offer, offer_skus,
    list_price, discount_amount (money; a discount elsewhere is a share), offer_price, window_start, window_end,
    highest propensity first. The discount is at most ``max_discount`` of the
    price, never more than the offer's own margin, and never more than the
    margin the customer is expected to bring over ``horizon_days``
    (``margin_share x expected_value``). Empty (same columns) when no customer
    is scored or the shop has no product ladder (:func:`offer_ladder_problem`).
    """
    day = pd.Timestamp(as_of).normalize()
    if propensity.empty or offer_ladder_problem(orders) is not None:
        return empty_offers()
    tiers = product_tiers(orders)
    main = tiers[~tiers["is_addon"]]
    tier_price = main.groupby("tier")["unit_price"].median()
    tier_name = main.groupby("tier")["tier_name"].first()
    top_sku = (_with_tiers(orders, tiers).query("~is_addon").groupby(["tier", "sku"]).size()
               .rename("n").reset_index().sort_values(["tier", "n", "sku"], ascending=[True, False, True])
               .drop_duplicates("tier").set_index("tier")["sku"])
    ranking = _addon_ranking(orders, tiers).groupby("tier")["sku"].agg(list)
    unit_price = tiers.set_index("sku")["unit_price"]
    owned = _with_tiers(purchases(orders, day), tiers).query("is_addon").groupby("customer_id")["sku"].agg(set)
    current = upsell_features(orders, day)["current_tier"].reindex(propensity.index)
    if current.isna().any():
        unknown = ", ".join(map(str, current.index[current.isna()][:5]))
        raise OpportunityError(f"no purchases up to {day.date()} for customers {unknown}: "
                               "offers need each customer's current tier")
    current = current.astype("int64")
    top_tier = int(tier_price.index.max())
    # plain dicts in the loop over customers: a Series look-up costs 75 us, a dict's 0.1 us
    names, prices, tops, price_of = tier_name.to_dict(), tier_price.to_dict(), top_sku.to_dict(), unit_price.to_dict()
    rows = []
    for customer, tier in current.items():
        if tier < top_tier:
            nxt = tier + 1
            rows.append((customer, f"upgrade to {names[nxt]}", [tops[nxt]], float(prices[nxt])))
        elif skus := [sku for sku in ranking.get(tier, []) if sku not in owned.get(customer, set())][:bundle_size]:
            # the add-ons the tier buys most that this customer does not own yet
            rows.append((customer, "add-on bundle " + " + ".join(skus), skus,
                         round(float(sum(price_of[sku] for sku in skus)), 2)))
        else:
            rows.append((customer, "no offer", [], 0.0))
    offers = pd.DataFrame(rows, columns=["customer_id", "offer", "offer_skus", "list_price"])
    offers.insert(1, "propensity", propensity.reindex(offers["customer_id"]).to_numpy())
    offers.insert(2, "current_tier", current.map(tier_name).to_numpy())
    cap = np.minimum(max_discount, margin_share) * offers["list_price"]
    start = pd.Series(np.nan, index=offers.index)
    end = pd.Series(np.nan, index=offers.index)
    if predictions is not None:
        pred = predictions.set_index("customer_id").reindex(offers["customer_id"])
        if "expected_value" in pred.columns:
            cap = np.minimum(cap, margin_share * pred["expected_value"].fillna(0).clip(lower=0).to_numpy())
        start = pd.Series(pred["window_start_days"].clip(1, horizon_days).round().to_numpy())
        end = pd.Series(pred["window_end_days"].clip(1, horizon_days).round().to_numpy())
    offers["discount_amount"] = np.floor(np.round(cap * 100, 6)) / 100  # whole cents, never above the bound
    offers["offer_price"] = offers["list_price"] - offers["discount_amount"]
    offers["window_start"] = day + pd.to_timedelta(start, unit="D")
    offers["window_end"] = day + pd.to_timedelta(end, unit="D")
    return offers.sort_values(["propensity", "customer_id"], ascending=[False, True],
                              ignore_index=True)


#: Names of the price bands within a category, cheapest first, when the SKUs carry no tier.
PRICE_BANDS: tuple[str, ...] = ("entry", "mid-range", "premium")
#: The columns of :func:`personal_offers`.
PERSONAL_OFFER_COLUMNS: dict[str, str] = {
    "customer_id": "str", "offer": "str", "offer_kind": "str", "offer_value": "float64", "max_discount": "float64",
    "offer_sku": "str", "confidence": "float64"}
#: The largest discount any offer carries, whatever the margin allows.
MAX_OFFER_DISCOUNT = 0.3


def product_items(orders: pd.DataFrame, bands: int = len(PRICE_BANDS)) -> pd.DataFrame:
    """Every SKU's category, price band and median unit price: what :func:`personal_offers` climbs.

    With the tier ladder (every SKU prefixed ESS, PRO, ELI or ADD) the category
    is "main" or "add-on" and the band is the tier; otherwise the category is
    the SKU up to its last "-" (the SKU itself when it has none) and the band
    its unit-price quantile among the category's SKUs (``bands`` of them, fewer
    when the category has fewer SKUs). ``item`` names the pair for people.
    """
    tiers = product_tiers(orders)
    if offer_ladder_problem(orders) is None:
        category = np.where(tiers["is_addon"], "add-on", "main")
        band = tiers["tier"].clip(lower=0).to_numpy()
        names = np.where(tiers["is_addon"], "add-ons", tiers["tier_name"])
        return pd.DataFrame({"sku": tiers["sku"], "category": category, "band": band,
                             "item": names, "unit_price": tiers["unit_price"]})
    sku = tiers["sku"].astype(str)
    category = sku.where(~sku.str.contains("-", regex=False), sku.str.rsplit("-", n=1).str[0])
    rank = tiers["unit_price"].groupby(category).rank(method="first", pct=True)
    size = category.map(category.value_counts()).clip(upper=bands)
    band = np.ceil(rank * size).astype("int64") - 1
    band_names = np.asarray(PRICE_BANDS if bands == len(PRICE_BANDS) else [f"band {i + 1}" for i in range(bands)])
    label = np.where(size > 1, category + " " + band_names[np.clip(band, 0, bands - 1)], category)
    return pd.DataFrame({"sku": sku, "category": category.to_numpy(), "band": band.to_numpy(),
                         "item": label, "unit_price": tiers["unit_price"]})


def _customer_items(orders: pd.DataFrame, items: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each customer's purchase lines up to ``as_of`` with the item they fall in, oldest first."""
    lines = purchases(orders, as_of)[["customer_id", "ts", "sku"]].merge(items, on="sku")
    lines = lines.sort_values(["ts", "sku"], kind="stable", ignore_index=True)
    # items numbered 0..n-1 in order of category and band, so positions and keys coincide
    order = lines[["category", "band"]].drop_duplicates().sort_values(["category", "band"])
    number = pd.Series(np.arange(len(order)), index=pd.MultiIndex.from_frame(order))
    return lines.assign(key=number.reindex(pd.MultiIndex.from_frame(lines[["category", "band"]])).to_numpy())


def _bought_next(lines: pd.DataFrame, items: int, customers: int) -> tuple[np.ndarray, np.ndarray]:
    """Who went on to buy what: P(first bought j on a later day | bought i), and the same for everyone.

    The second is the share of all customers who first bought j after their
    own first purchase day: the baseline a home item's buyers are compared with.
    Pairs are formed per customer, so the work grows with the square of the
    items a customer bought, not of the catalogue.
    """
    first = (lines.assign(day=lines["ts"].dt.normalize())
             .groupby(["customer_id", "key"], as_index=False)["day"].min())
    pairs = first.merge(first, on="customer_id", suffixes=("", "_next"))
    later = pairs[pairs["day_next"] > pairs["day"]]
    followed = np.zeros((items, items))
    np.add.at(followed, (later["key"].to_numpy(), later["key_next"].to_numpy()), 1.0)
    buyers = np.bincount(first["key"], minlength=items)
    opened = first.groupby("customer_id")["day"].transform("min")
    share = np.bincount(first.loc[first["day"] > opened, "key"], minlength=items) / customers
    return followed / np.maximum(buyers, 1)[:, None], share


def personal_offers(orders: pd.DataFrame, as_of: str | pd.Timestamp, gross_margin: float,
                    predictions: pd.DataFrame | None = None,
                    max_discount: float = MAX_OFFER_DISCOUNT) -> pd.DataFrame:
    """One offer per customer from their own history: the next band, a co-purchase, or a discount.

    Each customer's home is the item (category and price band, see
    :func:`product_items`) of their latest purchase -- the main range for the
    tier ladder, add-ons aside. Two offers are weighed, each by its price times
    a share of the customers who bought the home item (``confidence``: the
    share who went on to buy the offered item on a later day):

    * ``"next tier"``: the next price band of the home category, weighed by
      the share who took that step;
    * ``"bundle"``: the item of another category that buyers of the home item
      went on to buy, not bought by the customer yet, weighed by how much more
      often they did than customers at large after their first purchase.

    A customer for whom neither exists gets ``"discount"`` on their home item.
    ``max_discount`` (a share of ``offer_value``) stays below the gross margin
    -- an offer never sells below cost -- and, with ``predictions``
    (``RepurchaseModel.predict``: customer_id, expected_value), within the
    margin the customer is expected to bring over the predictions' horizon.

    Returns customer_id, offer (words), offer_kind, offer_value (the offered
    item's median unit price), max_discount, offer_sku (its best-selling SKU)
    and confidence (NaN for a discount); empty (same columns) when the orders
    name no products.
    """
    day = pd.Timestamp(as_of).normalize()
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in PERSONAL_OFFER_COLUMNS.items()})
    if "sku" not in orders.columns or purchases(orders, day)["sku"].nunique() < 2:
        return empty
    items = product_items(orders)
    lines = _customer_items(orders, items, day)
    if lines.empty:
        return empty
    catalogue = (lines.groupby("key").agg(category=("category", "first"), band=("band", "first"),
                                           item=("item", "first"), price=("unit_price", "median"))
                 .sort_index())
    top_sku = lines.groupby(["key", "sku"]).size().rename("n").reset_index().sort_values(
        ["key", "n", "sku"], ascending=[True, False, True]).drop_duplicates("key").set_index("key")["sku"]
    customers, customer_codes = np.unique(lines["customer_id"].astype(str), return_inverse=True)
    bought = np.zeros((len(customers), len(catalogue)), bool)
    bought[customer_codes, lines["key"].to_numpy()] = True
    confidence, share = _bought_next(lines, len(catalogue), len(customers))
    main = lines[lines["category"] != "add-on"] if (lines["category"] != "add-on").any() else lines
    home = main.groupby("customer_id")["key"].last().reindex(customers).fillna(
        lines.groupby("customer_id")["key"].last().reindex(customers)).astype("int64").to_numpy()
    category = catalogue["category"].to_numpy()
    band = catalogue["band"].to_numpy()
    price = catalogue["price"].to_numpy(dtype=float)
    rows = np.arange(len(customers))
    # a step up the home range counts every buyer who took it; another range only what buyers of the
    # home item go on to buy more often than customers at large: what everyone buys says nothing about them
    same = category[None, :] == category[home][:, None]
    above = same & (band[None, :] == band[home][:, None] + 1)
    upgrade_score = np.where(above & ~bought, confidence[home] * price[None, :], 0.0)
    associated = np.clip(confidence[home] - share[None, :], 0, None)
    bundle_score = np.where(~same & ~bought, associated * price[None, :], 0.0)
    upgrade, bundle = upgrade_score.argmax(axis=1), bundle_score.argmax(axis=1)
    best_upgrade, best_bundle = upgrade_score[rows, upgrade], bundle_score[rows, bundle]
    kind = np.where((best_upgrade > 0) & (best_upgrade >= best_bundle), "next tier",
                    np.where(best_bundle > 0, "bundle", "discount"))
    key = np.where(kind == "next tier", upgrade, np.where(kind == "bundle", bundle, home))
    words = {"next tier": "upgrade to ", "bundle": "add ", "discount": "discount on "}
    offer = [words[k] + catalogue["item"].iloc[i] for k, i in zip(kind, key)]
    value = price[key]
    cap = np.full(len(customers), min(max_discount, gross_margin - 0.01))
    if predictions is not None and "expected_value" in predictions.columns:
        expected = predictions.set_index(predictions["customer_id"].astype(str))["expected_value"].reindex(customers)
        # a customer the predictions do not cover keeps the margin's bound alone
        cap = np.minimum(cap, gross_margin * expected.fillna(np.inf).clip(lower=0).to_numpy() / np.maximum(value, 1e-9))
    out = pd.DataFrame({
        "customer_id": customers, "offer": offer, "offer_kind": kind, "offer_value": value,
        "max_discount": np.floor(np.clip(cap, 0, None) * 100) / 100,  # whole percent, never above the bound
        "offer_sku": top_sku.reindex(key).to_numpy(),
        "confidence": np.where(kind == "discount", np.nan, confidence[home, key])})
    return out.astype(PERSONAL_OFFER_COLUMNS)
