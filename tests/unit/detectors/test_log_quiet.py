"""Quiet templates: with no spans, a line a service kept writing stops while the service
keeps logging (an exception cut the path after the first line); a quieter service, or
one that stopped logging altogether, is not that."""
from __future__ import annotations

import random

from detectors.logs import LogDetector, LogReference, LogWindow
from detectors.logs.params import LogParams
from detectors.records import LogRecord

T0, START, END = 10_000.0, 20_000.0, 20_300.0


def _lines(t0: float, seconds: int, *, cut: bool = False, every: int = 1, seed: int = 0) -> list[LogRecord]:
    """orders writes 'received' then 'saved' per request (one a second, or one per `every`);
    with `cut`, 'saved' never comes."""
    rng = random.Random(seed)
    out = []
    for i in range(0, seconds, every):
        oid = rng.randint(1, 10**6)
        out.append(LogRecord(t0 + i, "orders", f"INFO order {oid} received from user {rng.randint(1, 999)}",
                             level="INFO"))
        if not cut:
            out.append(LogRecord(t0 + i + 0.3, "orders", f"INFO order {oid} saved in {rng.randint(3, 40)} ms",
                                 level="INFO"))
    return out


def _quiet(cur: list[LogRecord], params: LogParams | None = None):
    det = LogDetector(params or LogParams())
    ref = _lines(T0, 600, seed=1)
    state = det.fit(LogReference(ref), T0, T0 + 600)
    found = det.score(state, LogWindow(cur), START, END)
    return [f for f in found if f.statistic == "vanished_template"]


def test_a_line_that_stopped_while_the_service_kept_logging_is_found_as_ranking_evidence():
    (f,) = _quiet(_lines(START, 300, cut=True, seed=2))
    assert f.service == "orders" and "saved" in f.evidence["template"]
    assert f.evidence["by"] == "active seconds" and f.evidence["ranking_only"] is True
    assert f.score > 0.5 and START <= f.onset < START + 2 and "no spans" in f.message


def test_less_traffic_or_no_traffic_is_not_a_stopped_line():
    assert _quiet(_lines(START, 300, every=10, seed=3)) == []  # a tenth of the requests, both lines
    assert _quiet(_lines(START, 300, seed=3)) == []  # nothing changed
    assert _quiet(_lines(START, 1, cut=True, seed=3)) == []  # one request, then silence: too little to say


def test_it_can_be_turned_off():
    assert _quiet(_lines(START, 300, cut=True, seed=2), LogParams(quiet=False)) == []


def test_the_stopped_lines_of_many_services_and_templates_are_found_in_one_pass(monkeypatch):
    # Each service's templates were read one by one (a group-by per service, then a
    # slice and a count per template): 18 % of a Nezha case ranked without traces.
    import pandas as pd

    from detectors.logs import detector

    services = [f"svc{i}" for i in range(4)]

    def lines(t0: float, seconds: int, *, cut: bool = False) -> list[LogRecord]:
        out = []
        for svc in services:
            for r in _lines(t0, seconds, cut=cut, seed=len(svc)):
                out.append(LogRecord(r.ts, svc, r.line, level=r.level))
            # 12 more templates per service (one per length), written every 3 seconds throughout
            out += [LogRecord(t0 + i + 0.5, svc, "INFO stage " + " ".join(["step"] * k), level="INFO")
                    for i in range(0, seconds, 3) for k in range(1, 13)]
        return out

    calls, inside = [], [False]

    def counting(name, orig):
        def counted(self, *a, **k):
            if inside[0]:
                calls.append(name)
            return orig(self, *a, **k)
        return counted
    for cls, name in ((pd.DataFrame, "groupby"), (pd.Series, "groupby"), (pd.Series, "nunique")):
        monkeypatch.setattr(cls, name, counting(name, getattr(cls, name)))
    check = detector.quiet_findings

    def watched(*a, **k):
        inside[0] = True
        try:
            return check(*a, **k)
        finally:
            inside[0] = False
    monkeypatch.setattr(detector, "quiet_findings", watched)
    det = LogDetector()
    state = det.fit(LogReference(lines(T0, 600)), T0, T0 + 600)
    found = [f for f in det.score(state, LogWindow(lines(START, 300, cut=True)), START, END)
             if f.statistic == "vanished_template"]
    assert sorted(f.service for f in found) == services
    assert all("saved" in f.evidence["template"] and f.evidence["ranking_only"] for f in found)
    assert len(calls) <= 2, calls  # was 65: 2 group-bys and a count per service, a count per template
