"""Every configuration snippet in the README is one Vigil accepts: each ```yaml block is
written to a file and checked by `load_config`, as `vigil check-config` would (a block
without `models:` gets one minimal model, a fragment needs nothing more). A snippet that
names a key Vigil has renamed, a value it no longer takes or a section that moved fails
here instead of in a new user's first `check-config`.

Blocks that are not Vigil's configuration are named: the Slack app manifest, and the
`serving:` alternatives, each of which is checked as one model's `serving`."""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from monitor.config import VigilConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)
SLACK_MANIFEST = {"features", "oauth_config"}  # the Slack app's manifest, not vigil.yaml
MODEL = "models:\n  - name: recommender\n"
ENV = {"VIGIL_INGEST_TOKEN": "ingest-token-for-the-readme", "VIGIL_API_TOKEN": "api-token-for-the-readme"}


def _blocks() -> list[tuple[int, str]]:
    text = README.read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in YAML_BLOCK.finditer(text)]


def _documents(body: str) -> list[str]:
    """The vigil.yaml texts a block stands for: itself (with a minimal model when it has no
    `models:`), one per `serving:` alternative, or none for the Slack manifest. The text is
    kept as written, so Vigil's own YAML reading (1.2 scalars, duplicate keys) is checked too."""
    top = {m.group(1) for m in re.finditer(r"^([A-Za-z_]+):", body, re.MULTILINE)}
    if top <= SLACK_MANIFEST:
        return []
    if top == {"serving"}:
        alternatives = re.split(r"^(?=serving:)", body, flags=re.MULTILINE)
        return [MODEL + textwrap.indent(a, "    ") for a in alternatives if a.strip()]
    return [body if "models" in top else body + "\n" + MODEL]


@pytest.mark.parametrize("line,body", _blocks(), ids=lambda v: f"README:{v}" if isinstance(v, int) else "")
def test_every_readme_yaml_block_is_a_valid_vigil_config(line, body, tmp_path, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for i, text in enumerate(_documents(body)):
        path = tmp_path / f"vigil-{i}.yaml"
        path.write_text(text)
        assert isinstance(load_config(path), VigilConfig)


def test_the_check_sees_a_renamed_key():
    """The guard itself: a README snippet with a key Vigil does not know fails."""
    from monitor.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="polcy"):
        parse_config({"models": [{"name": "recommender", "polcy": {}}]})
