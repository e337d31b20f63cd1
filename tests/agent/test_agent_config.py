"""The agent's configuration: one table of options, parsed from GREENFLAME_* variables."""

from __future__ import annotations

import pytest

from greenflame.agent.config import Config, ConfigError, options_markdown, options_table


def test_defaults_without_environment() -> None:
    config = Config.from_env({})
    assert config.enabled is True
    assert (config.rate_hz, config.report_interval_s, config.export_timeout_s) == (100.0, 60.0, 5.0)
    assert (config.max_stacks, config.max_depth, config.max_threads) == (10_000, 128, 64)
    assert config.server is None and config.out is None and config.ingest_key is None
    assert config.debug is False


def test_environment_is_parsed_by_type() -> None:
    env = {
        "GREENFLAME_ENABLED": "off",
        "GREENFLAME_GROUP": " checkout ",
        "GREENFLAME_SERVER": "https://gf.example.com/",
        "GREENFLAME_INGEST_KEY": "k-123",
        "GREENFLAME_RATE_HZ": "19.5",
        "GREENFLAME_MAX_STACKS": "50",
        "GREENFLAME_DEBUG": "yes",
    }
    config = Config.from_env(env)
    assert config.enabled is False
    assert config.group == "checkout"
    assert config.server == "https://gf.example.com"
    assert config.ingest_key == "k-123"
    assert config.rate_hz == 19.5
    assert config.max_stacks == 50
    assert config.debug is True


def test_overrides_win_and_none_means_not_given() -> None:
    env = {"GREENFLAME_RATE_HZ": "50", "GREENFLAME_GROUP": "from-env"}
    config = Config.from_env(env, rate_hz=7, group=None, out="p.json")
    assert config.rate_hz == 7.0
    assert config.group == "from-env"
    assert config.out == "p.json"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GREENFLAME_RATE_HZ": "fast"}, "GREENFLAME_RATE_HZ: expected a number, got 'fast'"),
        ({"GREENFLAME_RATE_HZ": "0"}, "GREENFLAME_RATE_HZ: expected a value from 0.1 to 1000, got 0.0"),
        ({"GREENFLAME_MAX_STACKS": "1.5"}, "GREENFLAME_MAX_STACKS: expected a whole number, got '1.5'"),
        ({"GREENFLAME_ENABLED": "maybe"}, "GREENFLAME_ENABLED: expected true or false, got 'maybe'"),
        ({"GREENFLAME_SERVER": "gf.example.com"}, "GREENFLAME_SERVER: expected an http:// or https:// URL"),
    ],
)
def test_bad_values_are_one_line_errors(env: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown agent option 'rate'"):
        Config.from_env({}, rate=5)


def test_bad_override_names_the_option() -> None:
    with pytest.raises(ConfigError, match=r"^max_depth: "):
        Config.from_env({}, max_depth=1)


def test_docs_come_from_the_same_table() -> None:
    names = [option.name for option in options_table()]
    assert names == [
        "enabled",
        "kill_file",
        "group",
        "server",
        "ingest_key",
        "out",
        "s3",
        "engine",
        "call_share",
        "rate_hz",
        "cpu_budget",
        "signal_trigger",
        "report_interval_s",
        "max_stacks",
        "max_depth",
        "max_threads",
        "auto_labels",
        "export_timeout_s",
        "exit_timeout_s",
        "spool_dir",
        "spool_max_mb",
        "debug",
    ]
    table = options_markdown()
    for option in options_table():
        assert f"`{option.variable}`" in table
        assert option.help in table
    assert "| `GREENFLAME_RATE_HZ` | float | 100.0 |" in table
