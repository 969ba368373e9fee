"""Profiles are mapped from disk every cycle: the .npy headers of their members are read
by a fast path, which must agree with numpy's own reader on what numpy writes."""
from __future__ import annotations

import io

import numpy as np
import pytest

from detectors.drift.storage import _npy_header

ARRAYS = [np.arange(5000.0), np.zeros((3, 4), dtype=np.int32), np.array(["ab", "c"]), np.zeros(0),
          np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.array(3.0), np.arange(4, dtype=">i8")]


@pytest.mark.parametrize("a", ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_fast_header_reads_what_numpy_wrote_without_numpy_reader(a, monkeypatch):
    b = io.BytesIO()
    np.save(b, a)
    buf = memoryview(b.getvalue())

    def refuse(*_):
        raise AssertionError("numpy's slow header reader was used")
    monkeypatch.setattr(np.lib.format, "read_array_header_1_0", refuse)
    shape, fortran, dtype, offset = _npy_header(buf, 0, len(buf))
    got = np.frombuffer(buf, dtype=dtype, count=int(np.prod(shape)), offset=offset)
    got = got.reshape(shape, order="F" if fortran else "C")
    assert got.shape == a.shape and got.dtype == a.dtype
    np.testing.assert_array_equal(got, a)


def test_an_unusual_header_goes_through_numpy():
    b = io.BytesIO()
    np.lib.format.write_array_header_1_0(b, {"descr": "<f8", "fortran_order": False, "shape": (2,)})
    raw = b.getvalue().replace(b"'descr'", b"'descr' ")  # valid for numpy, not the fast pattern
    raw = raw[:8] + (len(raw) - 10).to_bytes(2, "little") + raw[10:] + np.arange(2.0).tobytes()
    shape, _, dtype, offset = _npy_header(memoryview(raw), 0, len(raw))
    assert shape == (2,) and dtype == np.float64
    np.testing.assert_array_equal(np.frombuffer(raw, dtype, 2, offset), [0.0, 1.0])
