"""API tokens scoped to models (`api.tokens[].models`): a team's operator token acts on its
own models and is refused, with an audit entry, on another team's; reads stay fleet-wide;
a token without `models` is as before."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from monitor.api.app import create_app
from monitor.config import ConfigError
from tests.helpers_vigil import T0, MemoryRegistry, StubPrometheus, make_config, make_vigil, model_config, step_curve

A, B = "team-a-ranker", "team-b-churn"
TOKENS = {"alice": "alice-team-a-operator-4f1c", "ingrid": "ingrid-team-a-ingest-77d0",
          "olga": "olga-fleet-operator-0b9e"}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


class Fleet:
    """Two teams' models, v2 deployed on each an hour ago, each with a KPI that dropped."""

    def __init__(self, tmp_path: Any) -> None:
        curves = {}
        for m in (A, B):
            curves[f'ctr_of{{model="{m}"}}'] = step_curve(0.05, 0.045, T0 - 600)
            curves[f'p99_of{{model="{m}"}}'] = step_curve(0.1, 0.8, T0 - 600)
        self.registry = MemoryRegistry()
        cfg = make_config(tmp_path, models=[model_config(A), model_config(B)], api={"tokens": [
            {"name": "alice", "role": "operator", "token_sha256": sha(TOKENS["alice"]), "models": ["team-a-*"]},
            {"name": "ingrid", "role": "ingest", "token_sha256": sha(TOKENS["ingrid"]), "models": ["team-a-*"]},
            {"name": "olga", "role": "operator", "token_sha256": sha(TOKENS["olga"])}]})
        self.vigil = make_vigil(cfg, prometheus=StubPrometheus(curves), registry=self.registry, notifiers={})
        self.client = TestClient(create_app(self.vigil), raise_server_exceptions=False)
        now = time.time()
        for m in (A, B):
            for v in ("1", "2"):
                self.registry.add_version(m, v, created_at=T0 - 30 * 86400)
            self.registry.aliases[(m, "champion")] = "1"
            self.vigil.deploys.poll(cfg.model(m), now - 7200)
            self.registry.aliases[(m, "champion")] = "2"
            self.vigil.deploys.poll(cfg.model(m), now - 3600)

    def post(self, who: str, url: str, body: Any = None) -> Any:
        return self.client.post(url, json=body, headers=bearer(who))

    def audit(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.client.get("/v1/audit", headers=bearer("olga")).json()["items"]
        return items


@pytest.fixture
def fleet(tmp_path) -> Fleet:
    return Fleet(tmp_path)


def rollback(model: str) -> str:
    return f"/v1/models/{model}/rollback"


def test_a_scoped_operator_rolls_back_its_model_and_is_refused_on_another_teams(fleet):
    r = fleet.post("alice", rollback(A), {"reason": "ctr dropped after v2", "to_version": "1"})
    assert r.status_code == 200 and r.json()["status"] == "done" and fleet.registry.aliases[(A, "champion")] == "1"
    r = fleet.post("alice", rollback(B), {"reason": "ctr dropped after v2", "to_version": "1"})
    assert r.status_code == 403
    assert r.json() == {"error": "model 'team-b-churn' is outside the models of token 'alice' (team-a-*): "
                                 "rollback refused"}
    assert fleet.registry.aliases[(B, "champion")] == "2", "nothing moved"
    refused = [e for e in fleet.audit() if e["action"] == "api.refused"]
    assert len(refused) == 1
    assert refused[0]["actor"] == "api:alice" and refused[0]["target"] == "model:team-b-churn"
    assert refused[0]["detail"]["action"] == "rollback" and refused[0]["detail"]["models"] == ["team-a-*"]
    assert not any(e["action"].startswith("rollback.") and e["target"].endswith(B) for e in fleet.audit())


def test_a_scoped_operator_acks_and_silences_only_its_own_incidents(fleet):
    a = fleet.vigil.run_cycle(A, T0).incident_id
    b = fleet.vigil.run_cycle(B, T0).incident_id
    assert a and b
    assert fleet.post("alice", f"/v1/incidents/{a}/ack").status_code == 200
    r = fleet.post("alice", f"/v1/incidents/{b}/ack")
    assert r.status_code == 403 and "'team-b-churn'" in r.json()["error"] and "'alice'" in r.json()["error"]
    r = fleet.post("alice", f"/v1/incidents/{b}/silence", {"duration_s": 3600, "reason": "not mine"})
    assert r.status_code == 403
    assert fleet.vigil.store.incident(b).acknowledged_by is None
    assert fleet.vigil.store.incident(b).silenced_until is None
    refused = [(e["target"], e["detail"]["action"], e["detail"]["model"]) for e in fleet.audit()
               if e["action"] == "api.refused"]
    assert refused == [(f"incident:{b}", "ack", B), (f"incident:{b}", "silence", B)]


def test_reads_are_not_scoped(fleet):
    fleet.vigil.run_cycle(B, T0)
    r = fleet.client.get(f"/v1/incidents?model={B}", headers=bearer("alice"))
    assert r.status_code == 200 and r.json()["total"] == 1


def test_a_scoped_ingest_token_posts_its_models_samples_only(fleet):
    records = [{"timestamp": T0}]
    assert fleet.post("ingrid", "/v1/samples", {"model": A, "records": records}).status_code == 202
    r = fleet.post("ingrid", "/v1/samples", {"model": B, "records": records})
    assert r.status_code == 403 and "samples refused" in r.json()["error"]
    assert fleet.vigil.store.samples(B, 0, T0 + 1) == []
    labels = [{"prediction_id": "p1", "label": 1, "timestamp": T0}]
    r = fleet.post("ingrid", "/v1/labels", {"model": B, "labels": labels})
    assert r.status_code == 403 and "labels refused" in r.json()["error"]
    r = fleet.post("ingrid", "/v1/labels", {"model": A, "labels": labels})
    assert r.status_code == 422 and "has no `performance` configured" in r.json()["error"], "in scope: checked on"


def test_a_token_without_models_acts_on_every_model(fleet):
    for m in (A, B):
        r = fleet.post("olga", rollback(m), {"reason": "fleet-wide revert", "to_version": "1"})
        assert r.status_code == 200 and fleet.registry.aliases[(m, "champion")] == "1"
    assert not any(e["action"] == "api.refused" for e in fleet.audit())


def test_scope_config_errors_name_the_field(tmp_path):
    token = {"name": "alice", "role": "operator", "token_sha256": sha("x")}
    with pytest.raises(ConfigError) as empty:
        make_config(tmp_path, api={"tokens": [token, {**token, "name": "bob", "models": []}]})
    assert "api.tokens[1](bob).models" in dict(empty.value.errors)
    with pytest.raises(ConfigError) as blank:
        make_config(tmp_path, api={"tokens": [{**token, "models": ["team-a-*", ""]}]})
    assert "api.tokens[0](alice).models[1]" in dict(blank.value.errors)
    # A model not configured (yet, or any more) is no error: models come and go.
    make_config(tmp_path, api={"tokens": [{**token, "models": ["team-z-*", "gone"]}]})


# ----------------------------------------------------------------------------- silences
def silence(fleet: Fleet, who: str, *matchers: str) -> Any:
    return fleet.post(who, "/v1/silences", {"matchers": list(matchers), "duration": "2h", "comment": "OPS-42"})


@pytest.mark.parametrize("matchers", [['model="team-a-ranker"', 'severity="warning"'], ['model=~"team-a-.*"'],
                                      ['model=~"team-a-ranker|team-a-ctr"'], ['model=~"team-a-\\d+"'],
                                      ['model=~"team-b-churn"', 'model="team-a-ranker"']])
def test_a_scoped_token_makes_silences_confined_to_its_models(fleet, matchers):
    r = silence(fleet, "alice", *matchers)
    assert r.status_code == 201, r.json()


@pytest.mark.parametrize(("matchers", "why"), [
    (['model="team-b-churn"'], 'model="team-b-churn" names a model outside team-a-*'),
    (['severity="critical"'], 'no model="..." or model=~"..." matcher'),
    (['model!="team-b-churn"'], 'no model="..." or model=~"..." matcher'),
    (['model=~"team-a-ranker|team-b-churn"'], "matches 'team-b-churn', outside team-a-*"),
    (['model=~"team-.*"'], "reads model=~\"team-.*\" as any name beginning 'team-', not all within team-a-*"),
    (['model=~"(?i:team-a-ranker)"'], 'use model="name" matchers'),
    (['model=~".*"'], "as any name, not all within"),
    (['model=~"team-a-ranker|"'], "matches '', outside"),  # the empty name: alerts of no model
])
def test_a_scoped_token_is_refused_a_silence_that_reaches_beyond_its_models(fleet, matchers, why):
    r = silence(fleet, "alice", *matchers)
    assert r.status_code == 403 and why in r.json()["error"] and "token 'alice'" in r.json()["error"]
    refused = [e for e in fleet.audit() if e["action"] == "api.refused"]
    assert [(e["target"], e["detail"]["action"], e["detail"]["matchers"]) for e in refused] == [
        ("silences", "silence.create", matchers)]
    assert fleet.client.get("/v1/silences", headers=bearer("alice")).json()["total"] == 0


def test_a_scoped_token_expires_only_silences_within_its_models(fleet):
    theirs = silence(fleet, "olga", f'model="{B}"').json()["id"]
    fleet_wide = silence(fleet, "olga", 'severity="warning"').json()["id"]
    mine = silence(fleet, "alice", f'model="{A}"').json()["id"]
    for other in (theirs, fleet_wide):
        r = fleet.client.delete(f"/v1/silences/{other}", headers=bearer("alice"))
        assert r.status_code == 403 and "token 'alice'" in r.json()["error"]
        assert fleet.client.get("/v1/silences?state=active", headers=bearer("alice")).json()["total"] == 3
    assert [e["target"] for e in fleet.audit() if e["action"] == "api.refused"] == [
        f"silence:{theirs}", f"silence:{fleet_wide}"]
    assert fleet.client.delete(f"/v1/silences/{mine}", headers=bearer("alice")).status_code == 200
    assert fleet.client.delete(f"/v1/silences/{theirs}", headers=bearer("olga")).status_code == 200
    assert fleet.client.delete("/v1/silences/999", headers=bearer("alice")).status_code == 404


def test_what_a_silence_regex_can_match_is_never_read_as_less():
    from monitor.model_scope import regex_pieces

    assert regex_pieces("team-a-ranker|team-a-ctr") == [("team-a-ranker", False), ("team-a-ctr", False)]
    assert regex_pieces("team-a-[0-9]+-x") == [("team-a-", True)]
    assert regex_pieces("fraud-v[12]") == [("fraud-v1", False), ("fraud-v2", False)]
    # A POSIX class is a letter to RE2 (Alertmanager's engine) but a set of `[:alph` to
    # Python's parser: Vigil cannot tell, rather than read it as those characters.
    assert regex_pieces("team-a-[[:alpha:]]") is None
    assert regex_pieces("(?i:team-a-ranker)") is None


def _check_config_warns_of_the_typo_alone(config: Path, where: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`vigil check-config` passes `config` and warns that `taem-b-*` (at `where`) matches no
    model, and of no other scope pattern: a plain name may name a model yet to come."""
    from monitor.cli import main

    assert main(["check-config", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"{where}: 'taem-b-*' matches none of the configured models" in err, err
    assert "team-a-*'" not in err and "retired-model" not in err, "a plain name may name a model yet to come"


def test_check_config_warns_of_a_scope_pattern_no_model_matches(tmp_path, capsys):
    f = tmp_path / "vigil.yaml"
    f.write_text(f"""api:
  tokens:
    - name: alice
      role: operator
      token_sha256: {sha("x")}
      models: ["team-a-*", "taem-b-*", retired-model]
models:
  - name: team-a-ranker
""")
    _check_config_warns_of_the_typo_alone(f, f"{f}:6: warning: api.tokens[0](alice).models[1]", capsys)


def test_check_config_warns_of_a_tokens_file_lines_scope_pattern_no_model_matches(tmp_path, capsys):
    """A tokens_file line's models (its fourth word) were never checked: `taem-b-*` there
    passed check-config silently, and the token reached none of team b's models."""
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"# name role sha256 [models]\nbob operator {sha('y')} team-a-*,taem-b-*,retired-model\n")
    f = tmp_path / "vigil.yaml"
    f.write_text("""api:
  tokens_file: tokens.txt
models:
  - name: team-a-ranker
""")
    _check_config_warns_of_the_typo_alone(f, f"{f}:2: warning: {tokens}:2(bob).models[1]", capsys)


def test_a_refusal_stays_a_403_when_the_audit_log_cannot_be_written(fleet, monkeypatch, caplog):
    """A scoped token refused on another team's model got a 500 "internal error" when the
    audit append failed (the store busy, a disk full): the caller, and the access log, saw a
    server fault instead of "outside your models", and retried. The refusal stands and is logged."""
    def store_down(*_: Any, **__: Any) -> Any:
        raise OperationalError("INSERT INTO audit_log", {}, Exception("database is locked"))

    monkeypatch.setattr(fleet.vigil.store, "audit", store_down)
    r = fleet.post("alice", rollback(B), {"reason": "ctr dropped after v2", "to_version": "1"})
    assert r.status_code == 403, r.text
    assert "outside the models of token 'alice'" in r.json()["error"]
    assert fleet.registry.aliases[(B, "champion")] == "2", "nothing moved"
    assert "could not be audited" in caplog.text and "team-b-churn" in caplog.text
