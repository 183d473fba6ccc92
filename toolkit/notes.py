"""What a step could not do, assumed, or found doubtful, said in one sentence.

Real exports lack things (no costs, no events, no customer ids, one year of
history) and models sometimes fit badly. A step that carries on without
something, or with a result it doubts, returns a ``Note`` with its result
instead of failing or staying silent; the pages show every note beside the
numbers it concerns.

``level`` is ``"missing"`` (a part of the data is absent: say what and how to
add it), ``"assumed"`` (a figure rests on an assumption, not on the data) or
``"warning"`` (a number or a model is doubtful: outside its plausible range,
worse than a simple baseline, at a boundary).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["LEVELS", "Note", "notes_frame"]

#: The kinds of note, least to most pressing.
LEVELS: tuple[str, ...] = ("missing", "assumed", "warning")


@dataclass(frozen=True)
class Note:
    """One sentence for the pages about what ``topic`` could not do or doubts."""

    topic: str
    text: str
    level: Literal["missing", "assumed", "warning"] = "missing"

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"note level {self.level!r} is not one of {LEVELS}")

    def __str__(self) -> str:
        return self.text


def notes_frame(notes: Iterable[Note]) -> list[dict]:
    """Notes as plain records (for summary.json), each once, in the order given."""
    seen, out = set(), []
    for note in notes:
        if note not in seen:
            seen.add(note)
            out.append(asdict(note))
    return out
