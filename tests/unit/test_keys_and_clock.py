"""Keys and secrets load as text; the rehearsal clock agrees across instances; `pingxuan up`'s keys."""
import os
import stat
from pathlib import Path

import pytest
import yaml

from shared import signing
from shared.clock import Clock, rehearsal_offset
from tests.conftest import at

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("nomination", "voting", "scoring", "aggregation", "notification")
NUMERIC = "0123456701234567"


def load_config(service):
    """A service's config.yml as ``nameko run --config`` reads it."""
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    return yaml.safe_load((ROOT / "services" / service / "config.yml").read_text("utf-8"))


# --- secrets are read as raw strings -----------------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_every_key_and_secret_stays_text_however_it_looks(service, monkeypatch):
    for variable in ("PINGXUAN_TOKEN_PUBLIC_KEYS", "PINGXUAN_SERVICE_PUBLIC_KEYS",
                     f"{service.upper()}_SERVICE_KEY", "VOTING_VOTER_SECRET"):
        monkeypatch.setenv(variable, NUMERIC)
    monkeypatch.setenv("PINGXUAN_CLOCK_START", "2013-10-15T02:00:00Z")
    monkeypatch.setenv("PINGXUAN_CLOCK_ANCHOR", "2026-12-01T09:00:00Z")
    config = load_config(service)
    keys = ["TOKEN_PUBLIC_KEYS", "SERVICE_KEY", "SERVICE_PUBLIC_KEYS"] + (
        ["VOTER_SECRET"] if service == "voting" else [])
    assert {key: config[key] for key in keys} == {key: NUMERIC for key in keys}
    assert (config["CLOCK_START"], config["CLOCK_ANCHOR"]) == (
        "2013-10-15T02:00:00Z", "2026-12-01T09:00:00Z")
    # No shared secret is left to steal.
    assert "AUTH_SECRET" not in config


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_is_given_no_other_services_private_key(service):
    text = (ROOT / "services" / service / "config.yml").read_text("utf-8")
    others = [f"{other.upper()}_SERVICE_KEY" for other in SERVICES if other != service]
    assert not [name for name in others if name in text]
    assert "PINGXUAN_ISSUER_KEY" not in text and "PINGXUAN_SECRET" not in text


def test_a_numeric_voter_secret_from_config_yml_starts_the_voting_service(monkeypatch):
    from unittest.mock import Mock

    from services.voting.providers import VotingConfig

    monkeypatch.setenv("VOTING_VOTER_SECRET", NUMERIC)
    monkeypatch.setenv("VOTING_SERVICE_KEY", signing.generate_private_key())
    container = Mock(config=load_config("voting"), service_name="voting")  # bind keeps a weakref
    provider = VotingConfig().bind(container, "keys")
    provider.setup()
    assert provider.get_dependency(Mock()).voter


# --- the rehearsal clock: one offset for every instance and restart ----------------------------

def clock_at(config, real_seconds, monkeypatch):
    from unittest.mock import Mock

    import shared.clock

    monkeypatch.setattr(shared.clock.time, "time", lambda: real_seconds)
    container = Mock(config=config)
    clock = Clock().bind(container, "now")
    clock.setup()
    clock.kept_container = container   # bind keeps only a weakref
    return clock


def test_two_instances_started_apart_agree_on_the_rehearsal_time(monkeypatch):
    config = {"CLOCK_START": "2013-10-15T02:00:00Z", "CLOCK_ANCHOR": "2026-12-01T09:00:00Z"}
    anchor = at("2026-12-01T09:00:00").timestamp()
    first = clock_at(config, anchor + 5, monkeypatch)          # started 5 s after the anchor
    second = clock_at(config, anchor + 3600, monkeypatch)      # an hour later (a restart)
    for clock in (first, second):
        monkeypatch.setattr("shared.clock.time.time", lambda: anchor + 7200)
        assert clock.now() == at("2013-10-15T04:00:00")


def test_without_an_anchor_each_process_starts_the_clock_afresh(monkeypatch):
    # Why `pingxuan up` and the deploy files set PINGXUAN_CLOCK_ANCHOR.
    config = {"CLOCK_START": "2013-10-15T02:00:00Z"}
    first = clock_at(config, 1_000_000_000, monkeypatch)
    second = clock_at(config, 1_000_003_600, monkeypatch)
    assert first.offset - second.offset == 3600


def test_the_rehearsal_offset_is_start_minus_anchor():
    start, anchor = "2013-10-15T02:00:00Z", "2013-10-15T01:00:00Z"
    assert rehearsal_offset(start, anchor, process_start=0) == 3600
    assert rehearsal_offset("", anchor, process_start=0) == 0
    with pytest.raises(RuntimeError, match="CLOCK_ANCHOR must be an ISO 8601 instant"):
        rehearsal_offset(start, "yesterday", process_start=0)


# --- `pingxuan up`: the keys it makes and what each service is given -----------------------------

def test_up_makes_the_keys_once_mode_600_and_gives_each_service_only_its_own(tmp_path, monkeypatch):
    from shared.cli import system

    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    for variable in ("PINGXUAN_ISSUER_KEY", "PINGXUAN_TOKEN_PUBLIC_KEYS", "PINGXUAN_CLOCK_START",
                     "PINGXUAN_CLOCK_ANCHOR"):
        monkeypatch.delenv(variable, raising=False)
    environments = system.service_environments(list(SERVICES), dict(os.environ))
    again = system.service_environments(list(SERVICES), dict(os.environ))
    assert environments == again                          # made once, then reused
    issuer = (tmp_path / "keys" / "issuer.key").read_text().strip()
    for name in ("issuer",) + SERVICES:
        mode = stat.S_IMODE((tmp_path / "keys" / f"{name}.key").stat().st_mode)
        assert mode == 0o600, name
    for name, env in environments.items():
        own = f"{name.upper()}_SERVICE_KEY"
        assert signing.is_private_key(env[own])
        assert env["PINGXUAN_TOKEN_PUBLIC_KEYS"] == signing.public_key_of(issuer)
        given_private = [key for key, value in env.items() if signing.PRIVATE_PREFIX in value]
        assert given_private == [own], name
        assert f"{name}={signing.public_key_of(env[own])}" in env["PINGXUAN_SERVICE_PUBLIC_KEYS"]


def test_up_writes_one_clock_anchor_for_a_rehearsal_and_a_new_one_for_a_new_start(tmp_path,
                                                                                  monkeypatch):
    from shared.cli import system

    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    rehearsal = {"PINGXUAN_CLOCK_START": "2013-10-15T02:00:00Z"}
    anchor = system.clock_anchor(rehearsal)
    assert anchor and system.clock_anchor(rehearsal) == anchor          # a restart: the same
    other = system.clock_anchor({"PINGXUAN_CLOCK_START": "2013-11-01T00:00:00Z"})
    assert system.clock_anchor({"PINGXUAN_CLOCK_START": "2013-11-01T00:00:00Z"}) == other
    assert system.clock_anchor(dict(rehearsal, PINGXUAN_CLOCK_ANCHOR="2026-01-01T00:00:00Z")) \
        == "2026-01-01T00:00:00Z"
    assert system.clock_anchor({}) == ""


def test_token_keygen_writes_a_private_key_mode_600_and_prints_only_the_public_key(
        tmp_path, monkeypatch, capsys):
    from shared.cli import main

    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path))
    target = tmp_path / "issuer-2.key"
    assert main(["token", "keygen", "--output", str(target)]) == 0
    printed = capsys.readouterr().out
    private = target.read_text().strip()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert printed.strip().splitlines()[-1] == signing.public_key_of(private)
    assert private not in printed
    assert main(["token", "keygen", "--output", str(target)]) == 2   # a usage error (CliError)
    assert target.read_text().strip() == private            # never overwritten


def test_the_cli_signs_with_the_issuer_key_file_it_is_given(tmp_path, monkeypatch):
    from shared.auth import read_token
    from shared.cli import base
    from shared.timeutil import utcnow

    key = signing.generate_private_key()
    (tmp_path / "issuer.key").write_text(key + "\n")
    monkeypatch.delenv("PINGXUAN_ISSUER_KEY", raising=False)
    monkeypatch.setenv("PINGXUAN_ISSUER_KEY_FILE", str(tmp_path / "issuer.key"))
    monkeypatch.setenv("PINGXUAN_HOME", str(tmp_path / "home"))
    identity = read_token(signing.public_key_of(key), base.admin_token(), utcnow())
    assert (identity.role, identity.name) == ("admin", "pingxuan-cli")
