"""One TOML file for both commands: where it is found, its defaults, and errors that name the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from motcua.config import ConfigError, load_config


def test_defaults_without_any_file(monkeypatch, tmp_path):
    monkeypatch.delenv("MOTCUA_CONFIG", raising=False)
    monkeypatch.setattr("motcua.config.DEFAULT_PATH", tmp_path / "absent.toml")
    cfg = load_config()
    assert cfg.source is None
    assert cfg.site.timezone == "Asia/Ho_Chi_Minh"
    assert cfg.kiosk.idle_timeout_s == 45
    assert cfg.database.url.endswith("/motcua.db")
    assert cfg.statuses.source_map["releasing"] == "result_ready"


def test_sample_config_is_valid_and_matches_defaults(monkeypatch):
    sample = Path(__file__).resolve().parent.parent / "config.sample.toml"
    cfg = load_config(sample)
    monkeypatch.delenv("MOTCUA_CONFIG", raising=False)
    monkeypatch.setenv("MOTCUA_DATA_DIR", "/var/lib/motcua")
    monkeypatch.setattr("motcua.config.DEFAULT_PATH", Path("/nonexistent/config.toml"))
    assert cfg.model_dump(exclude={"source"}) == load_config().model_dump(exclude={"source"})


def test_env_var_then_explicit_path_win(monkeypatch, tmp_path):
    env_file = tmp_path / "env.toml"
    env_file.write_text('[site]\ncommune_name = "Phường Đông Thành"\n', encoding="utf-8")
    arg_file = tmp_path / "arg.toml"
    arg_file.write_text('[site]\ncommune_name = "Xã Gia Sinh"\n', encoding="utf-8")
    monkeypatch.setenv("MOTCUA_CONFIG", str(env_file))
    assert load_config().site.commune_name == "Phường Đông Thành"
    assert load_config(arg_file).site.commune_name == "Xã Gia Sinh"


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("[kiosk]\nidle_timeout = 30\n", "kiosk.idle_timeout: unknown setting"),
        ("[kiosk]\nidle_timeout_s = 'soon'\n", "kiosk.idle_timeout_s: Input should be a valid integer"),
        ("[site]\ntimezone = 'Mars/Olympus'\n", "site.timezone: Value error, unknown time zone"),
        ("[statuses.source_map]\nreleasing = 'ready'\n",
         "statuses.source_map: Value error, 'releasing' maps to unknown status 'ready'"),
        ("[import.columns]\nshoe = 'Cỡ giày'\n", "import.columns: Value error, unknown dossier field(s) ['shoe']"),
        ("[[site.opening_hours]]\ndays = [7]\n",
         "site.opening_hours.0.days: Value error, days are 0 (Monday) to 6 (Sunday)"),
        ("[kiosk\n", "not valid TOML"),
    ],
)
def test_bad_config_gives_one_clear_error_naming_the_key(tmp_path, toml, expected):
    path = tmp_path / "c.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)
    assert str(path) in str(err.value)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("command", ["kiosk", "sms_gateway"])
def test_both_commands_report_bad_config_without_traceback(tmp_path, command):
    path = tmp_path / "c.toml"
    path.write_text("[database]\nbusy_timeout_ms = -1\n", encoding="utf-8")
    sub = "import" if command == "kiosk" else "status"
    args = [sys.executable, "-m", f"{command}.cli", "--config", str(path), sub]
    if command == "kiosk":
        (tmp_path / "x.csv").write_text("a\n", encoding="utf-8")
        args.append(str(tmp_path / "x.csv"))
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "database.busy_timeout_ms: Input should be greater than or equal to 0" in proc.stderr
    assert "Traceback" not in proc.stderr
