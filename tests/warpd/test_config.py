"""Config: every refusal names the file, the key and the reason."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from warpd.config import Config, load, parse, parse_listen, render
from warpd.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "warpd.example.toml"


def refuse(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, "w.toml", env or {})
    return info.value


def test_example_documents_every_key_with_its_default() -> None:
    documented = tomllib.loads(EXAMPLE.read_text())
    defaults = Config()
    for table in dataclasses.fields(Config):
        if table.metadata.get("internal"):
            continue
        section = getattr(defaults, table.name)
        keys = {f.name for f in dataclasses.fields(section)}
        assert set(documented[table.name]) == keys, table.name
        for key in keys:
            assert (
                parse(f"[{table.name}]\n{key} = {_toml(documented[table.name][key])}", "x", {})
                is not None
            )
    assert dataclasses.replace(load(EXAMPLE), source="<defaults>") == defaults


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def test_demo_config_is_valid() -> None:
    config = load(ROOT / "config" / "demo.toml")
    assert config.embedded
    assert config.database.auto_migrate


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[databse]\ndsn = 'x'", "databse", "unknown key"),
        ("[database]\npool_size = 3", "database.pool_size", "unknown key"),
        ("[database]\npool_max = 'ten'", "database.pool_max", "must be an integer, not str"),
        ("[database]\npool_max = true", "database.pool_max", "must be an integer, not bool"),
        ("[database]\npool_max = 0", "database.pool_max", "at least 1"),
        ("[database]\npool_max = 5000", "database.pool_max", "at most 1000"),
        ("[database]\npool_min = 5\npool_max = 4", "database.pool_min", "exceeds pool_max 4"),
        ("[database]\nauto_migrate = 1", "database.auto_migrate", "must be true or false"),
        ("[log]\nlevel = 'loud'", "log.level", "must be one of"),
        ("[daemon]\nshutdown_timeout = 'soon'", "daemon.shutdown_timeout", "must be a number"),
        ("[daemon]\nstate_dir = ''", "daemon.state_dir", "non-empty path"),
        ("[http]\nlisten = '8080'", "http.listen", "host:port"),
        ("[http]\nlisten = '::1:8080'", "http.listen", "needs brackets"),
        ("[http]\nlisten = 'localhost:99999'", "http.listen", "host:port"),
        ("log = 'debug'", "log", "must be a table"),
        ("[log\nlevel = 'x'", "-", "not valid TOML"),
    ],
)
def test_refusals_name_file_key_and_reason(text: str, key: str, reason: str) -> None:
    error = refuse(text)
    assert (error.source, error.key) == ("w.toml", key)
    assert reason in error.reason
    assert str(error).startswith(f"w.toml: {key}: ")


def test_env_overrides_file_and_is_typed() -> None:
    env = {
        "WARPD_DATABASE_DSN": "postgresql://db/warpd",
        "WARPD_DATABASE_POOL_MAX": "7",
        "WARPD_DATABASE_AUTO_MIGRATE": "yes",
        "WARPD_DAEMON_SHUTDOWN_TIMEOUT": "2.5",
    }
    config = parse("[database]\ndsn = 'postgresql://file/x'\n", "w.toml", env)
    assert config.database.dsn == "postgresql://db/warpd"
    assert config.database.pool_max == 7
    assert config.database.auto_migrate is True
    assert config.daemon.shutdown_timeout == 2.5
    assert not config.embedded


def test_env_with_a_bad_value_names_the_variable() -> None:
    error = refuse("", {"WARPD_DATABASE_POOL_MAX": "lots"})
    assert error.source == "env WARPD_DATABASE_POOL_MAX"
    assert "must be an integer" in error.reason
    assert "true or false" in refuse("", {"WARPD_DATABASE_AUTO_MIGRATE": "maybe"}).reason
    assert "at least 1" in refuse("", {"WARPD_DATABASE_POOL_MAX": "0"}).reason


def test_render_masks_secrets_and_reparses() -> None:
    config = parse("[database]\ndsn = 'postgresql://u:hunter2@db/w'", "w.toml", {})
    text = render(config)
    assert "hunter2" not in text
    assert 'dsn = "********"' in text
    reparsed = parse(text.replace('"********"', '"postgresql://u:hunter2@db/w"'), "w.toml", {})
    assert dataclasses.replace(reparsed, source="w.toml") == config


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.toml")
    directory = tmp_path / "dir.toml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        load(directory)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warpd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_config_on_a_broken_file_exits_2_naming_file_key_reason(tmp_path: Path) -> None:
    bad = tmp_path / "warpd.toml"
    bad.write_text("[database]\npool_max = -1\n")
    for args in (("--config", str(bad), "check-config"), ("check-config", "--config", str(bad))):
        result = run_cli(*args)
        assert result.returncode == 2
        assert f"{bad}: database.pool_max: must be at least 1" in result.stderr
        assert result.stdout == ""


def test_check_config_prints_the_effective_config(tmp_path: Path) -> None:
    good = tmp_path / "warpd.toml"
    good.write_text("[database]\ndsn = 'postgresql://u:secret@db/w'\n")
    result = run_cli("check-config", "--config", str(good))
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout
    assert tomllib.loads(result.stdout)["database"]["pool_max"] == 10


def test_version_and_usage() -> None:
    assert run_cli("version").stdout.startswith("warpd ")
    assert run_cli("frobnicate").returncode == 2


def test_the_cli_applies_the_process_environment(tmp_path: Path) -> None:
    # The README tells operators to keep secrets in WARPD_<TABLE>_<KEY>; the
    # command line must honour them, not only the parser.
    env = {
        "PATH": "/usr/bin:/bin",
        "WARPD_DAEMON_STATE_DIR": str(tmp_path / "state"),
        "WARPD_DATABASE_DSN": "postgresql://warpd:s3cret@db/warpd",
        "WARPD_SMS_BATCH_MAX": "77",
    }
    out = subprocess.run(
        [sys.executable, "-m", "warpd", "--config", str(EXAMPLE), "check-config"],
        env=env, capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    assert f'state_dir = "{tmp_path / "state"}"' in out
    assert "batch_max = 77" in out
    assert 'dsn = "********"' in out
    assert "s3cret" not in out
    bad = subprocess.run(
        [sys.executable, "-m", "warpd", "--config", str(EXAMPLE), "check-config"],
        env={**env, "WARPD_SMS_BATCH_MAX": "many"}, capture_output=True, text=True, cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "WARPD_SMS_BATCH_MAX" in bad.stderr
