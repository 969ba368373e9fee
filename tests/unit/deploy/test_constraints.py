"""deploy/constraints.txt: the versions the image build installs, frozen from the tested
virtualenv (`make constraints`). Without it two builds a week apart ran different pandas,
Evidently or SQLAlchemy than CI had tested. Every dependency pyproject.toml declares (and the
`postgres` extra the image installs) must be pinned there, to one version pyproject's range
allows; the Containerfile must install under it. CI itself still installs from pyproject."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.unit.deploy.test_container import _instructions

ROOT = Path(__file__).resolve().parents[3]
CONSTRAINTS = ROOT / "deploy" / "constraints.txt"
IMAGE_EXTRAS = ("postgres",)  # `pip install '.[postgres]'` in the Containerfile


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for e in IMAGE_EXTRAS for r in project["optional-dependencies"][e]]
    return [Requirement(r) for r in project["dependencies"] + extras]


def pins(text: str) -> dict[str, Version]:
    """name -> version of each `name==version` line; anything else is refused."""
    out = {}
    for line in (x.split("#", 1)[0].strip() for x in text.splitlines()):
        if line:
            req = Requirement(line)
            [spec] = req.specifier
            assert spec.operator == "==", f"{line}: expected name==version"
            out[canonicalize_name(req.name)] = Version(spec.version)
    return out


def pin_errors(requirements: list[Requirement], pinned: dict[str, Version]) -> list[str]:
    errors = []
    for req in requirements:
        version = pinned.get(canonicalize_name(req.name))
        if version is None:
            errors.append(f"{req.name}: not pinned")
        elif not req.specifier.contains(version, prereleases=True):
            errors.append(f"{req.name}=={version}: outside pyproject's {req.specifier}")
    return errors


def test_every_dependency_the_image_installs_is_pinned_within_pyprojects_range() -> None:
    assert CONSTRAINTS.exists(), "run `make constraints`"
    assert pin_errors(declared(), pins(CONSTRAINTS.read_text())) == []


def test_a_missing_pin_and_a_pin_outside_the_range_are_named() -> None:
    reqs = [Requirement("pandas>=2.2,<3"), Requirement("psycopg[binary]>=3.1")]
    assert pin_errors(reqs, {"pandas": Version("3.0.1")}) == [
        "pandas==3.0.1: outside pyproject's <3,>=2.2", "psycopg: not pinned"]


def test_the_image_build_installs_under_the_constraints() -> None:
    instructions = _instructions((ROOT / "deploy" / "Containerfile").read_text())
    stages = [n for n, (i, _) in enumerate(instructions) if i == "FROM"]
    build = [a for _, a in instructions[stages[0]:stages[1]]]
    copied = [a for i, a in instructions if i == "COPY" and a.startswith("deploy/constraints.txt ")]
    assert copied, "the build stage must COPY deploy/constraints.txt"
    target = copied[0].split()[-1]
    installs = [m for a in build for m in re.findall(r"pip install [^&]*", a)]
    assert installs and all(f"-c {target}" in i for i in installs), installs
    [drain3] = [i for i in installs if "drain3==" in i]  # installed --no-deps, outside pyproject
    assert f"drain3=={pins(CONSTRAINTS.read_text())['drain3']}" in drain3
