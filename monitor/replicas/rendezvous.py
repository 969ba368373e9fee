"""Which live replica should own which model: rendezvous (highest-random-weight) hashing.

Every replica scores every (replica, model) pair with the same hash and the model goes to
the highest score. All replicas compute the same answer from the same list of live
replicas without talking to each other, and when a replica joins or leaves only the
models it wins or held move: about 1/N of them, never one between two bystanders.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(replica: str, model: str) -> int:
    # blake2b, not hash(): str hashes are salted per process, and replicas must agree.
    digest = hashlib.blake2b(f"{replica}\x00{model}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_of(model: str, replicas: Iterable[str]) -> str | None:
    """The replica `model` belongs to, or None when there is no replica."""
    best: tuple[int, str] | None = None
    for r in replicas:
        score = (weight(r, model), r)  # the id breaks a (64-bit) tie the same way everywhere
        if best is None or score > best:
            best = score
    return None if best is None else best[1]


def assign(models: Iterable[str], replicas: Iterable[str]) -> dict[str, str]:
    """model -> owning replica, for every model (empty when there is no replica)."""
    live = sorted(set(replicas))
    out: dict[str, str] = {}
    for m in models:
        owner = owner_of(m, live)
        if owner is not None:
            out[m] = owner
    return out
