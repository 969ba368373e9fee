"""A Prometheus that accepts connections and never answers (a network partition, a hung
server) costs a sweep one request's timeouts, not one per batch and window: with a
thousand models that is some sixty batches per window, each waiting out its retries,
and the sweep (every model's alerts) was late by the better part of an hour."""
from __future__ import annotations

import socket
import time

import pytest

from monitor.config import PrometheusConfig
from monitor.cycle.prefetch import prefetch
from monitor.sources.errors import SourceUnavailable
from monitor.sources.prometheus import PrometheusSource
from tests.fixtures_mlflow import SilentServer


class Blackhole:
    """A port whose connections time out (its accept queue full: the kernel drops the SYN),
    as a partitioned or firewalled Prometheus does."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held = socket.create_connection(self.sock.getsockname(), timeout=1)  # fills the queue

    def close(self) -> None:
        self.held.close()
        self.sock.close()


def test_an_unreachable_prometheus_costs_one_batch_of_timeouts_not_one_per_batch() -> None:
    hole = Blackhole()
    try:
        src = PrometheusSource(PrometheusConfig(url=hole.url, timeout_s=0.5, retries=1, step=15))
        began = time.monotonic()
        got = src.query_range_many([f'up{{job="{i}"}}' for i in range(250)], 0, 600)  # four batches
        took = time.monotonic() - began
    finally:
        hole.close()
    assert len(got) == 250 and all(isinstance(g, SourceUnavailable) for g in got)
    assert took < 2.5, took  # one batch's two attempts of 0.5 s, not four batches'


def test_a_batch_that_times_out_does_not_stand_for_the_next_one() -> None:
    """A server that took the request and did not answer in time (a heavy batch) may answer
    the next batch: each is asked."""
    server = SilentServer()
    try:
        src = PrometheusSource(PrometheusConfig(url=server.url, timeout_s=0.3, retries=0, step=15))
        got = src.query_range_many([f'up{{job="{i}"}}' for i in range(130)], 0, 600)  # three batches
    finally:
        server.close()
    assert all(isinstance(g, SourceUnavailable) and not g.whole_source for g in got)
    assert len({id(g) for g in got}) == 3


class _Windows:
    """The source as prefetch sees it: a dead Prometheus, counting the batched calls."""

    def __init__(self) -> None:
        self.calls = 0

    def query_range_many(self, queries, start, end, step=None):
        self.calls += 1
        return [SourceUnavailable("prometheus", "http://127.0.0.1:9", "timed out")] * len(queries)


def test_prefetch_stops_asking_a_dead_prometheus_after_the_first_window(tmp_path) -> None:
    from monitor.cycle.prefetch import ModelPlan
    from monitor.types import Window
    from tests.helpers_vigil import T0, make_config

    cfg = make_config(tmp_path)
    w = Window(t=T0, start=T0 - 1800, baseline_start=T0 - 5400, baseline_end=T0 - 1800)
    plans = [ModelPlan(m, w, warmup=True) for m in cfg.models]
    prom = _Windows()
    out = prefetch(cfg, plans, T0, prom, None)
    assert prom.calls == 1
    assert out.ranges and all(isinstance(r, SourceUnavailable) for r in out.ranges.values())
    assert {start for _, start, _ in out.ranges} == {T0 - 5400, T0 - 1800, T0 - 86400}


def test_a_query_that_times_out_alone_does_not_mark_prometheus_unreachable() -> None:
    """A GET whose answer does not come in time (a heavy query, a long window asked alone)
    reached the server: the sweep must still ask the other queries. urllib3 wraps such a
    read timeout in a ConnectionError for GETs, which read as "no connection at all"."""
    server = SilentServer()
    try:
        src = PrometheusSource(PrometheusConfig(url=server.url, timeout_s=0.3, retries=0, step=15))
        for ask in (lambda: src.query_range("up", 0, 600), lambda: src.query("up", 600)):
            try:
                ask()
            except SourceUnavailable as e:
                assert not e.whole_source and "timed out" in e.reason
            else:
                raise AssertionError("a silent server answered")
    finally:
        server.close()


def test_an_unreachable_prometheus_is_not_asked_again_by_the_next_models_cycle(monkeypatch) -> None:
    """The queries a sweep's prefetch did not plan go to Prometheus from each model's cycle:
    against one that cannot be connected to, each waited out the same retries (timeout_s
    times retries + 1: 40 s a model by default). After one such failure the others fail
    at once, for a short while, naming it."""
    import monitor.sources.http as http_mod

    clock = [1000.0]
    monkeypatch.setattr(http_mod.time, "monotonic", lambda: clock[0])  # the time module's: timed by perf_counter
    hole = Blackhole()
    try:
        src = PrometheusSource(PrometheusConfig(url=hole.url, timeout_s=0.5, retries=1, step=15))
        errors: list[SourceUnavailable] = []
        for ask in (lambda: src.query_range("up", 0, 600), lambda: src.query("up", 600)):
            began = time.perf_counter()
            try:
                ask()
            except SourceUnavailable as e:
                took = time.perf_counter() - began
                errors.append(e)
            else:
                raise AssertionError("a dead Prometheus answered")
        assert took < 0.2, f"the second model's query waited {took:.1f} s for a Prometheus known dead"
        assert all(e.whole_source for e in errors)
        assert "not asked again" in errors[1].reason and "timed out" in errors[1].reason
        clock[0] += http_mod.DOWN_HOLD_S + 1  # a Prometheus back up is asked again soon
        began = time.perf_counter()
        with pytest.raises(SourceUnavailable):
            src.query("up", 600)
        assert time.perf_counter() - began >= 0.5
    finally:
        hole.close()
