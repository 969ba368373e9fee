"""A command's `--out` that cannot be written (under a regular file, a read-only or missing
mount) is one line naming the option, the path and what was expected, exit 73 (EX_CANTCREAT),
before any work: `vigil dashboards`, `vigil demo` and `vigil replay` printed a traceback
(`vigil replay`, for a missing directory, an OS error naming neither the option nor what it wanted)."""
from __future__ import annotations

from pathlib import Path

from monitor.cli import main


def a_file(tmp_path: Path) -> Path:
    """Where a directory is expected, a regular file: nothing can be created under it."""
    path = tmp_path / "taken"
    path.write_text("not a directory\n")
    return path


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_dashboards_out_that_cannot_be_written_names_the_option(tmp_path, capsys):
    (tmp_path / "vigil.yaml").write_text("models: [{name: m}]\n")
    out = a_file(tmp_path) / "grafana"
    assert main(["dashboards", "--config", str(tmp_path / "vigil.yaml"), "--out", str(out)]) == 73
    said = one_line(capsys.readouterr().err)
    assert said.startswith(f"vigil dashboards: --out {out}: expected a directory this user can create and write"), said
    assert "Not a directory" in said, said


def test_demo_out_that_cannot_be_written_names_the_option(tmp_path, capsys):
    out = a_file(tmp_path) / "demo-out"
    assert main(["demo", "--out", str(out), "--quiet"]) == 73
    said = one_line(capsys.readouterr().err)
    assert said.startswith(f"vigil demo: --out {out}: expected a directory this user can create and write"), said


def test_replay_out_that_cannot_be_written_names_the_option(tmp_path, capsys):
    (tmp_path / "vigil.yaml").write_text("sources: {prometheus: {url: 'http://127.0.0.1:9'}, "
                                         "mlflow: {tracking_uri: 'http://127.0.0.1:9'}}\nmodels: [{name: m}]\n")
    out = a_file(tmp_path) / "replays" / "incidents.jsonl"
    assert main(["replay", "--config", str(tmp_path / "vigil.yaml"), "--from", "2026-01-01T00:00:00Z",
                 "--to", "2026-01-01T00:10:00Z", "--out", str(out), "--quiet"]) == 73
    said = one_line(capsys.readouterr().err)
    assert said.startswith(f"vigil replay: --out {out}: expected a file in a directory this user can create and "
                           "write"), said
    assert not (tmp_path / "vigil.db").exists()  # refused before any work
