"""deploy/Containerfile read as a builder would: two stages, the runtime stage built from
the base image and the build stage's virtualenv only (no compiler, no pip cache), a
non-root USER, a HEALTHCHECK on /readyz, config and secrets from mounts and environment.

Not built here: base images cannot be pulled on these machines (see README, "Container
image"); this checks the recipe, not an image."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|python3?-dev|libpq-dev|cargo|rustc)\b")


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


@pytest.fixture(scope="module")
def stages() -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    name = None
    for ins, args in _instructions(CONTAINERFILE.read_text()):
        if ins == "FROM":
            name = args.split(" AS ")[-1].strip() if " AS " in args else str(len(out))
            out[name] = []
        if name is not None:
            out[name].append((ins, args))
    return out


def test_two_stages_and_the_runtime_stage_is_last(stages):
    assert list(stages) == ["build", "runtime"]


def test_the_runtime_stage_has_no_build_tools(stages):
    runtime = stages["runtime"]
    assert not [a for i, a in runtime if i == "RUN" and (COMPILERS.search(a) or "pip install" in a)]
    copies = [a for i, a in runtime if i == "COPY"]
    assert copies == ["--from=build /opt/vigil /opt/vigil"]  # the virtualenv, not the source tree
    assert COMPILERS.search(" ".join(a for i, a in stages["build"] if i == "RUN"))  # they stay in the build stage


def test_the_runtime_stage_runs_as_a_non_root_user(stages):
    [user] = [a for i, a in stages["runtime"] if i == "USER"]
    uid = user.split(":")[0]
    assert uid not in ("0", "root") and int(uid) >= 1000
    assert f"--uid {uid}" in " ".join(a for i, a in stages["runtime"] if i == "RUN")


def test_the_healthcheck_asks_readyz(stages):
    [hc] = [a for i, a in stages["runtime"] if i == "HEALTHCHECK"]
    env = " ".join(a for i, a in stages["runtime"] if i == "ENV")
    assert "CMD" in hc and "VIGIL_READYZ_URL" in hc and "VIGIL_READYZ_URL=http://127.0.0.1:8080/readyz" in env


def test_config_and_secrets_come_from_outside_the_image(stages):
    runtime = stages["runtime"]
    [cmd] = [a for i, a in runtime if i == "CMD"]
    assert "/etc/vigil/vigil.yaml" in cmd
    assert not [a for i, a in runtime if i in ("COPY", "ADD") and ("yaml" in a or "secret" in a.lower())]
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert not re.search(r"(TOKEN|SECRET|PASSWORD|KEY)=", env)
    [entry] = [a for i, a in runtime if i == "ENTRYPOINT"]
    assert '"--log-format", "json"' in entry  # one JSON object per line for the log shipper
