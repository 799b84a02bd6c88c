"""Files are read as written, even after nameko has taught PyYAML to substitute ${VAR}."""
from nameko.cli.main import setup_yaml_parser

from shared import yamlfiles


def test_env_references_stay_as_written_after_nameko_registers_its_resolver(monkeypatch):
    monkeypatch.setenv("PINGXUAN_TEST_VALUE", "substituted")
    setup_yaml_parser()  # what `nameko run` (and some tests) do to the global SafeLoader
    text = "secret: ${PINGXUAN_TEST_VALUE:?set it}\ndeadline: 2013-10-30T23:59:59\n"
    document = yamlfiles.load(text)
    assert document["secret"] == "${PINGXUAN_TEST_VALUE:?set it}"
    assert document["deadline"].isoformat() == "2013-10-30T23:59:59"
