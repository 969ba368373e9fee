"""Which "no data" a deploy can explain, and the cause of the rest.

A deploy explains a signal's missing data only when the data was there at the deploy and
stopped after it (the new version no longer exports a metric, or renamed it): the finding
says its series stopped (`stopped_s`, monitor/cycle/gather.py) and its last point is no
earlier than the deploy, less the onset slack (a poll dates a move when it sees it). A query
that matches nothing (a misspelt metric name), a source that is down, too few sample rows:
those read no data from before any deploy, or say nothing of when the data went, and the
query or the source is their cause, not a version. A GPU node gone (its `last_seen`) is no
model version's doing either.
"""
from __future__ import annotations

from collections.abc import Sequence

from correlators.deploy_advice import fmt_time
from correlators.incident import Cause, CauseKind
from detectors.records import DeployEvent, Finding, FindingKind

STOPPED_AT = "stopped_at"  # evidence: the last point of a series that stopped, kept over the incident's story
SCORE = 0.5  # below a deploy a stopped series points at from close by (0.35 + 0.25 * proximity)
SHOWN = 3  # gaps named in the explanation; the evidence lists them all
# What on-call checks first when a signal reads nothing and no deploy explains it.
QUERY_CHECK = ("Check the query's metric name and labels first: a query that matches no series (a name misspelt or "
               "renamed) reads no data from the first cycle; run it in Prometheus. Then the source and the exporter "
               "behind it.")


def stopped_at(f: Finding) -> float | None:
    """When a NO_DATA finding's series had its last point, if the finding says it stopped."""
    if f.kind != FindingKind.NO_DATA:
        return None
    at, gone = f.evidence.get(STOPPED_AT), f.evidence.get("stopped_s")
    if isinstance(at, int | float) and not isinstance(at, bool):
        return float(at)
    if isinstance(gone, int | float) and not isinstance(gone, bool):
        return f.window_end - float(gone)
    return None


def explained_by(f: Finding, d: DeployEvent, slack: float) -> bool:
    """Whether deploy `d` may explain finding `f`: any but a NO_DATA one, and that one only
    when its series was there at the deploy and stopped after it."""
    if f.kind != FindingKind.NO_DATA:
        return True
    at = stopped_at(f)
    return at is not None and at >= d.at - slack


def stopped_words(findings: Sequence[Finding]) -> str:
    """'ctr stopped at 2027-01-15 07:45 UTC, after it': the stopped series a deploy is blamed for."""
    gone = sorted((at, f.entity) for f in findings if (at := stopped_at(f)) is not None)
    return ", ".join(f"{e} stopped at {fmt_time(at)}" for at, e in gone) + ", after it"


def gap_causes(symptoms: Sequence[Finding], suspects: Sequence[DeployEvent], causes: Sequence[Cause],
               slack: float) -> list[Cause]:
    """For an incident whose only symptoms are "no data": its gaps that no blamed deploy explains,
    as one cause (none when every gap is a deploy's). An incident with other symptoms ranks those."""
    if not symptoms or any(f.kind != FindingKind.NO_DATA for f in symptoms):
        return []
    blamed = [c.deploy for c in causes if c.kind == CauseKind.DEPLOY and c.deploy is not None]
    gaps = [f for f in symptoms if not any(explained_by(f, d, slack) for d in blamed)]
    if not gaps:
        return []
    names = sorted({f.entity for f in gaps})
    said = [f.message or f"no data for {f.entity}" for f in sorted(gaps, key=lambda f: f.entity)[:SHOWN]]
    more = f"; and {len(gaps) - SHOWN} more" if len(gaps) > SHOWN else ""
    text = f"Missing data, not a change of the model: {'; '.join(said)}{more}. {QUERY_CHECK}"
    spared = [d for d in suspects if d not in blamed]
    if spared:
        d = spared[-1]
        text += (f" {d.model} v{d.version} (alias '{d.alias}' at {fmt_time(d.at)}) is not blamed: no series "
                 "stopped after it (data missing from the start, or gone before it, is no version's doing).")
    return [Cause(kind=CauseKind.NO_DATA, entity=", ".join(names), score=SCORE, explanation=text,
                  evidence={"signals": names,
                            **({"deploy_not_blamed": f"{spared[-1].model} v{spared[-1].version}"} if spared else {})})]
