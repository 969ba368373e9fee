"""Every `vigil ...` command line the README shows names a command Vigil has, and each of
its `--options` is one that command takes (`vigil run --config F --log-format json` was
refused while the README wrote it so). Placeholders (FILE, N) are not parsed: the options
are looked up on the command's parser."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from monitor.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PARSER = build_parser()
SPAN = re.compile(r"`(vigil [^`]+)`")
PROSE = {"vigil was upgraded on disk under this daemon"}  # a log line the README quotes


def _command_lines(text: str) -> list[str]:
    lines = SPAN.findall(text)
    lines += [ln.strip().split(" #")[0] for ln in text.splitlines() if ln.strip().startswith("vigil ")]
    return [ln for ln in lines if ln not in PROSE]


def _subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((dict(a.choices) for a in p._actions if isinstance(a, argparse._SubParsersAction)), {})


def _problems(line: str) -> list[str]:
    """An option counts only on the parser it is written after: `vigil --log-format json run`
    and `vigil run --log-format json` are checked against different parsers, as argparse does."""
    parser, words, out = PARSER, line.split()[1:], []
    for i, word in enumerate(words):
        option = word.strip("[]").split("=")[0]
        if option.startswith("--"):
            if option not in parser._option_string_actions:
                out.append(f"{line}: {option} is not an option of that command")
        elif word in {"COMMAND", "..."}:
            return out  # `vigil COMMAND --help`; `vigil run ... --clock-file` is also written whole
        elif word in _subcommands(parser):
            parser = _subcommands(parser)[word]
        elif _subcommands(parser) and not (i and words[i - 1].startswith("-")):
            out.append(f"{line}: no command {' '.join(words[:i + 1])!r}")
            return out
    return out


def test_every_vigil_command_line_in_the_readme_exists_with_its_options():
    problems = [p for line in _command_lines(README.read_text()) for p in _problems(line)]
    assert problems == []


def test_the_check_sees_an_unknown_option_and_command():
    assert _problems("vigil run --config F --no-such") == ["vigil run --config F --no-such: --no-such is not an option "
                                                           "of that command"]
    assert _problems("vigil db downgrade") == ["vigil db downgrade: no command 'db downgrade'"]
    assert _problems("vigil outbox list --config FILE [--json]") == []


def _leaves(p: argparse.ArgumentParser, prefix: str = "vigil") -> list[str]:
    subs = _subcommands(p)
    return [leaf for name, sub in subs.items() for leaf in _leaves(sub, f"{prefix} {name}")] if subs else [prefix]


def test_every_command_is_in_the_readmes_command_line_table():
    """An operator reads the table to learn what the CLI does: `vigil silence add|list|expire`
    was missing from it (told only deep in the Silences section)."""
    section = README.read_text().split("## Command line", 1)[1].split("\n## ", 1)[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| `vigil ")]
    missing = [leaf for leaf in _leaves(PARSER) if not any(f"`{leaf}" in row for row in rows)]
    assert missing == []
