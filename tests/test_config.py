"""The run configuration: defaults that fit the sample, errors that name the file and the key."""

from __future__ import annotations

import pytest

from toolkit.config import CONFIG_FILENAME, DEFAULT_STAGE_MAP, Config, ConfigError, load_config
from toolkit.errors import JourneycastError
from toolkit.schema import STAGES


def _write(tmp_path, text: str):
    path = tmp_path / CONFIG_FILENAME
    path.write_text(text)
    return path


def test_defaults_without_a_file(tmp_path):
    config = load_config(tmp_path)
    assert config == Config()
    assert config.sources["orders"].path == "orders.csv" and config.sources["orders"].required
    assert not config.sources["events"].required
    assert config.stage_map == DEFAULT_STAGE_MAP
    assert set(config.stage_map.values()) == set(STAGES)
    assert config.horizon == 90 and config.encoding == "utf-8" and config.delimiter is None


def test_sample_file_sets_the_business_facts(sample_dir):
    config = load_config(sample_dir)
    assert config.opening_balance == 300000 and config.minimum_cash == 100000
    assert config.currency == "USD" and config.timezone == "UTC"


def test_explicit_file_wins_over_data_dir(tmp_path, sample_dir):
    path = tmp_path / "other.yml"
    path.write_text("horizon: 30\n")
    assert load_config(sample_dir, path).horizon == 30


def test_empty_file_gives_defaults(tmp_path):
    _write(tmp_path, "# nothing set\n")
    assert load_config(tmp_path) == Config()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("horizonn: 30\n", "'horizonn'"),                                   # unknown key
        ("horizon: soon\n", "'horizon'"),                                   # wrong type
        ("horizon: 0\n", "'horizon'"),                                      # out of range
        ("risk_limit: 1.5\n", "'risk_limit'"),
        ("sources:\n  orders:\n    path: o.csv\n    colums: {}\n", "'sources.orders.colums'"),
        ("sources:\n  refunds:\n    path: r.csv\n", "'sources.refunds"),
        ("stage_map:\n  webinar: nurture\n", "unknown stages ['nurture']"),
    ],
)
def test_invalid_settings_name_the_file_and_key(tmp_path, text, key):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid configuration")
    assert key in message


def test_bad_yaml_names_the_file(tmp_path):
    path = _write(tmp_path, "horizon: [30\n")
    with pytest.raises(ConfigError, match="not valid YAML") as caught:
        load_config(tmp_path)
    assert str(caught.value).startswith(str(path))


def test_a_list_instead_of_a_mapping_is_refused(tmp_path):
    path = _write(tmp_path, "- horizon\n- 30\n")
    with pytest.raises(ConfigError, match="expected a mapping of settings, got list") as caught:
        load_config(tmp_path)
    assert str(caught.value).startswith(str(path))


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="configuration file not found") as caught:
        load_config(tmp_path, tmp_path / "nope.yml")
    assert isinstance(caught.value, JourneycastError)
    assert "nope.yml" in str(caught.value)


def test_config_is_frozen():
    config = Config()
    with pytest.raises(ValueError):
        config.horizon = 10


def test_every_table_has_an_optional_default_file_even_beside_named_sources(tmp_path):
    config = load_config(tmp_path, _write(tmp_path, "sources:\n  contacts:\n    path: results.csv\n"
                                                    "    control_variant: No E-Mail\n"
                                                    "    values: {campaign_id: spring}\n"))
    assert list(config.sources) == ["orders", "events", "costs", "contacts", "campaigns", "balances", "commitments"]
    assert config.sources["orders"].required and config.sources["contacts"].required
    assert [config.sources[n].path for n in ("campaigns", "balances", "commitments")] == [
        "campaigns.csv", "balances.csv", "commitments.csv"]
    assert not any(config.sources[n].required for n in ("events", "costs", "campaigns", "balances", "commitments"))
    assert config.sources["contacts"].values == {"campaign_id": "spring"}
    assert config.sources["contacts"].control_variant == "No E-Mail"


def test_an_unknown_table_in_sources_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="'sources.contact.\\[key\\]': Input should be 'orders'"):
        load_config(tmp_path, _write(tmp_path, "sources:\n  contact:\n    path: results.csv\n"))


def test_settings_given_at_run_time_go_into_the_one_configuration(tmp_path):
    from toolkit.config import with_settings

    configured = load_config(tmp_path, _write(tmp_path, "horizon: 60\ncampaign:\n  budget: 900\n"))
    # None leaves the configured value: a page's parameter left at None reads journeycast.yml
    assert with_settings(configured, {"horizon": None, "budget": None}) == configured
    changed = with_settings(configured, {"horizon": 30, "budget": 500.0, "uncertainty_samples": 100})
    assert (changed.horizon, changed.campaign.budget, changed.uncertainty_samples) == (30, 500.0, 100)
    assert changed.campaign.cost_per_contact == configured.campaign.cost_per_contact  # other campaign settings kept
    with pytest.raises(ConfigError, match="unknown settings \\['horizn'\\]"):
        with_settings(configured, {"horizn": 30})
    with pytest.raises(ConfigError, match="'horizon'"):
        with_settings(configured, {"horizon": 0}, source="parameter 'horizon'")


def test_pages_and_commands_load_the_configured_settings_unless_given(tmp_path):
    from toolkit.pipeline import load

    (tmp_path / "orders.csv").write_text("order_id,customer_id,ts,amount\n1,a,2024-01-02,10\n2,b,2024-01-03,20\n")
    _write(tmp_path, "horizon: 45\nsegment: channel\nrisk_limit: 0.1\n")
    as_configured = load(tmp_path, horizon=None, segment=None, seed=None, uncertainty_samples=None)
    assert (as_configured.config.horizon, as_configured.config.segment, as_configured.config.risk_limit) == (
        45, "channel", 0.1)
    assert as_configured.config.uncertainty_samples == Config().uncertainty_samples
    given = load(tmp_path, horizon=14, risk_limit=0.2, budget=100.0)
    assert (given.config.horizon, given.config.risk_limit, given.config.campaign.budget) == (14, 0.2, 100.0)
