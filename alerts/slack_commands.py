"""`/vigil silence …`: Slack's slash command, read into what to do. Pure: no I/O.

Slack POSTs a slash command form-encoded (`command`, `text`, `user_id`, `user_name`,
`channel_id`, `response_url`, `trigger_id`, ...) to the same signed endpoint as the
buttons; the signature is checked on the raw body first (alerts/slack_actions.py). The
text is what the person typed after the command:

    silence add <matcher>… [for <duration>] [-- <comment>]
    silence list [active|pending|expired|all]
    silence expire <id>

Matchers are Alertmanager's (`model="recommender"`, `severity=~"warning|critical"`),
read by alerts/matchers.py like everywhere else; a value's quotes are kept while the
text is split, so a regex with spaces stays one matcher. Slack escapes `&`, `<` and `>`
in the text, and phones turn quotes into curly ones (undone first) and `--` into a dash (read as `--`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

MAX_SILENCE_ID = 2**63 - 1
DEFAULT_DURATION = "4h"  # what the Silence button gives
DEFAULT_LIST = "active"
LIST_STATES = ("active", "pending", "expired", "all")
USAGE = ("Usage: `/vigil silence add <matcher>… [for <duration>] [-- <comment>]` "
         '(e.g. `/vigil silence add model="recommender" severity="warning" for 2h -- OPS-42`), '
         "`/vigil silence list [active|pending|expired|all]`, `/vigil silence expire <id>`.")
# A token: runs of non-space, non-quote characters and whole quoted strings (escapes kept).
_TOKEN = re.compile(r'(?:[^\s"]+|"(?:\\.|[^"\\])*")+')
_SLACK_ESCAPES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))  # &amp; last: "&amp;lt;" is "&lt;"
# `--`, and the em or en dash that phones and macOS's smart punctuation make of it as it is typed.
COMMENT_MARKS = ("--", "\u2014", "\u2013")
_CURLY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'"})


class CommandError(ValueError):
    """What the person typed cannot be done; the message says what was expected."""


@dataclass(frozen=True)
class SlackCommand:
    """One signed slash command, as Slack sent it."""

    command: str  # "/vigil"
    text: str
    user_id: str
    user_name: str
    channel_id: str | None
    response_url: str | None
    trigger_id: str | None

    @property
    def actor(self) -> str:
        """How the audit log names the person (as for a button press)."""
        if self.user_name and self.user_name != self.user_id:
            return f"slack:{self.user_id} ({self.user_name})"
        return f"slack:{self.user_id}"


@dataclass(frozen=True)
class SilenceCommand:
    verb: str  # add | list | expire | help
    matchers: tuple[str, ...] = ()
    duration: str = DEFAULT_DURATION
    comment: str = ""
    silence_id: int | None = None
    state: str = DEFAULT_LIST  # list: active | pending | expired | all


def is_slash_command(form: Mapping[str, list[str]]) -> bool:
    return "command" in form and "payload" not in form


def read_form(body: bytes) -> dict[str, list[str]]:
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise ValueError("body: expected UTF-8 form data") from None


def parse_command_form(form: Mapping[str, list[str]]) -> SlackCommand:
    """The form of a slash command -> SlackCommand; ValueError names the missing field."""
    def one(name: str) -> str | None:
        got = form.get(name)
        return got[0] if got and got[0] else None

    command, user_id = one("command"), one("user_id")
    if command is None or not command.startswith("/"):
        raise ValueError(f"command: expected the slash command, like '/vigil', got {command!r}")
    if user_id is None:
        raise ValueError("user_id: expected the id of the user who typed the command")
    return SlackCommand(command=command, text=one("text") or "", user_id=user_id,
                        user_name=one("user_name") or user_id, channel_id=one("channel_id"),
                        response_url=one("response_url"), trigger_id=one("trigger_id"))


def clean_text(text: str) -> str:
    for escaped, plain in _SLACK_ESCAPES:
        text = text.replace(escaped, plain)
    return text.translate(_CURLY).strip()


def parse_silence_text(text: str) -> SilenceCommand:
    """What follows `/vigil`; CommandError says what was expected."""
    text = clean_text(text)
    head, _, rest = text.partition(" ")
    if head in ("", "help"):
        return SilenceCommand("help")
    if head != "silence":
        raise CommandError(f"unknown command {head!r}. {USAGE}")
    verb, _, args = rest.strip().partition(" ")
    args = args.strip()
    if verb == "add":
        return _add(args)
    if verb == "list":
        state = args or DEFAULT_LIST
        if state not in LIST_STATES:
            raise CommandError(f"silence list: expected one of {', '.join(LIST_STATES)}, got {state!r}")
        return SilenceCommand("list", state=state)
    if verb == "expire":
        return SilenceCommand("expire", silence_id=_silence_id(args))
    raise CommandError(f"silence: expected add, list or expire, got {verb!r}. {USAGE}")


def _add(args: str) -> SilenceCommand:
    # `--` on its own starts the comment; inside a quoted value it is part of the value
    words: list[str] = []
    comment = ""
    for m in _TOKEN.finditer(args):
        if m.group() in COMMENT_MARKS:
            comment = args[m.end():].strip()
            break
        words.append(m.group())
    duration = DEFAULT_DURATION
    if "for" in words:
        at = words.index("for")
        if at + 1 >= len(words):
            raise CommandError("silence add: `for` needs a duration, like `for 2h` or `for 30m`")
        duration = words[at + 1]
        words = words[:at] + words[at + 2:]
    if not words:
        raise CommandError('silence add: expected at least one matcher, like model="recommender". ' + USAGE)
    return SilenceCommand("add", matchers=tuple(words), duration=duration, comment=comment)


def _silence_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= MAX_SILENCE_ID):
        raise CommandError(f"silence expire: expected a silence id (a number, see `/vigil silence list`), "
                           f"got {raw[:40]!r}")
    return int(raw)


def matcher_blame(field: str, matchers: tuple[str, ...]) -> str:
    """`matchers[1]` -> 'matcher 2 `severity=~"warn("`': the one the person typed."""
    m = re.fullmatch(r"matchers\[(\d+)\]", field)
    if m and int(m.group(1)) < len(matchers):
        i = int(m.group(1))
        return f"matcher {i + 1} `{matchers[i]}`"
    return {"duration": "`for`", "ends_at": "`for`", "comment": "the comment (after --)",
            "matchers": "the matchers"}.get(field, field)
