"""A relative SQLite path in vigil.yaml (store.url, sources.mlflow.tracking_uri) is beside
the config file, as every other relative path in it is (vigil.example.yaml says so), not
in whatever directory the command happens to run from."""
from __future__ import annotations

import yaml

from monitor.cli import main
from monitor.config import load_config, parse_config
from monitor.store.repository import Store


def _write(folder, store: dict | None) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"sources": {"prometheus": {"url": "http://127.0.0.1:9"},
                       "mlflow": {"tracking_uri": "sqlite:///mlflow.db"}},
           "models": [{"name": "fraud", "kpis": []}]}
    if store is not None:
        doc["store"] = store
    path = folder / "vigil.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_status_from_another_directory_reads_the_store_beside_the_config(tmp_path, monkeypatch, capsys):
    """`vigil status --config /etc/vigil/vigil.yaml` run from a home directory said "no such
    SQLite file vigil.db" (exit 75), and `vigil rollback` made a fresh store there and audited
    its rollback into it, where the daemon never looked."""
    config = _write(tmp_path / "etc", {"url": "sqlite:///vigil.db"})
    Store(f"sqlite:///{tmp_path / 'etc' / 'vigil.db'}").close()  # the daemon's store, beside its file
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["status", "--config", config]) == 0, capsys.readouterr().err
    assert "fraud" in capsys.readouterr().out
    assert list(elsewhere.iterdir()) == []


def test_relative_sqlite_urls_resolve_against_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no store of an earlier version in the working directory
    folder = tmp_path / "conf"
    written = load_config(_write(folder, {"url": "sqlite:///state/vigil.db"}))
    assert written.store.url == f"sqlite:///{folder / 'state' / 'vigil.db'}"
    assert written.sources.mlflow.tracking_uri == f"sqlite:///{folder / 'mlflow.db'}"
    default = load_config(_write(tmp_path / "other", None))  # no store: the default file, beside it too
    assert default.store.url == f"sqlite:///{tmp_path / 'other' / 'vigil.db'}"
    for url in ("sqlite:////abs/v.db", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg://v@db/v"):
        assert load_config(_write(tmp_path / "x", {"url": url})).store.url == url
    assert parse_config({"models": [{"name": "m"}]}).store.url == "sqlite:///vigil.db"  # built in code: as written


def test_a_store_an_earlier_version_kept_in_the_working_directory_is_never_silently_replaced(tmp_path, monkeypatch):
    """Before, `vigil run --config /etc/vigil/vigil.yaml` from /var/lib/vigil kept its store in
    /var/lib/vigil. Reading an empty one beside the config after an upgrade would lose the open
    incidents, the rollbacks in flight and the audit log without a word: the load is refused,
    naming both files and what to do."""
    import pytest

    from monitor.config import ConfigError

    config = _write(tmp_path / "etc", {"url": "sqlite:///vigil.db"})
    workdir = tmp_path / "var"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    earlier = Store(f"sqlite:///{workdir / 'vigil.db'}")
    earlier.close()
    assert load_config(config).store.url.endswith("/etc/vigil.db")  # an empty one has nothing to lose
    earlier = Store(f"sqlite:///{workdir / 'vigil.db'}")  # the store an earlier version kept here
    earlier.audit("api:alice", "silence.create", "silence:1", {"model": "fraud"}, now=1_800_000_000.0)
    earlier.close()
    with pytest.raises(ConfigError) as e:
        load_config(config)
    said = str(e.value)
    assert "store.url: sqlite:///vigil.db is read beside the config file" in said, said
    assert str(tmp_path / "etc" / "vigil.db") in said and str(workdir / "vigil.db") in said, said
    assert f"sqlite:///{workdir / 'vigil.db'}" in said, said  # the absolute URL to write
    # Checking another file from a directory holding a running daemon's store: "move it
    # there" would take that daemon's store away; the other way out is named too.
    assert f"if it is another configuration's store, write sqlite:///{tmp_path / 'etc' / 'vigil.db'}" in said, said
    assert not (tmp_path / "etc" / "vigil.db").exists()

    Store(f"sqlite:///{tmp_path / 'etc' / 'vigil.db'}").close()  # moved (or both exist): the one beside wins
    assert load_config(config).store.url == f"sqlite:///{tmp_path / 'etc' / 'vigil.db'}"
