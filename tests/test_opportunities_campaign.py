"""The gross margin campaign measurement, offers and the planner assume when none is configured."""

from __future__ import annotations


def test_an_unknown_margin_is_assumed_and_said():
    from toolkit.opportunities import ASSUMED_GROSS_MARGIN, gross_margin_or_assumed

    assert gross_margin_or_assumed(0.55) == (0.55, [])
    margin, notes = gross_margin_or_assumed(None)
    assert margin == ASSUMED_GROSS_MARGIN == 0.4
    assert notes[0].level == "assumed" and "gross_margin" in notes[0].text and "journeycast.yml" in notes[0].text
