"""One validated run configuration.

Everything a run needs to know about the business and its data lives in one
YAML file (``journeycast.yml`` in the data directory by default). Every key has
a default that fits ``data/sample``, so the toolkit runs with no file at all.
Unknown keys and wrong types are errors that name the file and the key, so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolkit.errors import JourneycastError
from toolkit.schema import STAGES

CONFIG_FILENAME = "journeycast.yml"

#: Which journey stage each touchpoint event belongs to (the sample shop's events).
DEFAULT_STAGE_MAP: dict[str, str] = {
    "ad_click": "awareness",
    "site_visit": "awareness",
    "product_view": "consideration",
    "wishlist_add": "consideration",
    "cart_add": "consideration",
    "cart_abandon": "consideration",
    "trial_start": "evaluation",
    "demo_request": "evaluation",
    "review_read": "evaluation",
    "purchase": "purchase",
    "support_ticket": "post-purchase",
    "support_resolved": "post-purchase",
    "review": "post-purchase",
    "loyalty_signup": "post-purchase",
}


class ConfigError(JourneycastError, ValueError):
    """The configuration file is missing, unreadable or invalid."""


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a few hundred bytes of nested aliases
    (a "billion laughs" file) would otherwise expand to gigabytes once read."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not allowed", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml_file(path: Path, what: str, error: type[Exception]) -> Any:
    """A YAML file parsed safely, aliases refused before they expand (a few bytes could expand to gigabytes).

    Every problem -- no such file, not YAML, not UTF-8 -- is ``error`` with one
    line naming the file; ``what`` says what the file should be.
    """
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {_yaml_problem(exc)}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text: {exc}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one line: what is wrong and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where one canonical table comes from.

    Exactly one of ``path`` (CSV, Parquet or DuckDB file, relative to the data
    directory), ``query`` (read-only SQL run against ``database``) or ``table``
    (a table of ``database``) says where the rows are; a text file may separate
    its fields by runs of blanks (``delimiter: whitespace``, or found from the
    header). ``columns`` maps source column names to canonical ones
    (``line_id`` names a column that tells identical order lines apart);
    unmapped canonical names are looked up as is, case-insensitively, unless
    the mapping gives that name to another column.

    A source the configuration names is required: when it is missing, the run
    stops naming it (a typo in a path must not silently drop a table). Only
    ``required: false`` makes a named source optional, as the built-in
    defaults of every table but orders are. Orders too may be ``required:
    false`` when the contacts carry the campaign outcomes (a results export).

    ``values`` gives constant values for canonical columns the source lacks
    (e.g. ``{campaign_id: hillstrom-2008-03, ts: "2008-03-01"}``), read like
    the source's own text. ``control_variant`` (contacts): the variant whose
    rows are the control group, when the export has no group column.
    ``outcomes`` (contacts): further result columns of a results export
    (e.g. Hillstrom's ``visit``), measured after the send: never a feature of
    the uplift model nor an attribute of the pre-send balance check.
    """

    path: str | None = None
    database: str | None = Field(
        default=None, description="DuckDB file (relative to the data dir) or SQL URL"
    )
    table: str | None = None
    query: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    required: bool = True
    cancellation_prefix: str | None = Field(
        default=None, description="orders: ids starting with this mark cancellation/return lines (e.g. 'C')")
    values: dict[str, str] = Field(default_factory=dict,
                                   description="constant values of canonical columns the source lacks")
    control_variant: str | None = Field(
        default=None, description="contacts: the variant held out as control (e.g. 'No E-Mail')")
    outcomes: list[str] = Field(
        default_factory=list, description="contacts: result columns beside converted and revenue (e.g. visit)")

    @model_validator(mode="after")
    def _one_location(self) -> "Source":
        if self.query and self.table:
            raise ValueError("give either 'query' or 'table', not both")
        if (self.query or self.table) and not self.database:
            raise ValueError("'query' and 'table' need 'database'")
        if self.path and self.database and not (self.query or self.table):
            raise ValueError("give either 'path' or 'database' with 'table'/'query'")
        return self


#: The tables a source can feed (``toolkit.schema``), in the order they are read.
SourceName = Literal["orders", "events", "costs", "contacts", "campaigns", "balances", "commitments"]


def _default_sources() -> dict[str, Source]:
    """``<table>.csv`` in the data directory for every table; only orders must be there."""
    return {name: Source(path=f"{name}.csv", required=name == "orders") for name in SourceName.__args__}


class CampaignSettings(_Strict):
    """What a campaign costs and may spend, and the lift assumed when none is measured; the planner starts from these."""

    cost_per_contact: float = Field(default=2.0, ge=0, description="money per contacted customer")
    fixed_cost: float = Field(default=0.0, ge=0, description="money at launch (creative, agency, platform)")
    prior_lift: float = Field(default=0.10, ge=0, le=2, description=(
        "relative lift over each customer's natural purchase chance, assumed (not measured) when no past "
        "campaign with a control group can be measured"))
    budget: float | None = Field(default=None, ge=0, description="most money a planned campaign may spend up "
                                                                 "front (contacts and fixed cost); None: no cap")
    plan_discounts: list[float] = Field(default_factory=lambda: [0.0, 0.1, 0.2], min_length=1, description=(
        "the discounts the campaign planner may give a segment (shares of the offer price)"))


class PaymentTiming(_Strict):
    """When money moves, counted from the day of the sale, refund or cost booking (default: that same day).

    Card sales settle a few days later, suppliers are paid on terms: the bank
    sees the money then, so the balance follows these dates.
    """

    sales_days: int = Field(default=0, ge=0, le=90, description="days until a sale's money arrives")
    sales_business_days: bool = Field(default=False, description="count sales_days in business days "
                                                                  "(no weekends or public holidays)")
    refunds_days: int = Field(default=0, ge=0, le=90, description="days until a refund leaves the account")
    costs_days: int = Field(default=0, ge=0, le=180, description="payment terms: days until a cost is paid")

    def sentence(self) -> str:
        """The timing in words, for a page or a note."""
        if self == PaymentTiming():
            return "Every sale, refund and cost is taken as paid on the day it is booked."
        unit = "business days" if self.sales_business_days else "days"
        return (f"Sales reach the bank {self.sales_days} {unit} after the sale, refunds leave it "
                f"{self.refunds_days} days after they are booked and costs are paid {self.costs_days} days "
                "after booking.")


class Config(_Strict):
    """The run configuration: data layout, business facts and model settings."""

    sources: dict[SourceName, Source] = Field(default_factory=_default_sources)
    stage_map: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STAGE_MAP))
    delimiter: str | None = Field(default=None, description="None: found from the header; 'whitespace': runs of "
                                                           "blanks separate the fields")
    encoding: str = "utf-8"
    date_format: str | None = Field(default=None, description="strftime format; None: ISO 8601")
    timezone: str = Field(
        default="UTC", description="business-local zone; aware timestamps are converted to it"
    )
    currency: str = "USD"
    opening_balance: float | None = Field(
        default=None, description="cash at the start of the data; None: unknown, pages show flows, not a balance")
    minimum_cash: float = Field(default=0.0, description="the balance cash must not fall below")
    holiday_country: str | None = Field(
        default="auto", description="ISO country of the public holidays; 'auto': from currency and timezone; "
                                    "None: no holidays")
    horizon: int = Field(default=90, ge=1, le=1095, description="forecast horizon in periods")
    segment: str | None = Field(
        default=None, description="split each stage series by this column (e.g. 'channel'); None: one series per "
                                  "stage and direction")
    uncertainty_samples: int = Field(
        default=300, ge=10, le=5000, description="simulated paths per forecast series; more gives smoother bands "
                                                 "but runs slower")
    frequency: Literal["D", "W", "MS"] = "D"
    conversion_window_days: int = Field(default=90, ge=1)
    risk_limit: float = Field(default=0.05, gt=0, lt=1, description="max shortfall probability")
    discount_rate: float = Field(default=0.10, ge=0, lt=1, description="annual, for CLV")
    gross_margin: float | None = Field(
        default=None, gt=0, le=1,
        description="share of a sale left after goods and shipping; None: unknown (said where it matters)")
    max_reject_share: float = Field(
        default=0.05, ge=0, le=1, description="more rejected rows than this share is an error")
    campaign: CampaignSettings = Field(default_factory=CampaignSettings)
    seed: int = 42
    payment_timing: PaymentTiming = Field(default_factory=PaymentTiming)
    balance_tolerance: float = Field(
        default=0.02, gt=0, lt=1, description="largest unexplained gap between the bank's balance and the "
                                              "cash flows, as a share of the typical balance")

    @field_validator("sources", mode="after")
    @classmethod
    def _default_files_beside(cls, value: dict[str, Source]) -> dict[str, Source]:
        # a table the configuration does not name is still read from its default file when present
        return {**_default_sources(), **value}

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Berlin'") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}; use e.g. 'utf-8', 'cp1252' or 'latin-1'") from None
        return value

    @field_validator("date_format")
    @classmethod
    def _readable_date_format(cls, value: str | None) -> str | None:
        # DuckDB reads the dates, so DuckDB judges the format
        if value is not None:
            try:
                duckdb.execute("SELECT try_strptime('', $1)", [value])
            except duckdb.Error as exc:
                raise ValueError(f"date_format {value!r} cannot be read: {str(exc).splitlines()[0]}") from None
        return value

    @model_validator(mode="after")
    def _known_stages(self) -> "Config":
        unknown = sorted({s for s in self.stage_map.values() if s not in STAGES})
        if unknown:
            raise ValueError(f"stage_map uses unknown stages {unknown}; stages are {list(STAGES)}")
        return self


def load_config(data_dir: str | Path | None = None, config_file: str | Path | None = None) -> Config:
    """Read and validate the run configuration.

    ``config_file`` wins; else ``<data_dir>/journeycast.yml`` if it exists
    (beside the file when ``data_dir`` is the orders file itself); else the
    defaults. Errors name the file and the offending key.
    """
    path = Path(config_file) if config_file else None
    folder = Path(data_dir) if data_dir is not None else None
    if folder is not None and folder.is_file():
        folder = folder.parent
    if path is None and folder is not None and (folder / CONFIG_FILENAME).exists():
        path = folder / CONFIG_FILENAME
    if path is None:
        return Config()
    raw = read_yaml_file(path, "configuration file", ConfigError) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict, source: str = "<config>") -> Config:
    """Validate a mapping of settings (e.g. notebook parameters) into a Config."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(str(p) for p in err['loc']) or '(top level)'}': "
            f"{err['msg'].removeprefix('Value error, ')}"  # pydantic's wording for our own checks
            for err in exc.errors()
        )
        raise ConfigError(f"{source}: invalid configuration: {problems}") from None


def with_settings(config: Config, settings: Mapping[str, Any], source: str = "<parameters>") -> Config:
    """``config`` with ``settings`` put in, each checked by its rule; a None value leaves the setting as it is.

    This is how a run-time override (``--horizon``, a page's ``horizon``
    parameter) reaches the run: by name, top-level settings and ``campaign``
    ones (``budget``) alike, so every page and command reads one configuration.
    Unknown names are a ``ConfigError``.
    """
    given = {name: value for name, value in settings.items() if value is not None}
    unknown = sorted(set(given) - set(Config.model_fields) - set(CampaignSettings.model_fields))
    if unknown:
        raise ConfigError(f"{source}: unknown settings {unknown}")
    if not given:
        return config
    raw = config.model_dump()
    for name, value in given.items():
        if name in Config.model_fields:
            raw[name] = value
        else:
            raw["campaign"] = {**raw["campaign"], name: value}
    return config_from_dict(raw, source)


def check_setting(name: str, value: Any, source: str = "<parameter>") -> None:
    """Raise ``ConfigError`` when ``value`` breaks the rule of the setting ``name``.

    A run-time override (``--horizon``, ``-p budget 2000``) obeys the same rules
    as the configuration file, checked before anything runs. ``name`` is a
    top-level setting or a ``campaign`` one; other names and None pass.
    """
    if value is None:
        return
    if name in Config.model_fields:
        config_from_dict({name: value}, source)
    elif name in CampaignSettings.model_fields:
        config_from_dict({"campaign": {name: value}}, source)
