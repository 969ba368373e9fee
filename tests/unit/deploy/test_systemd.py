"""deploy/systemd/vigil.service: a dedicated user, a restart policy that does not loop on a
store needing `vigil db upgrade` (exit 78), a stop timeout longer than the shutdown grace,
hardening, and `systemd-analyze verify` clean (when systemd-analyze is here)."""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "systemd" / "vigil.service"


def _service() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and not line.startswith("#") and section == "Service":
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_a_dedicated_user_restarts_and_a_bounded_stop():
    svc = _service()
    assert svc["User"] == ["vigil"] and svc["Group"] == ["vigil"]
    assert svc["Restart"] == ["on-failure"] and svc["RestartPreventExitStatus"] == ["78"]
    assert "--log-format json run --config /etc/vigil/vigil.yaml" in svc["ExecStart"][0]
    assert svc["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP reloads the config
    assert float(svc["TimeoutStopSec"][0].rstrip("s")) > 30  # schedule.shutdown_grace


def test_hardening_options():
    svc = _service()
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
                       "RestrictSUIDSGID": "yes", "CapabilityBoundingSet": ""}.items():
        assert svc[key] == [value], key
    assert svc["ReadWritePaths"] == ["/var/lib/vigil"] and svc["StateDirectory"] == ["vigil"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_is_clean(tmp_path):
    # verify checks that ExecStart exists: point it at this environment's vigil.
    vigil = Path(sys.executable).parent / "vigil"
    if not vigil.exists():
        pytest.skip(f"no vigil executable beside {sys.executable}")
    unit = tmp_path / "vigil.service"
    unit.write_text(UNIT.read_text().replace("/opt/vigil/bin/vigil", str(vigil)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # It exits 0 even for an unknown key or a bad value, and says so on stderr.
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                              text=True, timeout=60)
    if security.returncode == 0:
        m = re.search(r"Overall exposure level for vigil.service: ([\d.]+)", security.stdout)
        assert m and float(m.group(1)) <= 2.0, security.stdout[-500:]


def test_the_unit_parses_as_an_ini_file():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())


def test_the_documented_db_upgrade_runs_as_the_service_with_its_secrets():
    """The config names secrets (${SLACK_BOT_TOKEN}) the unit reads from its EnvironmentFile;
    `vigil db upgrade --config` loads the whole config, so run without that file it stops at
    'environment variable SLACK_BOT_TOKEN is not set' and the store is never upgraded."""
    text = re.sub(r"\\\n#\s*", " ", UNIT.read_text())  # a comment's continuation lines joined
    [upgrade] = [ln for ln in text.splitlines() if ln.startswith("#") and "db upgrade --config" in ln]
    svc = _service()
    for env_file in svc["EnvironmentFile"]:
        assert f"EnvironmentFile={env_file.lstrip('-')}" in upgrade, upgrade
    assert f"--uid={svc['User'][0]}" in upgrade or f"User={svc['User'][0]}" in upgrade, upgrade
    config = re.search(r"--config (\S+)", svc["ExecStart"][0])
    assert config and f"--config {config.group(1)}" in upgrade
