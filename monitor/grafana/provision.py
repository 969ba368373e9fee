"""Provisioning as the daemon and `vigil dashboards` run it: the config decides where
Grafana is and which token to use; `dashboards/` builds and saves from the specs.

The daemon treats Grafana as a convenience (a failure is logged, monitoring goes on);
the CLI reports it through its exit code so a deploy pipeline can react.
"""
from __future__ import annotations

import logging
import sys
from urllib.parse import quote, urlencode

from dashboards.grafana_api import GrafanaAuthError, GrafanaClient, GrafanaError, GrafanaUnavailable
from dashboards.provisioning import ProvisionReport, provision_over_api, write_provisioning_files
from monitor.config import VigilConfig

from . import TOKEN_ENV, grafana_token
from .specs import dashboard_specs

__all__ = ["TOKEN_ENV", "missing_datasources", "provision_on_start", "run_dashboards"]
log = logging.getLogger(__name__)


def provision_on_start(config: VigilConfig, client: GrafanaClient | None = None) -> ProvisionReport | None:
    """For the daemon: provision if configured; a Grafana problem is logged, never fatal."""
    g = config.grafana
    if not (g.provision_on_start and g.url):
        return None
    own = client is None
    client = client or GrafanaClient(g.url, grafana_token(g))
    try:
        for problem in missing_datasources(config, client):
            log.warning("grafana data source missing: %s", problem, extra={"grafana": g.url})
        report = provision_over_api(dashboard_specs(config), client)
        log.info("grafana provisioned", extra={"grafana": g.url, "summary": report.summary()})
        return report
    except GrafanaError as e:
        log.warning("grafana provisioning failed; dashboards keep their previous version",
                    extra={"grafana": g.url, "error": str(e)})
        return None
    finally:
        if own:
            client.close()


def missing_datasources(config: VigilConfig, client: GrafanaClient) -> list[str]:
    """Each data-source uid the dashboards name that Grafana does not have, said with its key and how
    to find the right one: the panels of a wrong uid each say the data source was not found.
    Loki's and Tempo's uids are asked only when their sources are configured (no panel uses them else)."""
    g, src = config.grafana, config.sources
    wanted = [("prometheus", g.prometheus_datasource_uid)]
    wanted += [("loki", g.loki_datasource_uid)] if src.loki is not None else []
    wanted += [("tempo", g.tempo_datasource_uid)] if src.tempo is not None else []
    out = []
    for kind, uid in wanted:
        if client.datasource_exists(uid) is False:
            out.append(f"grafana.{kind}_datasource_uid is {uid!r}, but Grafana at {client.url} has no data source "
                       f"with that uid (GET /api/datasources/uid/{uid}: 404 Data source not found), so every "
                       f"{kind} panel would say the data source was not found. Its uid is the last part of the "
                       "address of its page under Connections > Data sources (/connections/datasources/edit/"
                       f"<uid>), or each one's `uid` in GET {client.url}/api/datasources: set "
                       f"grafana.{kind}_datasource_uid to it, or have Grafana make one with uid {uid!r} from the "
                       "files of `vigil dashboards --out DIR` (provisioning/datasources/vigil.yaml)")
    return out


def run_dashboards(config: VigilConfig, out: str | None, grafana_url: str | None, token: str | None) -> int:
    """`vigil dashboards`. Exit code: 0 done, 1 Grafana refused (auth, conflict, bad request) or
    lacks a data source the dashboards name (nothing saved; with --out only a warning), 2 Grafana
    unreachable, 64 usage.

    `grafana_url` falls back to grafana.url in the config; `token` to the config's
    grafana.token, then to $GRAFANA_TOKEN.
    """
    url = grafana_url or (config.grafana.url if out is None else None)
    if not out and not url:
        print("vigil dashboards: give --out DIR (provisioning files) and/or --grafana-url URL "
              "(or set grafana.url in the config)", file=sys.stderr)
        return 64
    spec = dashboard_specs(config)
    if out:
        paths = write_provisioning_files(spec, out)
        print(f"wrote {len(paths)} files under {out}:")
        for p in paths:
            print(f"  {p}")
    if not url:
        return 0
    token = token or grafana_token(config.grafana)
    with GrafanaClient(url, token) as client:
        try:
            missing = missing_datasources(config, client)
            for problem in missing:
                print(f"vigil dashboards: {'warning: ' if out else ''}{problem}", file=sys.stderr)
            if missing and not out:  # with --out, the files just written make them when Grafana restarts
                return 1
            report = provision_over_api(spec, client)
        except GrafanaAuthError as e:
            print(f"vigil dashboards: {e}", file=sys.stderr)
            return 1
        except GrafanaUnavailable as e:
            print(f"vigil dashboards: {e}. Run it again when Grafana is up: it is idempotent and "
                  "finishes what this run did not.", file=sys.stderr)
            return 2
        except GrafanaError as e:
            print(f"vigil dashboards: {e}", file=sys.stderr)
            return 1
    print(f"grafana {url}: {report.summary()}")
    # The links Slack gives: grafana.public_url (when this is the configured Grafana) and the
    # dashboards' org, without which a viewer in another org gets "Dashboard not found".
    g = config.grafana
    base = g.public_url if g.public_url and url == g.url else url
    org = "" if g.org_id is None else "?" + urlencode({"orgId": g.org_id})  # as Slack's links: none when unset
    for uid in report.created + report.updated + report.unchanged:
        print(f"  {base.rstrip('/')}/d/{quote(uid, safe='')}{org}")
    return 0
