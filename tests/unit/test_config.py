"""The one table of settings (shared/config.py): one rule for empty values, parse errors that
name the key, and the README table and each config.yml kept equal to it."""
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import config as cfg
from shared.cli import system
from shared.cli.base import ROOT

#: Keys nameko reads itself, so their config.yml keeps a default (which must be the table's).
NAMEKO_READS = {cfg.AMQP_URI, cfg.WEB_SERVER_ADDRESS, cfg.MAX_WORKERS}
LINE = re.compile(r"^(?P<key>[A-Za-z_]+): (?:!raw_env_var )?"
                  r"\$\{(?P<env>[A-Z_]+):(?P<default>[^}]*)\}\s*$")


def config_lines(service):
    text = (ROOT / "services" / service / "config.yml").read_text("utf-8")
    return {match["key"]: match for match in map(LINE.match, text.splitlines())
            if match and match["key"] in cfg.BY_KEY}


def test_the_readme_table_is_the_generated_one():
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index("<!-- generated from shared/config.py: SETTINGS -->\n")
    end = readme.index("<!-- end of the generated table -->")
    assert readme[start:end].split("\n", 1)[1] == cfg.markdown_table()


@pytest.mark.parametrize("service", cfg.SERVICE_NAMES)
def test_each_config_yml_fills_its_keys_from_the_tables_variables(service):
    lines = config_lines(service)
    for setting in cfg.SETTINGS:
        if setting.key and service in setting.readers:
            assert setting.key in lines, f"{service}/config.yml lacks {setting.key}"
    for key, line in lines.items():
        setting = cfg.BY_KEY[key]
        assert line["env"] == setting.env_for(service), (service, key)
        if key in NAMEKO_READS:
            assert line["default"] == str(setting.default_for(service)), (service, key)
        else:
            assert line["default"] == "", f"{service}: {key}'s default belongs to the table"


@given(blank=st.sampled_from([None, "", " ", "\t", "  \n"]))
def test_unset_or_blank_is_the_default_for_every_setting(blank):
    for key, setting in cfg.BY_KEY.items():
        assert cfg.read({key: blank}, key, "aggregation") == setting.default_for("aggregation")
        assert cfg.read({}, key, "voting") == setting.default_for("voting")


def test_zero_is_a_value_not_a_blank():
    # The tally cache's two readers disagreed: 0 meant the default in one, no cache in the other.
    assert cfg.read({cfg.TALLY_CACHE_SECONDS: 0}, cfg.TALLY_CACHE_SECONDS) == 0.0
    assert cfg.read({cfg.TALLY_CACHE_SECONDS: "0"}, cfg.TALLY_CACHE_SECONDS) == 0.0
    assert cfg.read({}, cfg.TALLY_CACHE_SECONDS) == 0.5


@pytest.mark.parametrize("key, value, rule", [
    (cfg.TALLY_CACHE_SECONDS, "-1", "must be 0 or more"),
    (cfg.TALLY_CACHE_SECONDS, "soon", "must be a number"),
    (cfg.TALLY_CACHE_SECONDS, "nan", "must be a finite number"),
    (cfg.REBUILD_PAGE_SIZE, "0", "must be at least 1"),
    (cfg.REBUILD_PAGE_SIZE, "1.5", "must be a whole number"),
    (cfg.EVENT_HANDLER_ATTEMPTS, True, "must be a whole number"),
    (cfg.EVENT_RETRY_SECONDS, 0, "must be more than 0"),
    (cfg.CONSOLE_SECURE_COOKIES, "maybe", "must be true or false"),
    (cfg.OTP_SENDER, "carrier-pigeon", "must be one of notification, log"),
    (cfg.JUDGE_NOTIFIER, "mail", "must be one of notification, log"),
])
def test_a_value_its_parser_refuses_names_the_key_the_variable_and_the_rule(key, value, rule):
    with pytest.raises(cfg.SettingError) as refused:
        cfg.read({key: value}, key, "aggregation")
    message = str(refused.value)
    assert message.startswith(f"{key}: {rule}")
    assert cfg.BY_KEY[key].env_for("aggregation") in message


@pytest.mark.parametrize("key, value, parsed", [
    (cfg.CONSOLE_SECURE_COOKIES, "yes", True), (cfg.CONSOLE_SECURE_COOKIES, "false", False),
    (cfg.CONSOLE_SECURE_COOKIES, True, True), (cfg.TRUSTED_PROXIES, " 10.0.0.1, ,10.0.0.2 ",
                                                ("10.0.0.1", "10.0.0.2")),
    (cfg.SERVICE_KEY, " pxsk_x ", " pxsk_x "), (cfg.REBUILD_PAGE_SIZE, "50", 50),
    (cfg.MONGO_DB, "agg", "agg"),
])
def test_values_are_parsed_by_their_setting(key, value, parsed):
    assert cfg.read({key: value}, key) == parsed


def test_a_service_default_depends_on_the_service():
    assert cfg.database_name({}, "voting") == "pingxuan_voting"
    assert cfg.read({}, cfg.WEB_SERVER_ADDRESS, "scoring") == "127.0.0.1:8102"


def test_pingxuan_up_takes_the_variable_names_from_the_table(monkeypatch, tmp_path):
    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    environments = system.service_environments(["voting", "scoring"],
                                               {"PINGXUAN_ISSUER_KEY": "secret", "OTHER": "x"})
    voting = environments["voting"]
    assert cfg.env_name(cfg.SERVICE_KEY, "voting") in voting
    assert cfg.env_name(cfg.SERVICE_KEY, "scoring") not in voting
    assert {cfg.env_name(cfg.TOKEN_PUBLIC_KEYS, "voting"),
            cfg.env_name(cfg.SERVICE_PUBLIC_KEYS, "voting")} <= set(voting)
    assert "PINGXUAN_ISSUER_KEY" not in voting and voting["OTHER"] == "x"
    assert system.SERVICES["voting"] == ("VOTING_HTTP", "127.0.0.1:8100")


def test_the_announce_window_is_bounded_below_the_outbox_sweeps_grace():
    assert cfg.read({cfg.ANNOUNCE_WINDOW_SECONDS: "0"}, cfg.ANNOUNCE_WINDOW_SECONDS) == 0
    assert cfg.read({}, cfg.ANNOUNCE_WINDOW_SECONDS) == 0.05
    with pytest.raises(cfg.SettingError, match="ANNOUNCE_WINDOW_SECONDS.*at most 5 seconds"):
        cfg.read({cfg.ANNOUNCE_WINDOW_SECONDS: "30"}, cfg.ANNOUNCE_WINDOW_SECONDS, "voting")


def test_the_commit_gather_is_a_short_wait_or_none():
    assert cfg.read({}, cfg.COMMIT_GATHER_SECONDS) == 0.002
    assert cfg.read({cfg.COMMIT_GATHER_SECONDS: "0"}, cfg.COMMIT_GATHER_SECONDS) == 0
    with pytest.raises(cfg.SettingError, match="COMMIT_GATHER_SECONDS.*at most 0.1 seconds"):
        cfg.read({cfg.COMMIT_GATHER_SECONDS: "0.5"}, cfg.COMMIT_GATHER_SECONDS, "voting")
    with pytest.raises(cfg.SettingError, match="COMMIT_GATHER_SECONDS"):
        cfg.read({cfg.COMMIT_GATHER_SECONDS: "-1"}, cfg.COMMIT_GATHER_SECONDS, "voting")
