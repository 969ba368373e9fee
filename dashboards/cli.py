"""`vigil dashboards`: write provisioning files and/or provision over the HTTP API."""
from __future__ import annotations

import os
import sys

from monitor.config import VigilConfig

from .grafana_api import GrafanaAuthError, GrafanaClient, GrafanaError, GrafanaUnavailable
from .provisioning import provision_over_api, write_provisioning_files

TOKEN_ENV = "GRAFANA_TOKEN"


def run_dashboards(config: VigilConfig, out: str | None, grafana_url: str | None, token: str | None) -> int:
    """Exit code: 0 done, 1 Grafana refused (auth, conflict, bad request), 2 Grafana unreachable, 64 usage.

    `grafana_url` falls back to grafana.url in the config; `token` to the config's
    grafana.token, then to $GRAFANA_TOKEN.
    """
    url = grafana_url or (config.grafana.url if out is None else None)
    if not out and not url:
        print("vigil dashboards: give --out DIR (provisioning files) and/or --grafana-url URL "
              "(or set grafana.url in the config)", file=sys.stderr)
        return 64
    if out:
        paths = write_provisioning_files(config, out)
        print(f"wrote {len(paths)} files under {out}:")
        for p in paths:
            print(f"  {p}")
    if not url:
        return 0
    token = token or config.grafana.token or os.environ.get(TOKEN_ENV)
    with GrafanaClient(url, token) as client:
        try:
            report = provision_over_api(config, client)
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
    for uid in report.created + report.updated + report.unchanged:
        print(f"  {url.rstrip('/')}/d/{uid}")
    return 0
