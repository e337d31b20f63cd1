"""Precision and recall of the rules over programs whose expected findings are known."""

from __future__ import annotations

from typing import Iterable, Set, Tuple


def precision_recall(results: Iterable[Tuple[Set[str], Set[str]]]) -> Tuple[float, float]:
    """``(precision, recall)`` over ``(fired, expected)`` rule sets, one pair per program."""
    true_pos = false_pos = false_neg = 0
    for fired, expected in results:
        true_pos += len(fired & expected)
        false_pos += len(fired - expected)
        false_neg += len(expected - fired)
    return true_pos / max(true_pos + false_pos, 1), true_pos / max(true_pos + false_neg, 1)
