"""Numbers as messages print them."""
from __future__ import annotations

from collections.abc import Callable, Iterable


def told_apart(value: float, threshold: float, spell: Callable[[float, int], str],
               digits: Iterable[int]) -> tuple[str, str]:
    """`value` and `threshold` spelt (`spell(x, digits)`) with the first of `digits` that
    tells them apart, else the last: a value just over its threshold printed equal to it
    ("psi 0.16 > 0.16") reads as a false alarm."""
    a = b = ""
    for d in digits:
        a, b = spell(value, d), spell(threshold, d)
        if a != b:
            break
    return a, b
