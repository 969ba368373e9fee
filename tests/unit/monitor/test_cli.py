"""The `vigil` command line: its version, and a help text for every command and option."""
from __future__ import annotations

import argparse
import importlib.metadata

import pytest

from monitor.cli import build_parser, main


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"vigil {importlib.metadata.version('vigil')}"


def _parsers(parser: argparse.ArgumentParser, path: str = "vigil") -> list[tuple[str, argparse.ArgumentParser]]:
    """The parser and every subcommand's parser below it, with the command line that reaches it."""
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _parsers(sub, f"{path} {name}")
    return out


def test_every_command_and_option_has_a_help_text():
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help:
                missing.append(f"{path}: {'/'.join(action.option_strings) or action.dest}")
            if isinstance(action, argparse._SubParsersAction):
                listed = {a.dest: a.help for a in action._choices_actions}
                missing += [f"{path} {name}" for name in action.choices if not listed.get(name)]
    assert missing == []


def test_every_command_prints_its_help(capsys):
    for path, _ in _parsers(build_parser()):
        with pytest.raises(SystemExit) as e:
            main([*path.split()[1:], "--help"])
        assert e.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: {path}")


def test_a_missing_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    assert "required: command" in capsys.readouterr().err


def test_clock_file_gives_run_and_serve_the_shared_replay_time(tmp_path, capsys):
    from monitor.cli import _clock
    from monitor.clock import FileClock

    clock = tmp_path / "clock"
    FileClock.write(clock, 1234.5)
    args = build_parser().parse_args(["run", "--config", "vigil.yaml", "--no-api", "--clock-file", str(clock)])
    c = _clock(args)
    assert c is not None and c.now() == 1234.5
    FileClock.write(clock, 99.0)
    assert c.now() == 99.0
    assert _clock(build_parser().parse_args(["run", "--config", "vigil.yaml"])) is None
    missing = build_parser().parse_args(["serve", "--config", "vigil.yaml", "--clock-file", str(tmp_path / "no")])
    with pytest.raises(SystemExit) as e:
        _clock(missing)
    assert e.value.code == 2 and "--clock-file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["run", "--config", "vigil.yaml", "--log-format", "json", "--log-level", "debug"],  # as the README writes it
    ["--log-format", "json", "--log-level", "debug", "run", "--config", "vigil.yaml"],  # the systemd unit's order
    ["db", "upgrade", "--store", "sqlite:///v.db", "--log-format", "json", "--log-level", "debug"],
])
def test_log_options_are_taken_before_or_after_the_command(argv):
    """`vigil run --config F --log-format json` was refused ("unrecognized arguments"): the
    log options were the top-level parser's only, so only `vigil --log-format json run` ran."""
    args = build_parser().parse_args(argv)
    assert (args.log_format, args.log_level) == ("json", "DEBUG")


def test_log_options_keep_their_defaults_when_not_given():
    args = build_parser().parse_args(["run", "--config", "vigil.yaml"])
    assert (args.log_format, args.log_level) == ("text", "INFO")
