"""Every file the README points to is in the repository: its Markdown links and the
repository paths it quotes (`monitor/store/schema.py`, `deploy/Containerfile`, ...). A path
outside the repository (`../shared/...`) is a dangling link for anyone who clones it."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`([^`\n]+)`")
COMMANDS = {"python", "vigil", "make", "kubectl", "podman", "docker", "systemctl", "sudo", "helm"}
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")


def _top_level() -> set[str]:
    return {p.name for p in ROOT.iterdir() if not p.name.startswith(".") or p.name == ".ci"} - {".venv"}


def _without_code(text: str) -> str:
    """Fenced and indented code blocks removed."""
    out, in_block, prev_blank = [], False, True
    for line in FENCE.sub("", text).splitlines():
        in_block = line.startswith("    ") and (in_block or prev_blank)
        prev_blank = not line.strip()
        if not in_block:
            out.append(line)
    return "\n".join(out)


def _links(text: str) -> list[str]:
    prose = CODE_SPAN.sub("", _without_code(text))  # `models[0](fraud)` in code is not a link
    return [t.split("#")[0] for t in LINK.findall(prose) if not re.match(r"^(https?:|mailto:|#)", t)]


def _quoted_paths(text: str) -> list[str]:
    tops = _top_level()
    out = []
    for span in CODE_SPAN.findall(FENCE.sub("", text)):
        words = span.split()
        command = words[0] in COMMANDS  # `python -m benchmarks.nab --data ../shared/data/nab`: data, not a link
        for word in words:
            word = word.rstrip(".,;:)")
            if re.search(r"[<>*{}$]", word) or "://" in word or (command and word.startswith("../")):
                continue
            if word.startswith("../") or ("/" in word and word.split("/")[0] in tops) or word in tops - {"README.md"}:
                out.append(word)
    return out


def _missing(targets: list[str]) -> list[str]:
    bad = []
    for t in targets:
        path = (ROOT / t.split(":")[0]).resolve()
        if not path.is_relative_to(ROOT) or not path.exists():
            bad.append(t)
    return sorted(set(bad))


def test_every_markdown_link_in_the_readme_resolves_inside_the_repository():
    assert _missing(_links(README.read_text())) == []


def test_every_repository_path_the_readme_quotes_exists():
    assert _missing(_quoted_paths(README.read_text())) == []


def test_the_checker_catches_a_dangling_link_and_a_path_outside_the_repository():
    text = "see [the design](docs/NOPE.md) and `../shared/contracts/README.md` and `monitor/nope.py`"
    assert _missing(_links(text)) == ["docs/NOPE.md"]
    assert _missing(_quoted_paths(text)) == ["../shared/contracts/README.md", "monitor/nope.py"]
