"""Silences with Alertmanager's matchers: =, !=, =~, !~ (fully anchored), on Vigil's labels."""
from __future__ import annotations

import pytest

from alerts.labels import incident_labels
from alerts.matchers import MatcherError, MatchOp, matcher_from_api, parse_matcher
from alerts.silences import Silence, SilenceError, SilenceState, check_new, muting

T = 1_800_000_000.0
LABELS = incident_labels(
    "recommender", "warning",
    [{"kind": "feature_drift", "entity": "session_length"}, {"kind": "kpi_drop", "entity": "ctr"}],
    [{"kind": "upstream_drift", "entity": "feature session_length"}], {"team": "recsys"})


def test_equality_and_negation_on_model_severity_and_labels():
    assert parse_matcher('model="recommender"').matches(LABELS)
    assert not parse_matcher("model=ranker").matches(LABELS)
    assert parse_matcher('severity!="critical"').matches(LABELS)
    assert parse_matcher("team=recsys").matches(LABELS)  # the model's own labels from vigil.yaml


def test_regex_is_fully_anchored_like_alertmanager():
    assert parse_matcher('model=~"recomm.*"').matches(LABELS)
    assert not parse_matcher('model=~"recomm"').matches(LABELS)  # a substring is not a match
    assert parse_matcher('model!~"rank.*"').matches(LABELS)
    assert parse_matcher('severity=~"warning|critical"').matches(LABELS)


def test_finding_kind_and_entity_match_any_finding_and_negatives_none():
    assert parse_matcher('kind="kpi_drop"').matches(LABELS)
    assert parse_matcher('entity="ctr"').matches(LABELS)
    assert not parse_matcher('kind!="kpi_drop"').matches(LABELS)
    assert parse_matcher('kind!="no_data"').matches(LABELS)


def test_missing_label_reads_as_empty():
    assert parse_matcher('absent=""').matches(LABELS)
    assert not parse_matcher('absent="x"').matches(LABELS)


def test_a_backslash_in_a_quoted_regex_keeps_its_meaning_as_in_alertmanager():
    """`_unquote` dropped every backslash: `model=~"fraud-v\\d+"` became the regex `fraud-vd+`,
    so the silence muted nothing it named (and a `!~` one muted what it excluded). As in
    Alertmanager, only \\" \\\\ and \\n are escapes in a quoted value; any other backslash stays."""
    labels = {"model": "fraud-v2", "entity": "rec.v1"}
    assert parse_matcher(r'model=~"fraud-v\d+"').matches(labels)
    assert not parse_matcher(r'model!~"fraud-v\d+"').matches(labels)
    assert not parse_matcher(r'entity=~"rec\.v1"').matches({"entity": "recXv1"})
    assert parse_matcher(r'entity=~"rec\.v1"').matches(labels)
    assert parse_matcher(r'model="a\"b\\c"').value == 'a"b\\c'
    for text in (r'model=~"fraud-v\d+"', r'model="a\\d"', r'model="a\"b"'):
        m = parse_matcher(text)
        assert parse_matcher(str(m)) == m, str(m)  # what the listing shows means the same


def test_bad_matchers_name_what_is_wrong():
    with pytest.raises(MatcherError, match="OP one of"):
        parse_matcher("model recommender")
    with pytest.raises(MatcherError, match="invalid regular expression"):
        parse_matcher('model=~"(unclosed"')
    with pytest.raises(MatcherError, match=r"matchers\[0\].name"):
        matcher_from_api({"name": "1bad", "value": "x"}, "matchers[0]")


def test_api_shape_round_trips():
    m = matcher_from_api({"name": "severity", "value": "warn.*", "isRegex": True, "isEqual": False})
    assert m.op == MatchOp.NRE and m.to_api() == {"name": "severity", "value": "warn.*", "isRegex": True,
                                                  "isEqual": False}
    assert str(m) == 'severity!~"warn.*"'


def silence(*texts: str, start: float = T, end: float = T + 3600) -> Silence:
    return Silence(1, tuple(parse_matcher(t) for t in texts), start, end, "alice", "maintenance")


def test_silence_mutes_only_while_active_and_only_what_matches():
    s = silence('model="recommender"', 'severity="warning"')
    assert s.state(T - 1) == SilenceState.PENDING and not s.mutes(LABELS, T - 1)
    assert s.mutes(LABELS, T + 10)
    assert s.state(T + 3600) == SilenceState.EXPIRED and not s.mutes(LABELS, T + 3600)
    critical = {**LABELS, "severity": "critical"}
    assert not s.mutes(critical, T + 10)  # an escalation gets through a warning silence
    assert muting([s, silence("model=ranker")], LABELS, T + 10) == [s]


@pytest.mark.parametrize(("texts", "start", "end", "field"), [
    ((), T, T + 60, "matchers"),
    (('model=~".*"',), T, T + 60, "matchers"),  # would silence everything
    (("model=x",), T, T - 60, "ends_at"),
    (("model=x",), T - 7200, T - 3600, "ends_at"),
    (("model=x",), T, T + 400 * 86400, "ends_at"),
])
def test_invalid_silences_name_the_field(texts, start, end, field):
    with pytest.raises(SilenceError) as e:
        check_new([parse_matcher(t) for t in texts], start, end, "alice", "why", T)
    assert e.value.field == field
