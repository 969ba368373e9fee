"""`vigil replay --bundle DIR` replays against a local Prometheus and a throwaway SQLite
MLflow registry. A bundle's vigil.yaml made from a production one may still name the
model's serving layer (a KServe InferenceService, an Argo Rollout, a deploy webhook):
the replay's rollbacks must never reach it."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from monitor.replay.demo import TIMES, generate_bundle
from monitor.replay.loop import run_bundle

pytestmark = pytest.mark.integration


@pytest.fixture
def deployer() -> Iterator[tuple[str, list[str]]]:
    """A deploy webhook on 127.0.0.1 that serves v2 and records every call."""
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, body: dict[str, str]) -> None:
            calls.append(f"{self.command} {self.path}")
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._answer({"version": "2"})

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._answer({"ok": "moved"})

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_a_bundle_replay_never_calls_the_serving_layer_its_config_names(tmp_path: Path, deployer, monkeypatch):
    url, calls = deployer
    monkeypatch.setenv("VIGIL_TEST_DEPLOY_SECRET", "s3cret")
    bundle = generate_bundle(tmp_path / "bundle")
    cfg = yaml.safe_load((bundle / "vigil.yaml").read_text())
    (recommender,) = [m for m in cfg["models"] if m["name"] == "recommender"]
    recommender["serving"] = {"kind": "webhook", "url": f"{url}/rollback", "verify_url": f"{url}/serving",
                              "secret_env": "VIGIL_TEST_DEPLOY_SECRET", "timeout_s": 2}
    (bundle / "vigil.yaml").write_text(yaml.safe_dump(cfg))
    # Only the deploy of v2 at 09:00 and the rollback it earns.
    (bundle / "bundle.json").write_text(json.dumps({"start": TIMES.deploy_v2 - 600, "end": TIMES.deploy_v2 + 900,
                                                    "step": 120}))

    result = run_bundle(bundle, tmp_path / "out" / "incidents.jsonl", workdir=tmp_path / "work", progress=False)

    assert calls == []  # production's deployer is never called ...
    rollbacks = [a for i in result.incidents for a in i["actions"] if i["model"] == "recommender"]
    # ... and the bundle's own registry still moves, as the demo shows.
    assert [(a["status"], a["from_version"], a["to_version"]) for a in rollbacks] == [("done", "2", "1")]
