"""Schema migrations (monitor/store/migrations, `vigil db ...`) on SQLite and PostgreSQL:
a new store starts at head, a store made by Vigil 0.1.0's `create_all` (the checked-in DDL
in tests/fixtures/store_v0/) is upgraded in place with its rows intact, the head revision
is exactly the tables the code declares, and the daemon refuses a store that is behind."""
from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import UniqueConstraint, create_engine, inspect, text

from monitor.cli import main
from monitor.daemon import run_daemon
from monitor.store import schema
from monitor.store.metadata import target_metadata
from monitor.store.repository import IncidentRow, Store
from monitor.store.schema import SchemaState, StoreBehind
from tests.fixtures_postgres import postgres_url  # noqa: F401  (fixture)
from tests.helpers_vigil import make_config

FIXTURES = Path(__file__).parent.parent / "fixtures" / "store_v0"
# Rows as Vigil 0.1.0 wrote them: an incident, its drift report (plain HTML), an audit entry, samples.
V0_ROWS = [
    "INSERT INTO incidents (id, model, status, severity, title, onset, opened_at, updated_at, cold_start, reasons, "
    "findings, causes, fingerprint) VALUES (7, 'fraud', 'open', 'warning', 'fraud: feature drift (amount)', 100, "
    "100, 100, false, '[]', '[]', '[]', 'fp')",
    "INSERT INTO drift_reports (incident_id, html, created_at) VALUES (7, '<html>psi 0.31 amount</html>', 100)",
    "INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash) VALUES (1, 100, 'vigil', "
    "'incident.open', 'incident:7', '{}', '" + "0" * 64 + "', '" + "a" * 64 + "')",
    "INSERT INTO samples (model, ts, record) VALUES ('fraud', 100, '{\"amount\": 3.5}')",
    "INSERT INTO model_state (model, alias_version, slo_streaks, detector_state, quiet_cycles, last_cycle_at) "
    "VALUES ('fraud', '4', '{}', '{}', 0, 100)",
]


def _load_v0(url: str, dialect: str) -> None:
    """A store exactly as Vigil 0.1.0 left it: its DDL, then its rows."""
    ddl = "\n".join(line for line in (FIXTURES / f"{dialect}.sql").read_text().splitlines()
                    if not line.startswith("--"))
    engine = create_engine(url)
    with engine.begin() as conn:
        for stmt in [s for s in ddl.split(";") if s.strip()] + V0_ROWS:
            conn.execute(text(stmt))
    engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[str]:  # noqa: F811
    """A database of its own on the test server, so each test starts from nothing."""
    name = f"vigil_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vigil.db'}", "sqlite"
    return request.getfixturevalue("pg_db"), "postgresql"


def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), target_metadata())
    engine.dispose()
    return [d for d in diff if not _same_as_primary_key(d)]


def _same_as_primary_key(d: object) -> bool:
    """idempotency_keys declares UNIQUE (key, scope) beside the same primary key; PostgreSQL
    keeps only the key's index, so the constraint is never there to be found."""
    if not (isinstance(d, tuple) and d[0] == "add_constraint" and isinstance(d[1], UniqueConstraint)):
        return False
    uc = d[1]
    return {c.name for c in uc.columns} == {c.name for c in target_metadata().tables[uc.table.name].primary_key.columns}


def test_a_new_store_is_created_at_head_and_matches_every_declared_table(store_url, capsys):
    url, _ = store_url
    Store(url).close()
    assert main(["db", "current", "--store", url]) == 0
    out = capsys.readouterr().out
    assert f"{schema.head()} (at head)" in out
    # A table or column added to the code without a revision fails here: write the migration.
    assert _diff(url) == []


def test_a_store_made_by_vigil_0_1_is_upgraded_in_place_with_its_rows(store_url, capsys):
    url, dialect = store_url
    _load_v0(url, dialect)
    assert main(["db", "current", "--store", url]) == 1
    assert "made before migrations (no revision): run `vigil db upgrade`" in capsys.readouterr().out
    Store(url).close()  # opening it never migrates it behind the operator's back
    assert schema.status(create_engine(url)).state is SchemaState.UNVERSIONED

    assert main(["db", "upgrade", "--store", url]) == 0
    assert f"upgraded (unversioned) -> {schema.head()}" in capsys.readouterr().out
    assert _diff(url) == []
    store = Store(url)
    assert store.drift_report(7) == "<html>psi 0.31 amount</html>"  # written uncompressed, still served
    assert store.incident(7).title == "fraud: feature drift (amount)"
    assert [e.seq for e in store.audit_entries()] == [1]
    assert store.samples("fraud", 0, 200) == [(100.0, {"amount": 3.5})]
    store.save_drift_report(8 - 1, "<html>" + "x" * 10_000 + "</html>", 200)  # rewritten: now compressed
    with store.engine.connect() as conn:
        html, blob = conn.execute(text("SELECT html, html_gz FROM drift_reports WHERE incident_id = 7")).one()
    assert html == "" and gzip.decompress(blob).decode().endswith("x</html>") and len(blob) < 200
    store.close()
    assert main(["db", "upgrade", "--store", url]) == 0
    assert "already at" in capsys.readouterr().out


def test_upgrade_from_each_older_revision_and_downgrade_keep_reports(sqlite_url):
    engine = create_engine(sqlite_url)
    schema.upgrade(engine, "0001_baseline")
    with engine.begin() as conn:
        for stmt in V0_ROWS[:2]:
            conn.execute(text(stmt))
    assert schema.status(engine).state is SchemaState.BEHIND
    before, after = schema.upgrade(engine)
    assert (before.current, after.current) == ("0001_baseline", schema.head())
    store = Store(sqlite_url)
    store.save_drift_report(7, "<html>new</html>", 300)
    store.close()
    from alembic import command

    with engine.connect() as conn:  # a downgrade puts compressed reports back into `html`
        command.downgrade(schema.alembic_config(conn), "0001_baseline")
        conn.commit()
        assert conn.execute(text("SELECT html FROM drift_reports")).scalar() == "<html>new</html>"
        assert "model_now" not in inspect(conn).get_table_names()
    engine.dispose()


def test_states_and_profiles_from_before_0004_read_after_it_and_a_downgrade_puts_them_back(store_url):
    """A model's detector state kept as one JSON document and a profile stored raw (0003)
    read unchanged after the upgrade; once rewritten (rows, gzip) a downgrade to 0003 puts
    both back where 0003 reads them."""
    import json

    from alembic import command

    url, _ = store_url
    engine = create_engine(url)
    schema.upgrade(engine, "0003_lifecycle_canary_labels")
    state = {"ctr|{}": {"detector": {"version": 4, "scalars": [1.5] * 20, "daily": [None, 2.0], "weekly": [3.0],
                                     "values": [0.0], "excursions": [0.0, 1.0]}, "run_onset": None},
             "@logs": {"fitted_on": [1.0, 2.0]}}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO model_state (model, slo_streaks, detector_state, quiet_cycles) "
                          "VALUES ('fraud', '{}', :s, 0)"), {"s": json.dumps(state)})
        conn.execute(text("INSERT INTO reference_profiles (model, version, source, profile, created_at) "
                          "VALUES ('fraud', '4', '/ref', :p, 0)"), {"p": b"raw profile"})
    schema.upgrade(engine)
    store = Store(url)
    with store.tx() as s:
        assert store.detector_state(s, "fraud") == state
        store.save_detector_state(s, "fraud", state)  # the next cycle moves it into rows
    assert store.profile("fraud", "4", "/ref") == b"raw profile"
    store.save_profile("fraud", "4", "/ref", b"new profile", 10)
    store.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM detector_states")).scalar() == 3  # state, profile, logs
        command.downgrade(schema.alembic_config(conn), "0003_lifecycle_canary_labels")
        conn.commit()
        back = conn.execute(text("SELECT detector_state FROM model_state")).scalar()
        assert (json.loads(back) if isinstance(back, str) else back) == state  # PostgreSQL's driver parses JSON
        assert bytes(conn.execute(text("SELECT profile FROM reference_profiles")).scalar()) == b"new profile"
        assert "detector_states" not in inspect(conn).get_table_names()
    engine.dispose()


def test_history_lists_every_revision_oldest_first(capsys):
    assert main(["db", "history"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("<base> -> 0001_baseline: Baseline")
    assert lines[-1].startswith(f"{lines[-2].split(' -> ')[1].split(':')[0]} -> {schema.head()} (head)")


def test_db_commands_take_the_store_from_the_config(tmp_path, capsys):
    cfg_path = tmp_path / "vigil.yaml"
    cfg_path.write_text(f"store: {{url: 'sqlite:///{tmp_path / 'from-config.db'}'}}\n"
                        "sources: {prometheus: {url: 'http://127.0.0.1:9'}, mlflow: {tracking_uri: 'http://127.0.0.1:9'}}\n"
                        "models: [{name: m, registry_name: m}]\n")
    _load_v0(f"sqlite:///{tmp_path / 'from-config.db'}", "sqlite")
    assert main(["db", "upgrade", "--config", str(cfg_path)]) == 0
    assert "from-config.db: upgraded" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["db", "current"])
    assert exited.value.code == 64
    assert "vigil db current: give --config FILE or --store URL" in capsys.readouterr().err


def test_the_daemon_refuses_a_store_that_is_behind_and_names_the_command(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'vigil.db'}"
    _load_v0(url, "sqlite")
    cfg = make_config(tmp_path)
    with pytest.raises(StoreBehind) as refused:
        run_daemon(cfg, serve_api=False, config_path="/etc/vigil/vigil.yaml")
    assert "run `vigil db upgrade --config /etc/vigil/vigil.yaml`" in str(refused.value)
    assert "made before migrations" in str(refused.value)
    assert any("refusing to start" in r.getMessage() for r in caplog.records)


def _config_on_a_store_at(url: str, revision: str, tmp_path: Path) -> Path:
    """A vigil.yaml whose store is left at `revision` (Vigil upgraded, `vigil db upgrade` not run)."""
    engine = create_engine(url)
    schema.upgrade(engine, revision)
    engine.dispose()
    cfg_path = tmp_path / "vigil.yaml"
    cfg_path.write_text(f"store: {{url: '{url}'}}\n"
                        "sources: {prometheus: {url: 'http://127.0.0.1:9'}, mlflow: {tracking_uri: 'http://127.0.0.1:9'}}\n"
                        "models: [{name: m, registry_name: m}]\n")
    return cfg_path


def test_vigil_run_exits_78_with_the_upgrade_command_on_a_store_behind(tmp_path, capsys):
    cfg_path = _config_on_a_store_at(f"sqlite:///{tmp_path / 'vigil.db'}", "0001_baseline", tmp_path)
    assert main(["run", "--config", str(cfg_path), "--no-api"]) == 78
    err = capsys.readouterr().err
    assert "at schema revision 0001_baseline" in err and f"vigil db upgrade --config {cfg_path}" in err


def test_commands_on_a_store_behind_name_the_upgrade_on_sqlite_and_postgresql(store_url, tmp_path, capsys):
    """`vigil status` / `silence list` after upgrading Vigil, before `vigil db upgrade`: a
    missing table read as "cannot reach the store's database" (exit 75, retried for ever) on
    SQLite and a driver traceback on PostgreSQL; now the upgrade to run, exit 78."""
    cfg_path = _config_on_a_store_at(store_url[0], "0002_drift_report_gzip", tmp_path)
    for argv in (["status"], ["silence", "list"]):
        assert main([*argv, "--config", str(cfg_path)]) == 78, argv
        err = capsys.readouterr().err
        assert "at schema revision 0002_drift_report_gzip" in err, argv
        assert f"vigil db upgrade --config {cfg_path}" in err and "cannot reach" not in err, argv


def test_replicas_opening_a_new_postgres_store_together_create_it_once(pg_db):
    import threading

    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(pg_db).close()
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert schema.status(create_engine(pg_db)).state is SchemaState.CURRENT


def test_every_declared_table_is_in_the_metadata_migrations_compare_with():
    """A table declared in a module monitor/store/metadata.py does not import would escape the
    head-equals-code check above: every __tablename__ in the product must be registered."""
    import re
    import subprocess
    import sys

    root = Path(__file__).parent.parent.parent
    declared = {m for pkg in ("monitor", "alerts") for p in (root / pkg).rglob("*.py")
                for m in re.findall(r'__tablename__ = "(\w+)"', p.read_text())}
    listed = subprocess.run([sys.executable, "-c", "import monitor.store.metadata as m; "
                             "print(' '.join(sorted(m.target_metadata().tables)))"],
                            capture_output=True, text=True, check=True, cwd=root).stdout.split()
    assert declared - set(listed) == set(), "import the module declaring it in monitor/store/metadata.py"


def test_the_migrations_ship_inside_the_package():
    """`pip install vigil` (and the container image) must carry the revisions: no alembic.ini,
    no source tree needed to run `vigil db upgrade`."""
    import tomllib

    from setuptools import find_packages

    root = Path(__file__).parent.parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())
    found = find_packages(str(root), include=project["tool"]["setuptools"]["packages"]["find"]["include"])
    assert {"monitor.store.migrations", "monitor.store.migrations.versions"} <= set(found)
    assert "script.py.mako" in project["tool"]["setuptools"]["package-data"]["monitor.store.migrations"]
    assert schema.alembic_config().get_main_option("script_location") == "monitor.store:migrations"


def _incident(conn) -> None:  # ids as the database gives them (PostgreSQL: its sequence)
    conn.execute(text("INSERT INTO incidents (model, status, severity, title, onset, opened_at, updated_at, "
                      "cold_start, reasons, findings, causes, fingerprint) VALUES ('fraud', 'resolved', "
                      "'warning', 't', 1, 1, 1, false, '[]', '[]', '[]', 'fp')"))


def _outbox(conn) -> None:
    conn.execute(text("INSERT INTO outbox (notifier, kind, key, payload, status, attempts, created_at, "
                      "next_attempt_at) VALUES ('slack', 'incident', 'incident:1', '{}', 'delivered', 1, 1, 1)"))


def test_ids_of_purged_incidents_and_outbox_rows_are_never_given_again(store_url):
    """Slack buttons and links name incident N, receivers dedupe on outbox id N: once the newest
    rows are purged, SQLite must not hand N to a new incident or message (AUTOINCREMENT)."""
    url, _ = store_url
    engine = create_engine(url)
    schema.upgrade(engine, "0004_state_rows_profile_gz")  # a store made before the fix, with rows
    with engine.begin() as conn:
        for _ in (1, 2, 3):
            _incident(conn)
            _outbox(conn)
    schema.upgrade(engine)
    assert _diff(url) == []
    with engine.begin() as conn:
        assert list(conn.execute(text("SELECT id FROM incidents ORDER BY id")).scalars()) == [1, 2, 3]
        assert list(conn.execute(text("SELECT id FROM outbox ORDER BY id")).scalars()) == [1, 2, 3]
        conn.execute(text("DELETE FROM incidents WHERE id = 3"))  # what the retention purge does
        conn.execute(text("DELETE FROM outbox WHERE id = 3"))
    store = Store(url)
    with store.tx() as s:
        s.add(IncidentRow(model="m", status="open", severity="warning", title="new", onset=2, opened_at=2,
                          updated_at=2, fingerprint="fp2"))
        store.enqueue(s, "slack", "incident", "incident:new", {}, 2)
    assert max(r.id for r in store.all_incidents()) == 4
    assert [r.id for r in store.outbox_for_prefix("incident")][-1] == 4
    store.close()
    engine.dispose()


def test_a_new_store_never_gives_a_purged_id_again(store_url):
    url, _ = store_url
    store = Store(url)
    with store.engine.begin() as conn:
        for _ in range(5):
            _incident(conn)
            _outbox(conn)
        conn.execute(text("DELETE FROM incidents"))
        conn.execute(text("DELETE FROM outbox"))
    with store.tx() as s:
        s.add(IncidentRow(model="m", status="open", severity="warning", title="new", onset=2, opened_at=2,
                          updated_at=2, fingerprint="fp2"))
        store.enqueue(s, "slack", "incident", "incident:new", {}, 2)
    assert [r.id for r in store.all_incidents()] == [6]
    assert [r.id for r in store.outbox_for_prefix("incident")] == [6]
    store.close()


def test_incidents_purged_before_the_upgrade_keep_their_ids_when_the_audit_log_names_them(sqlite_url):
    engine = create_engine(sqlite_url)
    schema.upgrade(engine, "0004_state_rows_profile_gz")
    with engine.begin() as conn:
        for _ in range(9):
            _incident(conn)
        conn.execute(text("DELETE FROM incidents WHERE id > 2"))  # purged by 0.x, acked back then:
        conn.execute(text("INSERT INTO audit_log (seq, at, actor, action, target, detail, prev_hash, hash) VALUES "
                          "(1, 1, 'api:bob', 'incident.ack', 'incident:9', '{}', :z, :h)"),
                     {"z": "0" * 64, "h": "b" * 64})
    schema.upgrade(engine)
    store = Store(sqlite_url)
    with store.tx() as s:
        s.add(IncidentRow(model="m", status="open", severity="warning", title="new", onset=2, opened_at=2,
                          updated_at=2, fingerprint="fp2"))
    assert [r.id for r in store.all_incidents()] == [1, 2, 10]
    store.close()
    engine.dispose()


def test_an_open_shared_cause_keeps_its_reminder_clock_across_the_0006_upgrade(store_url):
    """0006 adds alert_groups.told_at (grouping.repeat_interval counts from it, not from an
    edit): a group open before the upgrade starts from its last page, not from nothing
    (which would never remind it, or remind it at once), and a downgrade drops the column."""
    from alembic import command

    from alerts.grouping import GroupSettings, GroupStep, Member, decide_group, group_digest
    from monitor.store import groups

    url, _ = store_url
    engine = create_engine(url)
    schema.upgrade(engine, "0005_ids_never_reused")
    with engine.begin() as conn:
        _incident(conn)
        conn.execute(text("INSERT INTO alert_groups (key, open_key, cause_kind, cause, created_at, notified_at, "
                          "notified_digest, notified_severity) VALUES ('k', 'k', 'gpu_saturation', 'gpu-1', 100, "
                          "160, :d, 'warning')"), {"d": group_digest([Member("fraud", "warning", True)])})
        conn.execute(text("INSERT INTO alert_group_members (group_id, model, incident_id, severity, open, joined_at, "
                          "summary) VALUES (1, 'fraud', 1, 'warning', true, 100, '{}')"))
    schema.upgrade(engine)
    assert _diff(url) == []
    store = Store(url)
    with store.tx() as s:
        group = s.get(groups.AlertGroupRow, 1)
        assert group is not None and group.told_at == 160
        st = groups.state(group, groups.members(s, 1))
        assert decide_group(st, 160 + 4 * 3600, GroupSettings()).step == GroupStep.REPEAT
    store.close()
    with engine.connect() as conn:
        command.downgrade(schema.alembic_config(conn), "0005_ids_never_reused")
        conn.commit()
        assert "told_at" not in {c["name"] for c in inspect(conn).get_columns("alert_groups")}
        assert conn.execute(text("SELECT notified_at FROM alert_groups")).scalar() == 160
    engine.dispose()


def test_an_ack_given_before_0007_keeps_reading_as_of_the_severity_told(store_url):
    """0007 adds incidents.acknowledged_severity (the severity an ack covers): an incident
    acknowledged before the upgrade keeps it NULL (read as the severity last told, as before),
    a new ack sets it, and a downgrade drops the column with the incidents intact."""
    from alembic import command

    url, _ = store_url
    engine = create_engine(url)
    schema.upgrade(engine, "0006_group_told_at")
    with engine.begin() as conn:
        _incident(conn)
        conn.execute(text("UPDATE incidents SET status = 'open', acknowledged_by = 'api:olga'"))
    schema.upgrade(engine)
    assert _diff(url) == []
    store = Store(url)
    (row,) = store.all_incidents()
    assert row.acknowledged_by == "api:olga" and row.acknowledged_severity is None
    with store.tx() as s:
        got = s.get(IncidentRow, row.id)
        assert got is not None
        got.acknowledged_severity = "critical"
    assert store.incident(row.id).acknowledged_severity == "critical"
    store.close()
    with engine.connect() as conn:
        command.downgrade(schema.alembic_config(conn), "0006_group_told_at")
        conn.commit()
        assert "acknowledged_severity" not in {c["name"] for c in inspect(conn).get_columns("incidents")}
        assert conn.execute(text("SELECT acknowledged_by FROM incidents")).scalar() == "api:olga"
    engine.dispose()
