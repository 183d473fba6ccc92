"""The toolkit's own exceptions: problems a user can act on, with messages that say how."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


class JourneycastError(Exception):
    """Base of every error the ``journeycast`` command reports as one clear line."""


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str,
                    error: type[JourneycastError] = JourneycastError) -> None:
    """Raise ``error`` naming the first of ``columns`` that ``frame`` lacks, and what it has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise error(f"{what}: required column {missing[0]!r} missing "
                    f"(expected {list(columns)}, found {list(map(str, frame.columns))})")
