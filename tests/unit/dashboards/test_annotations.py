"""Annotation bodies and the create/patch/find decisions, without the outbox or HTTP:
dashboards/annotations.py works on plain events and any object with the client's calls."""
from __future__ import annotations

from typing import Any, cast

import pytest

from dashboards.annotations import (
    AnnotationEvent,
    AnnotationKind,
    PayloadError,
    annotation_body,
    key_tag,
    upsert_annotation,
)
from dashboards.grafana_api import GrafanaClient, GrafanaRequestError


class RecordingClient:
    """The three annotation calls of GrafanaClient, answered from memory."""

    def __init__(self, stored: dict[int, dict[str, Any]] | None = None) -> None:
        self.stored = dict(stored or {})
        self.calls: list[tuple[str, Any]] = []

    def create_annotation(self, body: dict[str, Any]) -> int:
        self.calls.append(("create", body))
        new_id = max(self.stored, default=0) + 1
        self.stored[new_id] = body
        return new_id

    def patch_annotation(self, annotation_id: int, body: dict[str, Any]) -> None:
        self.calls.append(("patch", annotation_id))
        if annotation_id not in self.stored:
            raise GrafanaRequestError("not found", status=404)
        self.stored[annotation_id] = body

    def find_annotations(self, *, tags: list[str], from_ms: int, to_ms: int, limit: int = 10) -> list[dict[str, Any]]:
        self.calls.append(("find", tags))
        return [{"id": i, **b} for i, b in self.stored.items()
                if all(t in b["tags"] for t in tags) and from_ms <= b["time"] <= to_ms][:limit]


def as_client(c: RecordingClient) -> GrafanaClient:
    return cast(GrafanaClient, c)


DEPLOY = AnnotationEvent(AnnotationKind.DEPLOY, "deploy:recommender:4",
                         {"model": "recommender", "alias": "champion", "version": "4", "previous_version": "3",
                          "at": 1_790_000_001.25})


def incident(status: str) -> AnnotationEvent:
    return AnnotationEvent(AnnotationKind.INCIDENT, "incident:42",
                           {"incident_id": 42, "model": "recommender", "severity": "critical", "status": status,
                            "title": "CTR dropped", "opened_at": 1_790_000_100.0,
                            "resolved_at": 1_790_003_700.5 if status == "resolved" else None})


def test_bodies_carry_the_tags_the_dashboards_query() -> None:
    body = annotation_body(DEPLOY)
    assert body == {"time": 1_790_000_001_250,
                    "tags": ["vigil", "deploy", "recommender", "v4", "vigil-key/deploy/recommender/4"],
                    "text": "Deploy: recommender champion -> v4 (was v3)"}
    opened, resolved = annotation_body(incident("open")), annotation_body(incident("resolved"))
    assert "timeEnd" not in opened and opened["tags"] == ["vigil", "incident", "recommender", "critical",
                                                     "vigil-key/incident/42"]
    assert resolved["timeEnd"] == 1_790_003_700_500 and resolved["text"] == "[critical] CTR dropped (resolved)"
    rollback = AnnotationEvent(AnnotationKind.ROLLBACK, "rollback:7",
                               {"model": "m", "from_version": "4", "to_version": "3", "at": 10, "dry_run": True})
    assert annotation_body(rollback)["text"] == "Rollback [dry run] m v4 -> v3 (done)"


def test_a_key_tag_has_no_colon_and_fits_grafanas_tag_column() -> None:
    """Grafana splits a tag at a colon (key:value) and keeps each half in a varchar(100)."""
    long_a = AnnotationEvent(AnnotationKind.ROLLBACK, "rollback:" + "m" * 100 + ":intent-1", {})
    long_b = AnnotationEvent(AnnotationKind.ROLLBACK, "rollback:" + "m" * 100 + ":intent-2", {})
    tags = {key_tag(long_a), key_tag(long_b), key_tag(DEPLOY)}
    assert len(tags) == 3 and all(":" not in t and len(t) <= 100 for t in tags), tags


@pytest.mark.parametrize("payload, field", [({"model": "m", "version": "4"}, "'at'"),
                                            ({"model": "m", "version": "4", "at": True}, "'at'"),
                                            ({"version": "4", "at": 1}, "'model'")])
def test_a_missing_or_malformed_field_is_named(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(PayloadError, match=field):
        annotation_body(AnnotationEvent(AnnotationKind.DEPLOY, "deploy:m:4", payload))


def test_first_delivery_creates_and_a_known_id_is_patched() -> None:
    c = RecordingClient()
    body = annotation_body(incident("open"))
    aid = upsert_annotation(as_client(c), incident("open"), body)
    resolved = annotation_body(incident("resolved"))
    assert upsert_annotation(as_client(c), incident("resolved"), resolved, known_id=str(aid)) == aid
    assert [k for k, _ in c.calls] == ["create", "patch"] and c.stored[aid]["timeEnd"] == 1_790_003_700_500


def test_a_deleted_annotation_is_created_again() -> None:
    c = RecordingClient()
    aid = upsert_annotation(as_client(c), DEPLOY, annotation_body(DEPLOY), known_id=999)
    assert aid != 999 and [k for k, _ in c.calls] == ["patch", "create"]


def test_a_retry_finds_its_own_annotation_instead_of_duplicating_it() -> None:
    c = RecordingClient()
    first = upsert_annotation(as_client(c), DEPLOY, annotation_body(DEPLOY))
    again = upsert_annotation(as_client(c), DEPLOY, annotation_body(DEPLOY), retried=True)
    assert again == first and len(c.stored) == 1
    assert c.calls[1] == ("find", ["vigil", key_tag(DEPLOY)])
    # Without `retried` there is nothing to find: the first attempt creates straight away.
    assert [k for k, _ in c.calls].count("find") == 1
