"""The audit chain alone (alerts/audit.py): plain SHA-256 before keying, HMAC after the
`audit.keyed` marker, checked in one pass that names the first bad seq."""
from __future__ import annotations

from dataclasses import replace

from alerts.audit import (
    GENESIS,
    KEYED_MARKER,
    AuditEntry,
    ChainKey,
    entry_hash,
    keyed_hash,
    marker_detail,
    verify_chain,
)

KEY = ChainKey(b"k" * 32)


def chain(n: int, key: ChainKey | None, *, legacy: int = 0) -> list[AuditEntry]:
    """`legacy` plain entries, then (with a key) a marker and keyed entries up to `n` in all."""
    out: list[AuditEntry] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        keyed = key is not None and seq > legacy
        action, detail = ((KEYED_MARKER, marker_detail(key)) if keyed and seq == legacy + 1 and key
                          else ("incident.ack", {"i": seq}))
        actor = "vigil" if action == KEYED_MARKER else "alice"
        fields = (prev, seq, 1000.0 + seq, actor, action, "incident:1", detail)
        h = keyed_hash(key, *fields) if keyed and key else entry_hash(*fields)
        out.append(AuditEntry(seq, 1000.0 + seq, actor, action, "incident:1", detail, prev, h))
        prev = h
    return out


def rehash_from(entries: list[AuditEntry], seq: int, **change: object) -> list[AuditEntry]:
    """What someone with write access but no key can do: change an entry, re-hash the rest publicly."""
    out = entries[:seq - 1]
    prev = out[-1].hash if out else GENESIS
    for e in entries[seq - 1:]:
        e = replace(e, prev_hash=prev, **(change if e.seq == seq else {}))
        e = replace(e, hash=entry_hash(e.prev_hash, e.seq, e.at, e.actor, e.action, e.target, e.detail))
        out.append(e)
        prev = e.hash
    return out


def test_a_keyed_chain_verifies_with_its_key():
    v = verify_chain(chain(10, KEY), KEY)
    assert v.ok and v.checked == 10 and v.keyed_from == 1 and v.legacy == 0 and v.head_seq == 10


def test_a_rewrite_rehashed_with_the_public_function_fails_the_hmac():
    tampered = rehash_from(chain(10, KEY), 4, actor="mallory")
    assert verify_chain(tampered).ok, "without the key only the links are checked, and they were re-made"
    v = verify_chain(tampered, KEY)
    assert not v.ok and v.first_bad_seq == 4 and "without the key" in v.reason


def test_a_plain_chain_rehashed_after_a_rewrite_passes_the_chain_check_alone():
    # What the issue found: this is why checkpoints exist (tests/unit/audit/).
    assert verify_chain(rehash_from(chain(10, None), 4, actor="mallory")).ok


def test_legacy_entries_then_keyed_entries():
    entries = chain(12, KEY, legacy=5)
    v = verify_chain(entries, KEY)
    assert v.ok and v.legacy == 5 and v.keyed_from == 6
    # A legacy entry rewritten and re-hashed to the end breaks at the marker, the first keyed entry.
    v = verify_chain(rehash_from(entries, 2, actor="mallory"), KEY)
    assert not v.ok and v.first_bad_seq == 6


def test_another_key_is_named():
    v = verify_chain(chain(3, KEY), ChainKey(b"x" * 32))
    assert not v.ok and v.first_bad_seq == 1 and KEY.key_id in v.reason


def test_without_a_key_keyed_entries_are_counted_as_unchecked():
    v = verify_chain(chain(6, KEY, legacy=2))
    assert v.ok and v.legacy == 2 and v.unchecked == 4


def test_a_gap_and_a_broken_link_name_their_seq():
    entries = chain(6, KEY)
    v = verify_chain(entries[:2] + entries[3:], KEY)
    assert not v.ok and v.first_bad_seq == 4 and "gap" in v.reason
    v = verify_chain(entries[:3] + [replace(entries[3], prev_hash="f" * 64)] + entries[4:], KEY)
    assert not v.ok and v.first_bad_seq == 4 and "prev_hash" in v.reason


def test_the_key_id_does_not_reveal_the_key():
    assert len(KEY.key_id) == 16 and "kkkk" not in KEY.key_id and "kkkk" not in repr(KEY)
