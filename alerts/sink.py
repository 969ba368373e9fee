"""JSON-lines sink: where notifications go when there is no Slack token.

Each delivery appends one JSON object per line and fsyncs it, so a line on disk is a
delivered notification even after a crash; a short readable line goes to the console.
Updates of one incident are further lines with the same `key`: the file is a log of
what Slack would have shown, in order. Each line names its outbox row (`id`), so after
a crash between the write and its record, `find_delivered` finds the line instead of
writing a second one.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from alerts.outbox import DeliveryResult, DeliveryStatus, MessageKind, OutboxMessage
from alerts.slack_blocks import render_incident, render_rollback
from alerts.slack_replies import render_group, render_reply
from detectors.records import json_safe


class JsonlSink:
    """Notifier writing to a JSON-lines file and the console."""

    name = "sink"

    def __init__(
        self,
        path: str | Path,
        *,
        console: bool = True,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.console = console
        self.stream = stream
        self.clock = clock
        self._lock = threading.Lock()
        self._lines: int | None = None  # counted on first use, not in __init__

    def deliver(self, message: OutboxMessage) -> DeliveryResult:
        text = _summary(message)
        record = {
            "id": message.id,
            "notifier": message.notifier,
            "kind": str(message.kind),
            "key": message.key,
            "text": text,
            "payload": message.payload,
            "delivered_at": self.clock(),
        }
        try:
            line = json.dumps(json_safe(record), default=str, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as e:
            return DeliveryResult(DeliveryStatus.FAILED, error=f"payload: not serialisable to JSON ({e})")
        try:
            with self._lock:
                n = self._append(line)
        except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
            return DeliveryResult(
                DeliveryStatus.FAILED,
                error=f"sink: cannot write {self.path} ({e.strerror or e}); fix slack.sink_path or its permissions",
            )
        except OSError as e:  # disk full, I/O error: may pass
            return DeliveryResult(DeliveryStatus.RETRY, error=f"sink: writing {self.path} failed ({e}); will retry")
        if self.console:
            stream = self.stream if self.stream is not None else sys.stderr
            with contextlib.suppress(OSError, ValueError):  # a closed console must not undo a delivery on disk
                print(f"[vigil] {text}", file=stream, flush=True)
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"line": n}, detail={"path": str(self.path)})

    def find_delivered(self, message: OutboxMessage) -> DeliveryResult | None:
        """The line an earlier attempt wrote for this outbox row, if there is one."""
        try:
            with self._lock:
                n = _find_line(self.path, message)
        except OSError as e:
            return DeliveryResult(DeliveryStatus.RETRY, error=f"sink: reading {self.path} failed ({e}); will retry")
        if n is None:
            return None
        return DeliveryResult(DeliveryStatus.DELIVERED, ref={"line": n},
                              detail={"path": str(self.path), "found_in_file": True})

    def _append(self, line: str) -> int:
        if self._lines is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lines = _count_lines(self.path)
        with open(self.path, "a", encoding="utf-8") as fh:
            if _torn(self.path):  # a crash mid-write left half a line: start on a fresh one
                fh.write("\n")
                self._lines += 1
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._lines += 1
        return self._lines


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def _torn(path: Path) -> bool:
    """Does the file end inside a line?"""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def _find_line(path: Path, message: OutboxMessage) -> int | None:
    """1-based number of the line written for `message`'s outbox row, or None."""
    if not path.exists():
        return None
    needle = f'"id": {message.id},'.encode()  # json.dumps' separators: cheap to test before parsing
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if needle not in raw:
                continue
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn line from a crash mid-write: not a delivery
            if record.get("id") == message.id and record.get("key") == message.key:
                return n
    return None


def _summary(message: OutboxMessage) -> str:
    """One readable line: the same text Slack would show as the notification."""
    p: dict[str, Any] = message.payload or {}
    try:
        if message.kind == MessageKind.INCIDENT:
            text = render_incident(p)[0]
            channel = p.get("channel")
            return f"INCIDENT #{p.get('incident_id')} {p.get('status', 'open')}: {text}" + (
                f" -> {channel}" if channel else ""
            )
        if message.kind == MessageKind.ROLLBACK:
            return f"ROLLBACK: {render_rollback(p)[0]}"
        if message.kind == MessageKind.REPLY:
            return f"REPLY in {message.key}: {render_reply(p)[0]}"
        if message.kind == MessageKind.GROUP:
            return f"GROUP #{p.get('group_id')} {p.get('status', 'open')}: {render_group(p)[0]}" + (
                f" -> {p['channel']}" if p.get("channel") else "")
    except (KeyError, TypeError, ValueError) as e:
        return f"{str(message.kind).upper()} {message.key} (unreadable payload: {e})"
    if message.kind == MessageKind.DEPLOY:
        prev = f" (was v{p['previous_version']})" if p.get("previous_version") else ""
        return f"DEPLOY {p.get('model', '?')} {p.get('alias', '')} -> v{p.get('version', '?')}{prev}".replace("  ", " ")
    return f"{str(message.kind).upper()} {message.key}"
