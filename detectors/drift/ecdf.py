"""KS gap and Wasserstein area of two ascending samples, compiled, without merging them.

The drift cycle's cost used to be a merge of the stored sorted reference with the sorted
current window for every column (a sort of n + m values and a dozen passes over them).
Neither statistic needs the merged order:

* Wasserstein-1 is the area between the two empirical CDFs, which for empirical
  distributions equals the area between the two quantile functions,
  W = integral over u in [0, 1] of |Q_ref(u) - Q_cur(u)|. On the grid of units 1/(n m)
  every piece of the larger sample overlaps at most two pieces of the smaller one, so W
  is one streaming pass of |a_i - b_j| over the larger sample: no search, no merge, and
  every term is a plain difference of two data values (nothing cancels, unlike prefix sums).
* KS is max |R(x) m - C(x) n| / (n m) over pooled points x, with R and C the reference
  and current counts <= x. The current window is cut into blocks of ~64 values (block
  starts moved to the start of a run of equal values); a galloping search from the
  previous block start gives the reference count before each one, which bounds the gap
  anywhere inside the block. Only blocks whose bound beats the best exact gap found so
  far are merged exactly (the block with the largest bound first), so on real data a few
  blocks are merged, not the whole column. Ties are handled exactly: the gap is read at
  the end of each run of equal pooled values, as scipy's searchsorted(side="right")
  reads it, and runs are skipped by galloping (rounded or count data costs O(distinct)).

Integer gaps make the KS statistic the correctly rounded rational max|Rm - Cn| / (nm),
which is what scipy's exact mode reports (it rounds d to h / lcm(n, m)); the asymptotic
branch of scipy differs from it by at most an ulp.
"""
from __future__ import annotations

import numpy as np

from detectors.drift.scan import HAVE_NUMBA, kernel_args, njit

KS_BLOCK = 64
# Integer gaps i*m - j*n must fit in int64.
MAX_PRODUCT = 2**62


@njit(cache=True, nogil=True)
def quantile_area(a, b):  # pragma: no cover - compiled
    """Sum over the pieces of |a_i - b_j| times their overlap, in units of 1/(N M).

    a (size N) and b (size M) ascending, N >= M. Piece i of a covers [i M, (i+1) M) and
    piece j of b covers [j N, (j+1) N); the Wasserstein-1 distance is the result / (N M).
    """
    n_a = a.shape[0]
    n_b = b.shape[0]
    q_step = n_a // n_b
    r_step = n_a % n_b
    q = 0  # j * N == q * M + r
    r = 0
    total = 0.0
    acc = 0.0
    w = np.float64(n_b)
    for j in range(n_b):
        start = q + 1 if r else q  # first piece of a inside piece j of b
        q += q_step
        r += r_step
        if r >= n_b:
            r -= n_b
            q += 1
        bj = np.float64(b[j])
        s = 0.0
        for i in range(start, q):  # pieces of a wholly inside piece j of b
            s += abs(np.float64(a[i]) - bj)
        acc += w * s
        if r and j + 1 < n_b:  # piece q of a straddles the boundary (j+1) N
            ai = np.float64(a[q])
            acc += r * abs(ai - bj) + (n_b - r) * abs(ai - np.float64(b[j + 1]))
        if (j & 1023) == 1023:  # blocked summation: error ~1e3 eps, not M eps
            total += acc
            acc = 0.0
    return total + acc


@njit(cache=True, nogil=True)
def equal_size_area(a, b):  # pragma: no cover - compiled
    """sum |a_i - b_i|: equal sizes make the pieces coincide. Four partial sums, each
    blocked, keep the add latency off the critical path and the error at ~1e3 eps."""
    total = 0.0
    n = a.shape[0]
    i = 0
    while i < n:
        end = min(i + 4096, n)
        s0 = s1 = s2 = s3 = 0.0
        k = i
        while k + 4 <= end:
            s0 += abs(np.float64(a[k]) - np.float64(b[k]))
            s1 += abs(np.float64(a[k + 1]) - np.float64(b[k + 1]))
            s2 += abs(np.float64(a[k + 2]) - np.float64(b[k + 2]))
            s3 += abs(np.float64(a[k + 3]) - np.float64(b[k + 3]))
            k += 4
        while k < end:
            s0 += abs(np.float64(a[k]) - np.float64(b[k]))
            k += 1
        total += (s0 + s1) + (s2 + s3)
        i = end
    return total


@njit(cache=True, nogil=True)
def _region_max_gap(ref, cur, i, i_end, j, j_end, n, m):  # pragma: no cover - compiled
    """Exact max |i m - j n| at the run ends of the pooled values of ref[i:i_end], cur[j:j_end]."""
    best = 0
    while i < i_end or j < j_end:
        x = np.float64(ref[i]) if j >= j_end or (i < i_end and ref[i] <= cur[j]) else np.float64(cur[j])
        i = _run_end(ref, i, i_end, x)
        j = _run_end(cur, j, j_end, x)
        g = i * m - j * n
        if g < 0:
            g = -g
        if g > best:
            best = g
    return best


@njit(cache=True, nogil=True)
def _run_end(arr, lo, end, x):  # pragma: no cover - compiled
    """First index in [lo, end) whose value is > x, for ascending arr with arr[lo] >= x.

    One comparison for a run of length one (continuous data); galloping for long runs of
    ties (rounded or count data), so a run costs O(log length), not its length."""
    if lo >= end or arr[lo] > x:
        return lo
    lo += 1  # arr[:lo] <= x from here on
    step = 1
    hi = lo
    while hi < end and arr[hi] <= x:
        lo = hi + 1
        hi = lo + step
        step *= 2
    if hi > end:
        hi = end
    while lo < hi:
        mid = (lo + hi) >> 1
        if arr[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _lower_bound_from(ref, lo, v):  # pragma: no cover - compiled
    """#ref < v, knowing ref[:lo] < v: galloping from lo, so block starts a few dozen
    values apart cost a few cache-near steps, not a binary search of the whole column."""
    n = ref.shape[0]
    step = 1
    hi = lo
    while hi < n and ref[hi] < v:
        lo = hi + 1
        hi = lo + step
        step *= 2
    if hi > n:
        hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if ref[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def max_gap(ref, cur, block):  # pragma: no cover - compiled
    """max over pooled points of |R(x) m - C(x) n| for ascending ref (n) and cur (m).

    Regions: region 0 holds the reference values below cur[0]; region r >= 1 holds the
    current values cur[J[r]:J[r+1]] and the reference values in [cur[J[r]], cur[J[r+1]]),
    i.e. ref[IR[r]:IR[r+1]] with IR[r] = #ref < cur[J[r]]. Region starts are run starts of
    cur, so a run of equal pooled values never crosses a region boundary, and inside a
    region every pooled point has R in [IR[r], IR[r+1]] and C in [J[r], J[r+1]].
    """
    n = ref.shape[0]
    m = cur.shape[0]
    cap = m // block + 3
    IR = np.empty(cap, np.int64)
    J = np.empty(cap, np.int64)
    IR[0] = 0
    J[0] = 0
    IR[1] = np.searchsorted(ref, cur[0])
    J[1] = 0
    k = 2
    s = block
    while s < m:
        s = _run_end(cur, s, m, cur[s - 1])
        if s >= m:
            break
        J[k] = s
        IR[k] = _lower_bound_from(ref, IR[k - 1], cur[s])
        k += 1
        s += block
    IR[k] = n
    J[k] = m
    n_regions = k
    bound = np.empty(n_regions, np.int64)
    top = 0
    for r in range(n_regions):
        up = IR[r + 1] * m - J[r] * n
        down = J[r + 1] * n - IR[r] * m
        bound[r] = up if up > down else down
        if bound[r] > bound[top]:
            top = r
    best = _region_max_gap(ref, cur, IR[top], IR[top + 1], J[top], J[top + 1], n, m)
    for r in range(n_regions):
        if bound[r] > best and r != top:
            g = _region_max_gap(ref, cur, IR[r], IR[r + 1], J[r], J[r + 1], n, m)
            if g > best:
                best = g
    return best


def ks_wasserstein(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> tuple[float, float]:
    """KS statistic and unnormalised Wasserstein-1 of two non-empty ascending float arrays."""
    ref_sorted, cur_sorted = kernel_args(ref_sorted, cur_sorted)
    n, m = len(ref_sorted), len(cur_sorted)
    nm = float(n) * float(m)
    gap = max_gap(ref_sorted, cur_sorted, KS_BLOCK)
    if n == m:
        area = equal_size_area(ref_sorted, cur_sorted) * m
    elif n > m:
        area = quantile_area(ref_sorted, cur_sorted)
    else:
        area = quantile_area(cur_sorted, ref_sorted)
    return gap / nm, area / nm


def usable(n: int, m: int) -> bool:
    """Whether the compiled kernels apply (numba present, integer gaps cannot overflow)."""
    return HAVE_NUMBA and n > 0 and m > 0 and n * m < MAX_PRODUCT


@njit(cache=True, nogil=True)
def _count_le(cur, edge):  # pragma: no cover - compiled
    """#cur <= edge for ascending cur (np.searchsorted(cur, edge, side="right"))."""
    lo = 0
    hi = cur.shape[0]
    while lo < hi:
        mid = (lo + hi) >> 1
        if np.float64(cur[mid]) <= edge:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def block_stats(refs, ref_at, cur, edges, edge_at, block):  # pragma: no cover - compiled
    """Per row c of the 2-D ascending `cur` against refs[ref_at[c]:ref_at[c+1]]: the integer
    KS gap, the area in units of 1/(n m) (as ks_wasserstein reads them), and the counts of
    the row in the bins (-inf, e1], ..., (ek, inf) of edges[edge_at[c]:edge_at[c+1]]."""
    k = cur.shape[0]
    m = cur.shape[1]
    gaps = np.empty(k, np.int64)
    areas = np.empty(k, np.float64)
    counts = np.empty(edges.shape[0] + k, np.int64)
    for c in range(k):
        ref = refs[ref_at[c]:ref_at[c + 1]]
        row = cur[c]
        n = ref.shape[0]
        gaps[c] = max_gap(ref, row, block)
        if n == m:
            areas[c] = equal_size_area(ref, row) * m
        elif n > m:
            areas[c] = quantile_area(ref, row)
        else:
            areas[c] = quantile_area(row, ref)
        out = edge_at[c] + c
        prev = 0
        for e in range(edge_at[c], edge_at[c + 1]):
            at = _count_le(row, edges[e])
            counts[out] = at - prev
            prev = at
            out += 1
        counts[out] = m - prev
    return gaps, areas, counts
