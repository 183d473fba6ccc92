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
