"""When the challenger is pulled, beside a failed KPI or SLO, and whether the pull is under way.

A `performance_drop` of the challenger's version measured on realised labels is what makes
the cycle's incident critical (alerts/policy.py): grounds to pull it, as a failed KPI is,
through the same durable intent. An estimated drop (CBPE, labels not in yet) is a warning:
it only holds promotion (monitor/cycle/canary_blame.py `performance_hold`).

Nothing the version served before its latest pull is ground to pull it again: a person
who set it on the alias again (serving fixed, say) starts a new canary. Its KPI and SLO
points and its samples before the pull are left out of the canary window
(`judged_window`, `rows_since`), as a first challenger has none. A drop measured on its
predictions before the pull (the window that pulled it stays in the performance horizon
for up to a day) still holds promotion; its windows that start once the pull is done (its
serving layer pinned to the champion: no prediction of it since) pull it, once labelled.

A version pulled twice within a day is being set again by a loop (a CD pipeline re-applying
its manifest after each pull), not fixed by a person: judged from each pull on, a bad
challenger kept its share about 50 minutes of every 51 (`min_points` of its own each time).
Once more it is judged on its whole window, the points that pulled it included, and pulled
at once, as before a re-set had a window of its own (`fresh_since`).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd

from alerts.rollback import ActionStatus, RollbackOutcome
from correlators.causes import names_version
from detectors.records import Finding, FindingKind
from monitor.store.canary import pulled_at, pulls_since
from monitor.store.repository import Store
from monitor.types import Window


def drops_of(findings: Sequence[Finding], challenger: str, label_value: str) -> list[Finding]:
    """The challenger's own performance drops: its version named as the correlators read a
    label (`names_version`: as the registry writes it, as `performance.version_value`
    renders it, or, without that template, as the label's one number, "v2"), or as the
    canary's label value (`canary.version_value`). The correlators took a drop on "v2" for
    the challenger's, not the champion's, while the canary matched only "2": none acted."""
    def mine(f: Finding) -> bool:
        named = f.evidence.get("version")
        return names_version(named, challenger, f.evidence.get("version_value")) or str(named) == label_value
    return [f for f in findings if f.kind == FindingKind.PERFORMANCE_DROP and mine(f)]


def _realised(findings: Sequence[Finding], challenger: str, label_value: str) -> list[Finding]:
    return [f for f in drops_of(findings, challenger, label_value) if f.evidence.get("basis") == "realised"
            and not f.evidence.get("label_bias")]  # labels mostly of one class: not the challenger's figure


def accuracy_pull_cause(findings: Sequence[Finding], challenger: str, label_value: str,
                        since: float | None = None) -> str:
    """Why the challenger is pulled on its own labels ("" when it is not): its worst realised
    drop in a window starting at or after `since` (its latest pull done; None: any)."""
    realised = [f for f in _realised(findings, challenger, label_value) if since is None or f.window_start >= since]
    if not realised:
        return ""
    worst = max(realised, key=lambda f: abs(f.value))
    return f"its own {worst.message}"


def accuracy_grounds(findings: Sequence[Finding], challenger: str, label_value: str, held: str,
                     since: float | None) -> tuple[str, str]:
    """(why the challenger is pulled on its own labels or "", `held` as the run says it): a
    drop measured before its latest pull (`since`, from `fresh_since`) holds it, saying so,
    and pulls nothing (unless it was pulled twice within a day: `since` None)."""
    cause = accuracy_pull_cause(findings, challenger, label_value, since)
    if cause or since is None or not held or not _realised(findings, challenger, label_value):
        return cause, held
    when = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "", (f"{held} (measured on its predictions before its pull at {when}: no ground to pull it again; "
                "its windows from then on are, once labelled)")


REPEATED_PULLS = 2  # within REPEATED_WITHIN_S: a loop setting it again, not a person's fix
REPEATED_WITHIN_S = 86_400.0


def fresh_since(store: Store, model: str, challenger: str, t: float) -> float | None:
    """Where the challenger's window starts afresh: its latest pull (None: never pulled, or
    pulled REPEATED_PULLS times within a day, when its whole window counts). Read once per
    cycle, where the canary is judged, and carried on its judgement."""
    with store.tx() as s:
        since = pulled_at(s, model, challenger)
        if since is None or pulls_since(s, model, challenger, t - REPEATED_WITHIN_S) >= REPEATED_PULLS:
            return None
    return since


SET_AGAIN = "set again"  # how a re-set run's detail begins


def set_again_detail(since: float | None, detail: str = SET_AGAIN) -> str:
    """What a pulled challenger's run says once it is set on the alias again, as this cycle
    judged it (`since`: `fresh_since`); any other `detail` is left as it is. Written once, it
    still said "judged on its whole window" once its pulls were over a day old and its window
    started at its latest pull again."""
    if not detail.startswith(SET_AGAIN):
        return detail
    if since is not None:
        return f"{SET_AGAIN}: judged from its pull on"
    return (f"{SET_AGAIN} after {REPEATED_PULLS} or more pulls within 24 h (a pipeline re-applying it?): "
            "judged on its whole window, the points that pulled it included")


def judged_window(w: Window, length: float, since: float | None) -> Window:
    """The canary's window: the last `length`, from the challenger's latest pull on (`since`:
    `fresh_since`). A person who set a pulled version again started a new canary: its points
    before the pull (still in the window for up to `length`) pulled it again at once,
    however it served since."""
    start = w.t - length if since is None else max(w.t - length, min(since, w.t))
    return Window(t=w.t, start=start, baseline_start=w.baseline_start, baseline_end=w.baseline_end)


def rows_since(samples: pd.DataFrame | None, w: Window, length: float) -> pd.DataFrame | None:
    """The cycle's samples in a window `judged_window` shortened (all of them otherwise):
    none from before the pull, whose shifted predictions failed the re-deploy's distributions."""
    if samples is None or w.start <= w.t - length or "_ts" not in samples.columns:
        return samples
    return samples[samples["_ts"].to_numpy(dtype=float) >= w.start]


def under_way(outcome: RollbackOutcome) -> bool:
    """Done, or pending on its own intent. Another action of the model in flight (the
    champion's rollback) answers "pending" too: then nothing was asked, and the next
    verdict asks again."""
    if outcome.status == ActionStatus.PENDING:
        return outcome.own
    return outcome.status in (ActionStatus.DONE, ActionStatus.NOOP)
