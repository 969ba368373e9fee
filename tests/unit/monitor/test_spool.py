"""The replica-local spool: sample files parsed once and memory-mapped by later windows,
profiles mapped instead of re-read from the store (issue 17)."""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import queue
import random
import tempfile
import time
import traceback

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import monitor.sources.samples as samples_module
from detectors.drift import FeatureSpec, ReferenceProfile, profile_reference
from monitor.config import parse_config
from monitor.config_errors import ConfigError
from monitor.sources.cache import BoundedCache
from monitor.sources.samples import SampleFiles, read_reference
from monitor.sources.spool import Spool

T0 = 1_700_000_000.0


def write_files(folder, n_files=3, rows=200, seed=0):
    rng = np.random.default_rng(seed)
    for k in range(n_files):
        t = T0 + 600 * k + np.arange(rows) * (600 / rows)
        city = rng.choice(["paris", "lyon", None], rows).astype(object)
        pd.DataFrame({"timestamp": t, "x": rng.normal(size=rows), "n": np.arange(rows),
                      "city": city}).to_parquet(folder / f"{k}.parquet")


def no_parsing(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} parsed again")
    monkeypatch.setattr(samples_module, "read_table", refuse)


def test_spooled_window_is_the_frame_the_files_give(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s")
    plain = SampleFiles(tmp_path / "s", "timestamp", BoundedCache(0)).window(T0 + 300, T0 + 1500)
    spool = Spool(tmp_path / "spool")
    SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 1800)  # parses and spools
    mapped = SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0 + 300, T0 + 1500)
    assert spool.hits >= 3
    assert list(mapped.columns) == list(plain.columns) and len(mapped) == len(plain) == 401
    for col in ("timestamp", "x", "n", "_ts"):
        assert mapped[col].dtype == plain[col].dtype
        np.testing.assert_array_equal(mapped[col].to_numpy(), plain[col].to_numpy())
    assert mapped["city"].dtype == object  # strings come back as strings, not a categorical
    assert mapped["city"].tolist() == plain["city"].tolist()
    assert mapped["city"].isna().sum() == plain["city"].isna().sum() > 0


def test_a_restarted_reader_maps_the_spool_without_parsing_the_files(tmp_path, monkeypatch):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s")
    spool = Spool(tmp_path / "spool")
    first = SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 1800)
    no_parsing(monkeypatch)
    again = SampleFiles(tmp_path / "s", "timestamp", spool=Spool(tmp_path / "spool")).window(T0, T0 + 1800)
    pd.testing.assert_frame_equal(again.drop(columns="city"), first.drop(columns="city"))


def test_a_rewritten_file_is_parsed_again_never_read_stale(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s", n_files=1)
    spool = Spool(tmp_path / "spool")
    files = SampleFiles(tmp_path / "s", "timestamp", spool=spool)
    assert len(files.window(T0, T0 + 600)) == 200
    t = T0 + np.arange(50) * 6.0
    pd.DataFrame({"timestamp": t, "x": np.full(50, 9.0)}).to_parquet(tmp_path / "s" / "0.parquet")
    later = SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 600)
    assert len(later) == 50 and (later["x"] == 9.0).all()


def test_a_damaged_entry_is_parsed_again(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s", n_files=1)
    spool = Spool(tmp_path / "spool")
    SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 600)
    for entry in (tmp_path / "spool").rglob("*.bin"):
        entry.write_bytes(b"not arrow at all")
    again = SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 600)
    assert len(again) == 200


def test_a_column_arrow_cannot_hold_stays_on_the_memory_path(tmp_path):
    (tmp_path / "s").mkdir()
    t = T0 + np.arange(10) * 6.0
    mixed = np.array(["a", 3, "b", 4.5, "c", "d", 7, "e", "f", "g"], dtype=object)
    pd.DataFrame({"timestamp": t, "v": mixed}).to_csv(tmp_path / "s" / "0.csv", index=False)
    pd.DataFrame({"timestamp": t, "v": mixed}).to_pickle(tmp_path / "mixed.pkl")
    spool = Spool(tmp_path / "spool")
    files = SampleFiles(tmp_path / "s", "timestamp", BoundedCache(10**9), spool=spool)
    assert len(files.window(T0, T0 + 60)) == 10
    odd = pd.DataFrame({"timestamp": t, "_ts": t, "v": mixed})
    assert samples_module._arrow_table(odd) is None  # mixed strings and numbers: not spooled


def test_files_no_window_needs_leave_the_spool(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s", n_files=4)
    spool = Spool(tmp_path / "spool")
    files = SampleFiles(tmp_path / "s", "timestamp", spool=spool)
    files.window(T0, T0 + 2400)
    assert len(list((tmp_path / "spool").rglob("*.bin"))) == 4
    files.window(T0 + 1200, T0 + 2400)
    assert len(list((tmp_path / "spool").rglob("*.bin"))) == 2


def test_the_spool_stays_in_its_budget_dropping_the_oldest(tmp_path):
    spool = Spool(tmp_path, max_bytes=1000)
    for k in range(5):
        assert spool.put("x", f"k{k}", bytes(300))
        os.utime(tmp_path / "x" / f"k{k}.bin", (T0 + k, T0 + k))
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.bin")) <= 1000
    assert spool.map("x", "k4") is not None and spool.map("x", "k0") is None
    assert not spool.put("x", "huge", bytes(2000))  # bigger than the whole budget: never written
    spool.discard("x", "k4")
    assert spool.map("x", "k4") is None


def test_a_write_the_disk_refuses_is_reported_not_raised(tmp_path):
    (tmp_path / "not-a-dir").write_text("a file where the spool's folder should be")
    spool = Spool(tmp_path / "not-a-dir")
    assert not spool.put("x", "k", b"data")  # the cycle goes on, re-reading its source
    assert spool.map("x", "k") is None
    assert list(tmp_path.iterdir()) == [tmp_path / "not-a-dir"]  # no temporary left behind


def test_a_mapped_profile_scores_as_the_one_it_was_written_from(tmp_path):
    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    profile = profile_reference(ref, [FeatureSpec("x", "numeric"), FeatureSpec("c", "categorical")])
    spool = Spool(tmp_path)
    spool.put("profiles", "p", profile.to_bytes())
    mapped = ReferenceProfile.from_bytes(spool.map("profiles", "p"))
    np.testing.assert_array_equal(mapped.columns["x"].sorted_values, profile.columns["x"].sorted_values)
    assert list(mapped.columns["c"].categories) == list(profile.columns["c"].categories)


def test_spool_config_names_the_field_on_a_bad_budget():
    base = {"store": {"url": "sqlite://"}, "sources": {"prometheus": {"url": "http://127.0.0.1:1"}},
            "models": [{"name": "m"}]}
    with pytest.raises(ConfigError, match="spool.max_gb"):
        parse_config({**base, "spool": {"max_gb": 0}})
    assert parse_config({**base, "spool": {"enabled": False}}).spool.open() is None


def test_spark_style_files_microsecond_times_and_an_index_read_the_same_either_way(tmp_path):
    (tmp_path / "s").mkdir()
    when = pd.to_datetime(T0 + np.arange(100) * 6.0, unit="s", utc=True).as_unit("us")
    df = pd.DataFrame({"event_time": when, "x": np.arange(100.0), "_ts": "user column, replaced"},
                      index=pd.Index(np.arange(100) * 7, name="row_id"))
    df.iloc[::-1].to_parquet(tmp_path / "s" / "0.parquet")  # newest first, as exports often are
    plain = SampleFiles(tmp_path / "s", "event_time", BoundedCache(0)).window(T0, T0 + 300)
    spooled = SampleFiles(tmp_path / "s", "event_time", spool=Spool(tmp_path / "spool")).window(T0, T0 + 300)
    for got in (plain, spooled):
        assert len(got) == 51  # microseconds counted as such: the rows are in the window, not in 1970
        assert got["_ts"].is_monotonic_increasing and got["_ts"].iloc[0] == T0
        assert "row_id" not in got.columns and list(got.index) == list(range(51))
    np.testing.assert_array_equal(plain["x"].to_numpy(), spooled["x"].to_numpy())


def test_deleted_files_are_forgotten_by_a_long_running_reader(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s", n_files=3)
    files = SampleFiles(tmp_path / "s", "timestamp", spool=Spool(tmp_path / "spool"))
    assert len(files.window(T0, T0 + 1800)) == 600
    (tmp_path / "s" / "0.parquet").unlink()  # the user's own retention removed the oldest file
    assert len(files.window(T0, T0 + 1800)) == 400
    assert len(files._ranges) == 2 and len(list((tmp_path / "spool").rglob("*.bin"))) == 2


def test_rewriting_one_entry_counts_it_once_and_evicts_nothing_else(tmp_path):
    # 950 of 1,000 bytes in use: rewriting the small entry many times (every cycle of a
    # model may spool the same file again) must not read as growth and push the others out.
    spool = Spool(tmp_path, max_bytes=1000)
    for k in range(2):
        assert spool.put("x", f"k{k}", bytes(450))
        os.utime(tmp_path / "x" / f"k{k}.bin", (T0 + k, T0 + k))
    for _ in range(20):
        assert spool.put("x", "hot", bytes(50))
    assert spool.evicted == 0
    assert spool.map("x", "k0") is not None and spool.map("x", "k1") is not None
    assert spool.used_bytes == 950


def test_writers_sharing_a_directory_keep_it_within_the_budget(tmp_path):
    # Two processes (here two Spool objects: each counts only its own writes) filling the
    # same directory: each looks at the directory itself, so together they stay in budget.
    a, b = Spool(tmp_path, max_bytes=1000), Spool(tmp_path, max_bytes=1000)
    assert a.used_bytes == b.used_bytes == 0
    for k in range(3):
        assert a.put("x", f"a{k}", bytes(300))
        assert b.put("x", f"b{k}", bytes(300))
    assert sum(p.stat().st_size for p in tmp_path.rglob("*.bin")) <= 1000
    assert a.evicted + b.evicted >= 3


def test_an_entry_another_process_evicted_is_parsed_again(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s")
    files = SampleFiles(tmp_path / "s", "timestamp", spool=Spool(tmp_path / "spool"))
    first = files.window(T0, T0 + 1800)
    for entry in (tmp_path / "spool").rglob("*.bin"):
        entry.unlink()  # as another worker's eviction would, between two cycles
    again = files.window(T0, T0 + 1800)
    pd.testing.assert_frame_equal(again, first)
    assert len(list((tmp_path / "spool").rglob("*.bin"))) == 3  # and spooled again


def test_a_dead_writers_temporary_is_cleared_a_live_ones_kept(tmp_path):
    spool = Spool(tmp_path, max_bytes=10_000)
    (tmp_path / "x").mkdir()
    dead, live = tmp_path / "x" / ".tmp-999999-1-abc.part", tmp_path / "x" / ".tmp-1-1-def.part"
    dead.write_bytes(bytes(100))
    live.write_bytes(bytes(100))
    os.utime(dead, (time.time() - 3600, time.time() - 3600))  # a write takes ms: its writer died
    assert spool.put("x", "k", b"data")
    assert not dead.exists() and live.exists()
    assert spool.used_bytes == 4  # temporaries are not entries


HAMMER_BUDGET = 2_000_000


def _payload(key: str) -> bytes:
    digest = hashlib.sha256(key.encode()).digest()
    return digest * (2_000 + int.from_bytes(digest[:2], "big") % 8_000)  # 64-320 KB, fixed per key


def _hammer(directory, samples, seed, ops, start, results) -> None:
    """One process of the concurrency test: puts, maps, discards and sample windows mixed at
    random on the shared spool; every byte read back must be the byte written for its key."""
    try:
        rng = random.Random(seed)
        spool = Spool(directory, max_bytes=HAMMER_BUDGET)
        expected = SampleFiles(samples, "timestamp", BoundedCache(0)).window(T0, T0 + 1800)
        reader = SampleFiles(samples, "timestamp", spool=spool)
        start.wait()
        maps = windows = 0
        for _ in range(ops):
            op, key = rng.random(), f"k{rng.randrange(12)}"
            if op < 0.45:
                assert spool.put("x", key, _payload(key))
            elif op < 0.9:
                buf = spool.map("x", key)
                if buf is not None:
                    assert bytes(buf) == _payload(key), key
                    maps += 1
            elif op < 0.93:
                spool.discard("x", key)
            else:  # a worker's cycle: a long-lived reader, or a fresh one (another worker)
                files = reader if rng.random() < 0.5 else SampleFiles(samples, "timestamp", spool=spool)
                pd.testing.assert_frame_equal(files.window(T0, T0 + 1800), expected)
                windows += 1
        results.put((seed, "ok", {"maps": maps, "windows": windows, "evicted": spool.evicted,
                                  "hits": spool.hits, "misses": spool.misses}))
    except BaseException:
        results.put((seed, "error", traceback.format_exc()))


@pytest.mark.slow
def test_two_processes_hammering_one_spool_read_back_what_was_written(tmp_path):
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s")
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2, timeout=60), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(tmp_path / "spool", tmp_path / "s", seed, 500, start, results))
             for seed in (1, 2)]
    for p in procs:
        p.start()
    got: list = []
    try:
        deadline = time.monotonic() + 60
        while len(got) < len(procs) and time.monotonic() < deadline:
            try:
                got.append(results.get(timeout=0.5))
            except queue.Empty:
                if not any(p.is_alive() for p in procs) and results.empty():
                    break  # one died without a word (a torn mapping is a SIGBUS)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    assert len(got) == len(procs), f"exit codes {[p.exitcode for p in procs]}"
    errors = [report for _, status, report in got if status != "ok"]
    assert not errors, errors[0]
    stats = [report for _, _, report in got]
    assert all(s["maps"] > 0 and s["windows"] > 0 for s in stats)
    assert sum(s["evicted"] for s in stats) > 0 and sum(s["misses"] for s in stats) > 0  # the race was run
    on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").rglob("*.bin"))
    assert on_disk <= HAMMER_BUDGET * (1 + 2 / 16)  # each writer at most a 16th past the budget
    assert not list((tmp_path / "spool").rglob("*.part"))  # no temporary left behind


def write_typed_files(folder, n_files=3, rows=120, seed=5):
    """Files with every column type a sample file brings: floats with gaps, integers with and
    without gaps, booleans, strings with None (one file's column all None), datetimes, a
    pandas categorical, and a string column one file lacks."""
    rng = np.random.default_rng(seed)
    for k in range(n_files):
        t = T0 + 600 * k + np.arange(rows) * (600 / rows)
        x = rng.normal(size=rows)
        x[rng.random(rows) < 0.1] = np.nan
        city = rng.choice(["paris", "lyon", "", "zürich", None], rows).astype(object)
        df = pd.DataFrame({
            "timestamp": t, "x": x, "n": np.arange(rows) + k,
            "n_gaps": pd.array(np.where(rng.random(rows) < 0.2, None, np.arange(rows)), dtype="Int64"),
            "flag": rng.random(rows) < 0.5, "city": city,
            "empty": [None] * rows if k == 1 else rng.choice(["u", "v"], rows).astype(object),
            "seen": pd.to_datetime(t, unit="s", utc=True),
            "tier": pd.Categorical(rng.choice(["gold", "silver"], rows)),
            "f32": rng.normal(size=rows).astype("float32"),
        })
        if k != 2:
            df["late"] = rng.choice(["a", "b"], rows).astype(object)
        df.to_parquet(folder / f"{k}.parquet")


@pytest.mark.parametrize("start, end", [(T0 + 300, T0 + 1500), (T0 + 610, T0 + 1190), (T0, T0 + 1800)])
def test_spooled_windows_of_every_column_type_are_the_frames_the_files_give(tmp_path, start, end):
    (tmp_path / "s").mkdir()
    write_typed_files(tmp_path / "s")
    plain = SampleFiles(tmp_path / "s", "timestamp", BoundedCache(0)).window(start, end)
    spool = Spool(tmp_path / "spool")
    SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(T0, T0 + 1800)  # parses and spools
    mapped = SampleFiles(tmp_path / "s", "timestamp", spool=spool).window(start, end)
    assert spool.hits >= 2
    # Two ways the spool's frame has always differed from pandas' own reading, kept as they
    # are: a nullable integer comes back as floats (NaN for missing), and a column one file
    # lacks is None in that file's rows (pandas' concat gives NaN).
    assert mapped["n_gaps"].dtype == np.float64
    np.testing.assert_array_equal(mapped["n_gaps"].to_numpy(), plain["n_gaps"].to_numpy(dtype=float, na_value=np.nan))
    expected = plain.assign(n_gaps=mapped["n_gaps"], late=plain["late"].where(plain["late"].notna(), None))
    pd.testing.assert_frame_equal(mapped, expected)
    for col in ("city", "empty", "late"):  # missing strings are None, as pandas reads them
        assert mapped[col].dtype == object
        assert {type(v) for v in mapped[col]} <= {str, type(None)}
        assert [v is None for v in mapped[col]] == [not isinstance(v, str) for v in plain[col]]
    assert isinstance(mapped["tier"].dtype, pd.CategoricalDtype)  # a categorical the file holds stays one
    for col in mapped.columns:  # the detectors may write into what they are given: not into the spool
        assert mapped[col].to_numpy().flags.writeable


def spooled_slices(frames):
    """Frames as the spool holds them (Arrow IPC, strings dictionary-encoded), read back."""
    out = []
    for df in frames:
        table = samples_module._arrow_table(df)
        out.append(pa.ipc.open_file(pa.py_buffer(samples_module._ipc_bytes(table))).read_all())
    return out


def test_the_column_by_column_frame_is_arrows_own_conversion(tmp_path):
    # The fast conversion against Arrow's whole-table one (kept for tables with duplicate
    # names), on what trips conversions: a file's string column all missing, one window
    # from a single file (its numbers a view of the mapped spool until copied), many
    # distinct strings, integers and booleans with and without gaps, an empty slice.
    rng = np.random.default_rng(11)
    n = 300
    words = np.array([f"w{k}" for k in range(400)] + ["", "ünï"], dtype=object)
    frames = []
    for k in range(3):
        frames.append(pd.DataFrame({
            "x": rng.normal(size=n), "i": np.arange(n, dtype="int64"), "u8": np.arange(n).astype("uint8"),
            "b": rng.random(n) < 0.5,
            "i_gaps": pd.array(np.where(rng.random(n) < 0.3, None, 7), dtype="Int64"),
            "b_gaps": pd.array(np.where(rng.random(n) < 0.3, None, True), dtype="boolean"),
            "s": np.where(rng.random(n) < 0.2, None, words[rng.integers(0, len(words), n)]),
            "none": np.full(n, None, dtype=object) if k == 1 else words[rng.integers(0, 3, n)],
            "_ts": T0 + np.arange(n) + k * n,
        }))
    tables = spooled_slices(frames)
    for pieces in ([tables[0]], [tables[1]], tables, [t.slice(10, 50) for t in tables], [tables[2].slice(0, 0)]):
        fast = samples_module._arrow_frame(pieces)
        table = pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 else pieces[0]
        pd.testing.assert_frame_equal(fast, samples_module._pandas_frame(table, {"s", "none"}))
        assert all(fast[c].to_numpy().flags.writeable for c in ("x", "i", "u8", "b", "_ts"))
        for col in ("s", "none"):
            assert {type(v) for v in fast[col]} <= {str, type(None)}


@pytest.mark.parametrize("shuffled", [False, True])
def test_files_of_many_row_groups_string_times_and_rows_without_time_read_the_same_either_way(tmp_path, shuffled):
    # Parquet keeps strings as a dictionary per row group (the spool needs one per file);
    # a time may be RFC 3339 text, missing, or out of order.
    (tmp_path / "s").mkdir()
    rng = np.random.default_rng(4)
    n = 500
    when = pd.to_datetime(T0 + np.arange(n) * 1.0, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
    if shuffled:  # (in order and complete, a file is spooled in its row groups as they are)
        when = np.where(rng.random(n) < 0.05, None, when)
    df = pd.DataFrame({"at": when, "x": rng.normal(size=n),
                       "c": np.where(rng.random(n) < 0.1, None, rng.choice([f"v{k}" for k in range(40)], n))})
    if shuffled:
        df = df.sample(frac=1.0, random_state=1)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "s" / "0.parquet", row_group_size=64)
    plain = SampleFiles(tmp_path / "s", "at", BoundedCache(0)).window(T0 + 10, T0 + 400)
    spool = Spool(tmp_path / "spool")
    SampleFiles(tmp_path / "s", "at", spool=spool).window(T0, T0 + n)  # parses and spools
    mapped = SampleFiles(tmp_path / "s", "at", spool=spool).window(T0 + 10, T0 + 400)
    assert spool.hits == 1 and len(mapped) > 300
    pd.testing.assert_frame_equal(mapped, plain)
    assert mapped["_ts"].is_monotonic_increasing and mapped["c"].isna().any()


def test_a_reference_reads_as_pandas_reads_it_and_only_the_columns_asked_for(tmp_path):
    rng = np.random.default_rng(8)
    n = 400
    ref = pd.DataFrame({
        "x": rng.normal(size=n), "c": rng.choice(["a", "b", None], n),
        "n_gaps": pd.array(np.where(rng.random(n) < 0.2, None, 3), dtype="Int64"),
        "tier": pd.Categorical(rng.choice(["gold", "silver"], n)),
        "text": [f"a long free text {k}" for k in range(n)],  # what no detector reads
    }, index=pd.Index(np.arange(n) * 3, name="row_id"))
    ref.to_parquet(tmp_path / "ref.parquet")
    pd.testing.assert_frame_equal(read_reference(tmp_path / "ref.parquet"), pd.read_parquet(tmp_path / "ref.parquet"))
    some = read_reference(tmp_path / "ref.parquet", ["x", "c", "n_gaps", "tier"])
    pd.testing.assert_frame_equal(some, pd.read_parquet(tmp_path / "ref.parquet").drop(columns="text"))
    # A feature the file lacks: everything is read, so the error names what the file holds.
    assert "text" in read_reference(tmp_path / "ref.parquet", ["x", "nope"]).columns
    (tmp_path / "ref_dir.parquet").mkdir()  # a dataset directory, as Spark writes one
    ref.to_parquet(tmp_path / "ref_dir.parquet" / "part-0.parquet")
    assert len(read_reference(tmp_path / "ref_dir.parquet", ["x"])) == n



def _planted(folder):
    """Another local user's spool: `folder` writable by everyone, an entry planted in it
    under the key Vigil would look up (keys are made from what anyone can stat)."""
    folder.mkdir()
    os.chmod(folder, 0o777)
    (folder / "samples").mkdir()
    os.chmod(folder / "samples", 0o777)
    (folder / "samples" / "k.bin").write_bytes(b"forged sample rows")


@pytest.fixture
def shared_tmp(tmp_path, monkeypatch):
    """The system's temporary directory (where the default spool lives), here a test's own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path / f"vigil-spool-{os.getuid()}"


def test_a_default_spool_directory_others_can_write_is_not_used(shared_tmp, caplog):
    """The default spool is under the shared temporary directory: whoever made that folder
    first could feed every cycle forged samples and profiles, or read the real ones."""
    _planted(shared_tmp)
    spool = Spool()
    assert spool.directory == shared_tmp
    assert spool.map("samples", "k") is None
    assert not spool.put("samples", "k2", b"our rows")
    assert not (shared_tmp / "samples" / "k2.bin").exists()
    assert "spool directory" in caplog.text and "not used" in caplog.text


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_default_spool_directory_of_another_user_is_not_used(shared_tmp):
    _planted(shared_tmp)
    os.chmod(shared_tmp, 0o755)
    os.chown(shared_tmp, 65534, 65534)
    assert Spool().map("samples", "k") is None


def test_a_default_spool_directory_that_is_a_symlink_is_not_used(shared_tmp, tmp_path):
    _planted(tmp_path / "elsewhere")
    os.chmod(tmp_path / "elsewhere", 0o700)
    shared_tmp.symlink_to(tmp_path / "elsewhere")
    assert Spool().map("samples", "k") is None


def test_a_new_default_spool_directory_is_private(shared_tmp):
    spool = Spool()
    assert spool.put("samples", "k", b"rows") and spool.map("samples", "k") is not None
    assert shared_tmp.stat().st_mode & 0o077 == 0


def test_a_wider_window_of_another_reader_is_not_parsed_again_each_cycle(tmp_path, monkeypatch):
    """Each cycle reads the drift window (the last minutes) and, with delayed labels, the
    performance horizon (days) of the same files. The drift read dropped every file its
    window did not need from the spool, so the performance read parsed them all again, every
    cycle: the cost the spool exists to avoid."""
    (tmp_path / "s").mkdir()
    write_files(tmp_path / "s", n_files=4)
    spool = Spool(tmp_path / "spool")
    files = SampleFiles(tmp_path / "s", "timestamp", spool=spool)
    for _ in range(2):
        files.window(T0 + 1800, T0 + 2400)
        wide = files.window(T0, T0 + 2400, purpose="performance")
    parsed: list[str] = []
    real = SampleFiles._parse_any
    monkeypatch.setattr(SampleFiles, "_parse_any",
                        lambda self, path, arrow: parsed.append(path) or real(self, path, arrow))
    for _ in range(3):
        assert len(files.window(T0 + 1800, T0 + 2400)) == 200
        assert len(files.window(T0, T0 + 2400, purpose="performance")) == len(wide) == 800
    assert parsed == []


@pytest.mark.parametrize("spooled", [False, True])
def test_a_placeholder_time_far_in_the_future_does_not_blind_the_whole_file(tmp_path, spooled):
    """Exports often write 9999-12-31 (or 0001-01-01) for "never". Such a time does not fit
    in nanoseconds: reading the file raised, and drift was blind every cycle ("internal
    error"). It is a time like another (outside every window)."""
    (tmp_path / "s").mkdir()
    times = [np.datetime64(int(T0 + 60 * i), "s") for i in range(10)] + [np.datetime64("9999-12-31", "s")]
    table = pa.table({"timestamp": pa.array(np.array(times, dtype="datetime64[us]")), "x": np.arange(11.0)})
    pq.write_table(table, tmp_path / "s" / "0.parquet")
    files = SampleFiles(tmp_path / "s", "timestamp", BoundedCache(10**8), spool=Spool(tmp_path / "spool")
                        if spooled else None)
    got = files.window(T0, T0 + 600)
    assert got["x"].tolist() == list(np.arange(10.0))
