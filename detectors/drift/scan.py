"""Compiled single passes over one column: moments, finiteness, object identities.

Each replaces several numpy passes and temporary arrays (isfinite masks, a float32
copy to compare, a float64 copy to sum) by one loop without allocation. The kernels
release the GIL. Without numba (`HAVE_NUMBA` false) callers use their numpy versions.
"""
from __future__ import annotations

import numpy as np

try:  # numba is a runtime dependency; the callers keep numpy fallbacks all the same
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


def kernel_args(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Read-only, contiguous views of one float dtype (float64 if they differ).

    numba compiles one machine-code version per argument type, and read-only (a profile
    loaded from bytes) versus writeable and float32 versus float64 are different types;
    settling on read-only views of a common dtype keeps it to two versions per kernel,
    compiled once and cached on disk (about a second each on a cold cache).
    """
    dtype = arrays[0].dtype if all(a.dtype == arrays[0].dtype for a in arrays) else np.dtype(np.float64)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    out = []
    for a in arrays:
        v = np.ascontiguousarray(a, dtype=dtype).view()
        v.flags.writeable = False
        out.append(v)
    return tuple(out)


@njit(cache=True, nogil=True)
def _blocked_sum(values, shift, square):  # pragma: no cover - compiled
    """Sum of (v - shift), or of its square, in blocks of 4096 with two accumulators, like
    numpy's pairwise sum, so the error stays ~1e3 eps whatever the length."""
    n = values.shape[0]
    total = 0.0
    i = 0
    while i < n:
        end = min(i + 4096, n)
        s0 = s1 = 0.0
        k = i
        while k + 2 <= end:
            d0 = np.float64(values[k]) - shift
            d1 = np.float64(values[k + 1]) - shift
            if square:
                d0 *= d0
                d1 *= d1
            s0 += d0
            s1 += d1
            k += 2
        if k < end:
            d0 = np.float64(values[k]) - shift
            s0 += d0 * d0 if square else d0
        total += s0 + s1
        i = end
    return total


@njit(cache=True, nogil=True)
def mean_std(values):  # pragma: no cover - compiled
    """Mean and population std (ddof=0) in two passes, no copies."""
    n = values.shape[0]
    mean = _blocked_sum(values, 0.0, False) / n
    return mean, np.sqrt(_blocked_sum(values, mean, True) / n)


@njit(cache=True, nogil=True)
def finite_scan(values):  # pragma: no cover - compiled
    """(#finite, #NaN, whether every finite value survives a float32 round trip)."""
    n_finite = 0
    n_nan = 0
    exact = True
    for k in range(values.shape[0]):
        x = values[k]
        if np.isfinite(x):
            n_finite += 1
            if exact and np.float64(np.float32(x)) != x:
                exact = False
        elif np.isnan(x):
            n_nan += 1
    return n_finite, n_nan, exact


@njit(cache=True, nogil=True)
def count_identities(keys, max_unique):  # pragma: no cover - compiled
    """Distinct int64 keys (object pointers) in order of first appearance, their counts
    and the row of their first appearance, by open addressing; gives up (returns
    ok=False) past `max_unique` distinct keys."""
    size = 64
    while size < 4 * max_unique:
        size *= 2
    mask = size - 1
    slot_key = np.zeros(size, np.int64)
    slot_id = np.full(size, -1, np.int64)
    uniq = np.empty(max_unique, np.int64)
    counts = np.zeros(max_unique, np.int64)
    first = np.empty(max_unique, np.int64)
    n_uniq = 0
    for row in range(keys.shape[0]):
        key = keys[row]
        # Fibonacci hashing (golden-ratio multiplier as a signed int64); pointers are
        # 16-byte aligned, so their low bits carry nothing.
        h = ((key >> 4) * -7046029254386353131) >> 40
        s = h & mask
        while True:
            sid = slot_id[s]
            if sid < 0:
                if n_uniq == max_unique:
                    return uniq[:0], counts[:0], first[:0], False
                slot_id[s] = n_uniq
                slot_key[s] = key
                uniq[n_uniq] = key
                first[n_uniq] = row
                counts[n_uniq] = 1
                n_uniq += 1
                break
            if slot_key[s] == key:
                counts[sid] += 1
                break
            s = (s + 1) & mask
    return uniq[:n_uniq], counts[:n_uniq], first[:n_uniq], True
