"""A Grafana link is a convenience: a dashboard that cannot be built leaves the links
opening whole dashboards, and the daemon's messages still carry them."""
from __future__ import annotations

import logging

from monitor.cycle import messages
from monitor.cycle.messages import Links
from tests.helpers_vigil import make_config


def test_a_dashboard_that_fails_to_build_leaves_whole_dashboard_links(tmp_path, monkeypatch, caplog):
    cfg = make_config(tmp_path, grafana={"url": "http://127.0.0.1:3000"})

    def broken(_config):
        raise ValueError("panel builder bug")

    monkeypatch.setattr(messages, "dashboard_specs", broken)
    with caplog.at_level(logging.WARNING, logger="monitor.cycle.messages"):
        links = Links.from_config(cfg)
    assert links.panels == {}
    assert "panel builder bug" in caplog.records[0].error


def test_panels_are_known_when_the_dashboard_builds(tmp_path):
    cfg = make_config(tmp_path, grafana={"url": "http://127.0.0.1:3000"})
    assert Links.from_config(cfg).panels  # every configured model has its finding panels
