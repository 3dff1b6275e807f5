"""The latest revision of a natural key wins; duplicates produce nothing."""

from __future__ import annotations

import pytest

from streams.revisions import Decision, Known, advance, decide


@pytest.mark.parametrize(
    ("known", "revision", "value", "decision"),
    [
        (None, 1, (30.0,), Decision.NEW),  # first sight
        (Known(1, (30.0,)), 1, (30.0,), Decision.DUPLICATE),  # redelivery
        (Known(1, (30.0,)), 2, (40.16,), Decision.CORRECTION),  # PJM v2 replaces v1
        (Known(2, (40.16,)), 1, (30.0,), Decision.STALE),  # v1 arriving after v2
        (Known(1, (30.0,)), 2, (30.0,), Decision.UNCHANGED),  # v2 confirms v1
        (Known(1, (30.0,)), 1, (31.0,), Decision.CONFLICT),  # same version, other value
    ],
)
def test_decisions(
    known: Known | None, revision: int, value: tuple[float], decision: Decision
) -> None:
    assert decide(known, revision, value) == decision


def test_state_advances_only_forward() -> None:
    state = advance(None, 1, (30.0,))
    assert state == Known(1, (30.0,))
    assert advance(state, 2, (31.0,)) == Known(2, (31.0,))
    assert advance(Known(2, (31.0,)), 1, (30.0,)) is None  # stale: keep what is known
    assert advance(state, 1, (30.0,)) is None  # duplicate: nothing changes
