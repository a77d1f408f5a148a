"""xorlab.core.order: numbers sort as numbers, also inside init labels and store paths."""

from __future__ import annotations

import math
import random

import pytest

from xorlab.core.order import label_parts, natural_key, ordered


def test_numbers_inside_init_labels_sort_by_value():
    """Guards a found bug: a std scan read normal(std=1), normal(std=10), normal(std=3) (text order)."""
    stds = [0.01, 0.015, 0.0225, 0.1, 0.5, 1, 1.31, 2.96, 3, 6.66, 10, 1e3]
    labels = [f"normal(std={v:g})" for v in stds]
    shuffled = labels[:]
    random.Random(0).shuffle(shuffled)
    assert ordered(shuffled) == labels
    assert ordered(["normal(std=1e-05)", "normal(std=0.001)"]) == ["normal(std=1e-05)", "normal(std=0.001)"]


def test_schemes_sort_by_name_then_parameter():
    got = ordered(["zeros", "normal(std=10)", "he_normal", "normal(std=2)", "normal", "he_normal(gain=2)"])
    assert got == ["he_normal", "he_normal(gain=2)", "normal", "normal(std=2)", "normal(std=10)", "zeros"]


def test_store_paths_sort_naturally_and_dates_are_not_negative_numbers():
    jobs = [f"multirun/2026-12-03/08-00-00/{i}" for i in (0, 1, 10, 11, 2, 9)]
    assert ordered(jobs) == [f"multirun/2026-12-03/08-00-00/{i}" for i in (0, 1, 2, 9, 10, 11)]
    days = ["m/2026-12-04/x", "m/2026-12-03/x", "m/2026-11-30/x"]
    assert ordered(days) == sorted(days)  # dashes separate; they are not minus signs


def test_mixed_values_have_a_total_order():
    got = ordered([3, "b", None, 1.5, "a10", "a9", math.nan, True])
    assert got[:6] == [1.5, 3, True, "a9", "a10", "b"]  # numbers by value first; a bool is text, not 1
    assert got[6] is None and math.isnan(got[7])
    assert natural_key(None) == natural_key(math.nan)  # missing values last, together
    assert ordered(["1.0", "1"]) == ["1", "1.0"]  # equal numbers: the text breaks the tie, so the order is total


@pytest.mark.parametrize(
    ("label", "parts"),
    [
        ("notebook", ("notebook", {}, None)),
        ("normal(std=0.01)", ("normal", {"std": "0.01"}, None)),
        ("uniform(a=1, gain=2)", ("uniform", {"a": "1", "gain": "2"}, None)),
        ("from_file(path=w.npz)@1a2b3c4d", ("from_file", {"path": "w.npz"}, "1a2b3c4d")),
    ],
)
def test_label_parts(label, parts):
    assert label_parts(label) == parts
