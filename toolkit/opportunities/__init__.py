"""Opportunities: which customers will buy again or buy more, when, and can we afford to ask.

``segments``   RFM scores, named segments and value tiers
``repurchase`` BG/NBD or Pareto/NBD and Gamma-Gamma: P(alive), expected purchases, CLV
``signals``    recent events (carts, wishlists, reviews, support) + the model -> ranked re-purchase list
``upsell``     propensity to trade up, its time-split evaluation, and the offer to make
``planner``    natural purchase timing, incremental lift, and the campaign plan under cash risk
``experiments`` what past campaigns earned over their control groups, with intervals
``uplift``     who is persuadable: incremental response per customer, checked against random targeting

pymc-marketing (with pymc and pytensor) loads only when a Pareto/NBD is fitted or used.
"""

from toolkit.opportunities.repurchase import (ASSUMED_DROPOUT, MIN_REPEAT_CUSTOMERS, HoldoutCheck,
                                              RepurchaseModel, fit_problem, holdout_check, no_predictions,
                                              probability_alive_matrix, repeat_customers, summary_from_orders)
from toolkit.opportunities.segments import (DEFAULT_SEGMENT_RULES, OpportunityError, SegmentRule,
                                            assign_segments, customer_segments, net_spend,
                                            purchases, rfm_table, value_tiers)
from toolkit.opportunities.signals import (DEFAULT_SIGNALS, Signal, recent_signals,
                                           repurchase_opportunities)
from toolkit.opportunities.planner import (ASSUMED_GROSS_MARGIN, ASSUMED_LIFT_NOTE, LIFT_COLUMNS, LIFT_SOURCES,
                                           CampaignPlan, CampaignPlanner, assumed_lift, gross_margin_or_assumed,
                                           launch_days, lift_table, planner_customers, purchase_timing,
                                           reachable_share, weekly_seasonality, window_chance)
from toolkit.opportunities.upsell import personal_offers, product_items
from toolkit.opportunities.experiments import (CampaignResults, MeasuredLift, SampleRatioCheck, contact_outcomes,
                                               measure_campaigns, measured_lift, sample_ratio_check,
                                               segments_at_send)
from toolkit.opportunities.uplift import (UpliftEvaluation, UpliftModel, customer_features, evaluate_uplift,
                                          features_when_silent)
from toolkit.opportunities.upsell import (UpsellEvaluation, UpsellModel, addon_bundles, empty_offers,
                                          evaluate_upsell, offer_ladder_problem, product_tiers,
                                          suggest_offers, upsell_features, upsell_labels)

__all__ = [
    "ASSUMED_DROPOUT",
    "ASSUMED_GROSS_MARGIN",
    "ASSUMED_LIFT_NOTE",
    "DEFAULT_SEGMENT_RULES",
    "DEFAULT_SIGNALS",
    "MIN_REPEAT_CUSTOMERS",
    "CampaignPlan",
    "CampaignResults",
    "MeasuredLift",
    "SampleRatioCheck",
    "UpliftEvaluation",
    "UpliftModel",
    "contact_outcomes",
    "customer_features",
    "evaluate_uplift",
    "measure_campaigns",
    "measured_lift",
    "sample_ratio_check",
    "segments_at_send",
    "CampaignPlanner",
    "HoldoutCheck",
    "LIFT_COLUMNS",
    "LIFT_SOURCES",
    "OpportunityError",
    "RepurchaseModel",
    "SegmentRule",
    "Signal",
    "UpsellEvaluation",
    "UpsellModel",
    "addon_bundles",
    "assumed_lift",
    "assign_segments",
    "customer_segments",
    "empty_offers",
    "evaluate_upsell",
    "features_when_silent",
    "fit_problem",
    "gross_margin_or_assumed",
    "holdout_check",
    "launch_days",
    "lift_table",
    "net_spend",
    "no_predictions",
    "offer_ladder_problem",
    "personal_offers",
    "planner_customers",
    "probability_alive_matrix",
    "product_items",
    "product_tiers",
    "purchase_timing",
    "purchases",
    "reachable_share",
    "recent_signals",
    "repeat_customers",
    "repurchase_opportunities",
    "rfm_table",
    "suggest_offers",
    "summary_from_orders",
    "upsell_features",
    "upsell_labels",
    "value_tiers",
    "weekly_seasonality",
    "window_chance",
]
