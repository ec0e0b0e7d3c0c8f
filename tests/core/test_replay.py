"""
Tests for twisted_dtls.core.replay (RFC 6347 §4.1.2.6 sliding window).
"""

import random

import pytest
from hypothesis import given, strategies as st

from twisted_dtls.core.replay import ReplayWindow


def test_fresh_window_accepts_everything():
    window = ReplayWindow()
    for seq in (0, 1, 63, 64, 2**48 - 1):
        assert window.is_acceptable(seq)


def test_marked_number_rejected_once():
    window = ReplayWindow()
    assert window.is_acceptable(0)
    window.mark(0)
    assert not window.is_acceptable(0)
    assert window.is_acceptable(1)


def test_out_of_order_inside_window():
    window = ReplayWindow()
    window.mark(10)
    for seq in (9, 5, 0):
        assert window.is_acceptable(seq)
        window.mark(seq)
        assert not window.is_acceptable(seq)
    assert window.is_acceptable(7)
    assert window.is_acceptable(11)


def test_window_edge():
    window = ReplayWindow(64)
    window.mark(100)
    # 100 - 63 is the oldest number the 64-entry window still covers.
    assert window.is_acceptable(37)
    assert not window.is_acceptable(36)
    window.mark(37)
    assert not window.is_acceptable(37)
    window.mark(101)
    # 37 has slid out: still rejected, as too old now.
    assert not window.is_acceptable(37)
    assert window.is_acceptable(38)


def test_bits_survive_shift():
    window = ReplayWindow()
    window.mark(5)
    window.mark(3)
    window.mark(20)
    assert not window.is_acceptable(5)
    assert not window.is_acceptable(3)
    assert window.is_acceptable(4)
    assert window.is_acceptable(19)


def test_big_jump_clears_window():
    window = ReplayWindow()
    window.mark(1)
    window.mark(2**48 - 1)
    assert not window.is_acceptable(2**48 - 1)
    assert not window.is_acceptable(1)
    assert window.is_acceptable(2**48 - 2)
    assert window.is_acceptable(2**48 - 64)
    assert not window.is_acceptable(2**48 - 65)


def test_unmarked_forgery_does_not_move_window():
    # A forged record with a huge sequence number passes the cheap check but
    # fails authentication, so it is never marked; genuine older numbers
    # must stay acceptable.
    window = ReplayWindow()
    window.mark(0)
    assert window.is_acceptable(2**48 - 1)
    assert window.is_acceptable(1)
    window.mark(1)
    assert window.is_acceptable(2)


def test_custom_size():
    window = ReplayWindow(size=4)
    window.mark(10)
    assert window.is_acceptable(7)
    assert not window.is_acceptable(6)
    with pytest.raises(ValueError):
        ReplayWindow(size=0)


@given(st.lists(st.integers(min_value=0, max_value=300), max_size=200))
def test_matches_reference_model(sequence):
    """Against a set-based model of the RFC 6347 §4.1.2.6 rule."""
    window = ReplayWindow(64)
    seen: set[int] = set()
    highest = -1
    for seq in sequence:
        expected = seq > highest or (highest - seq < 64 and seq not in seen)
        assert window.is_acceptable(seq) == expected
        if expected:
            window.mark(seq)
            seen.add(seq)
            highest = max(highest, seq)


def test_shuffled_delivery_each_once():
    window = ReplayWindow()
    numbers = list(range(1000))
    rng = random.Random(1)
    # Reorder only within blocks of 32 so nothing falls out of the window.
    delivered = []
    for start in range(0, 1000, 32):
        block = numbers[start : start + 32]
        rng.shuffle(block)
        for seq in block + block:
            if window.is_acceptable(seq):
                window.mark(seq)
                delivered.append(seq)
    assert sorted(delivered) == numbers
