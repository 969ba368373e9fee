"""Rendezvous assignment: the same answer everywhere, balanced, and minimal movement when a
replica joins or leaves; the lease timing keeps a takeover inside two intervals."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from monitor.replicas import LeaseTiming, assign, owner_of

MODELS = [f"model-{i}" for i in range(1000)]
THREE = ["host-a-1f2e", "host-b-9c0d", "host-c-77aa"]


def test_assignment_is_stable_and_independent_of_order_and_process():
    once = assign(MODELS, THREE)
    assert assign(MODELS, list(reversed(THREE))) == once
    code = ("from monitor.replicas import assign\n"
            f"print(sorted(assign({MODELS[:50]!r}, {THREE!r}).items()))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == str(sorted((m, once[m]) for m in MODELS[:50]))  # no per-process salt


def test_assignment_is_balanced_within_reason():
    counts = Counter(assign(MODELS, THREE).values())
    assert set(counts) == set(THREE)
    assert all(333 - 60 <= n <= 333 + 60 for n in counts.values()), counts  # ~3.5 standard deviations


def test_a_join_moves_about_a_quarter_and_only_to_the_newcomer():
    before = assign(MODELS, THREE)
    after = assign(MODELS, [*THREE, "host-d-0b1c"])
    moved = [m for m in MODELS if before[m] != after[m]]
    assert all(after[m] == "host-d-0b1c" for m in moved)
    assert 250 - 60 <= len(moved) <= 250 + 60


def test_a_leave_moves_only_the_leavers_models():
    before = assign(MODELS, THREE)
    after = assign(MODELS, THREE[:2])
    assert {m for m in MODELS if before[m] != after[m]} == {m for m in MODELS if before[m] == THREE[2]}


def test_no_replica_no_owner():
    assert assign(MODELS[:3], []) == {} and owner_of("m", []) is None


def test_default_timing_takes_over_within_two_intervals():
    t = LeaseTiming.for_interval(60.0)
    assert (t.renew_every, t.lease_ttl) == (20.0, 60.0)
    assert t.takeover_bound == 80.0 < 2 * 60.0


def test_a_lease_shorter_than_two_renewals_is_refused():
    with pytest.raises(ValueError, match="two renewals"):
        LeaseTiming(renew_every=5.0, lease_ttl=9.0)
