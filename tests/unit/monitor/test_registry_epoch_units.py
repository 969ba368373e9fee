"""MLflow counts time in epoch milliseconds (creation_timestamp); a registry.jsonl made from
an MLflow export, or a `vigil.created_at` tag a pipeline copied from it, carries them. Read
as seconds they land in the year 58,000: the bundle's deploys never happen in the replay (no
error, no deploy, nothing blamed). Epoch numbers are told apart by size, as samples are."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.replay.registry_bundle import read_registry_jsonl
from monitor.sources.registry import CREATED_AT_TAG, parse_timestamp
from monitor.sources.registry.versions import version_info

T = 1795161600.0  # 2026-11-20T08:00:00Z


def test_a_bundle_with_mlflows_millisecond_times_replays_at_those_times(tmp_path: Path) -> None:
    lines = [{"type": "model", "name": "m", "at": int(T * 1000) - 60_000},
             {"type": "version", "name": "m", "version": "1", "at": int(T * 1000)},
             {"type": "alias", "name": "m", "alias": "champion", "version": "1", "at": str(int(T * 1000) + 300_000)}]
    path = tmp_path / "registry.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    assert [e.at for e in read_registry_jsonl(path)] == [T - 60, T, T + 300]


def test_a_creation_tag_in_milliseconds_dates_the_version_right() -> None:
    info = version_info("m", 1, T * 1000 + 5000, {CREATED_AT_TAG: str(int(T * 1000))}, "", None, "READY")
    assert info.created_at == T


@pytest.mark.parametrize("value", [T, int(T), str(int(T)), T * 1e3, T * 1e6, T * 1e9, "2026-11-20T08:00:00Z"])
def test_every_epoch_unit_reads_as_seconds(value: object) -> None:
    assert parse_timestamp(value) == pytest.approx(T)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_non_finite_text_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
