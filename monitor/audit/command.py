"""`vigil audit verify`: the store, key and checkpoint file from the config or the
command line, the verdict on stdout (OK) or stderr (BROKEN).

Exit 0 when the log verifies (notes say what this run could not check), 1 when it does
not (the first bad seq, or the checkpoint line that disagrees), 2 when the key cannot be read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from alerts.audit import ChainKey
from monitor.audit.keys import AuditKeyError, key_from_env, key_from_file, load_key
from monitor.audit.verify import verify_log
from monitor.config import VigilConfig
from monitor.store.existing import existing_store


def _key(args: argparse.Namespace, cfg: VigilConfig | None) -> ChainKey | None:
    if args.key_env:
        return key_from_env(args.key_env)
    if args.key_file:
        return key_from_file(Path(args.key_file))
    return load_key(cfg.audit, Path(cfg.base_dir)) if cfg is not None else None


def _checkpoint_file(args: argparse.Namespace, cfg: VigilConfig | None) -> Path | None:
    if args.checkpoint_file:
        return Path(args.checkpoint_file)
    if cfg is not None and cfg.audit.checkpoint_file:
        return cfg.resolve_path(cfg.audit.checkpoint_file)
    return None


def run_verify(args: argparse.Namespace, cfg: VigilConfig | None) -> int:
    try:
        key = _key(args, cfg)
    except AuditKeyError as e:
        print(f"vigil audit verify: {e}", file=sys.stderr)
        return 2
    store = existing_store(args.store or (cfg.store.url if cfg is not None else ""))
    try:
        report = verify_log(store, key, _checkpoint_file(args, cfg), args.expect_seq)
    finally:
        store.close()
    out = sys.stdout if report.ok else sys.stderr
    print(report.summary() if report.ok else report.problem, file=out)
    for note in report.notes:
        print(f"  note: {note}", file=out)
    return 0 if report.ok else 1
