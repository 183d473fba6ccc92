"""Net cash flow of forecast sample paths: inflows minus outflows, summed draw by draw.

Series ids are ``stage|direction|segment`` (:mod:`toolkit.flows`); the
direction gives the sign. Draw ``k`` of every series belongs to one joint
scenario, so the net flow of a day is a sum taken draw by draw, never over
quantiles. The cash position sums the paths it holds in memory with
:func:`net_flow_draws`, and a stored forecast sums each chunk of series on
its worker with the same function, so both follow one rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toolkit.flows import DIRECTIONS
from toolkit.forecast.settings import ForecastError

__all__ = ["net_flow_draws", "stage_and_direction"]


def stage_and_direction(unique_id: str) -> tuple[str, str]:
    """``(stage, direction)`` of a series id ``stage|direction|segment``."""
    parts = str(unique_id).split("|", 2)
    if len(parts) != 3 or parts[1] not in DIRECTIONS:
        raise ForecastError(
            f"series id {unique_id!r} is not 'stage|direction|segment' with direction "
            f"one of {list(DIRECTIONS)}"
        )
    return parts[0], parts[1]


def net_flow_draws(paths: pd.DataFrame) -> pd.DataFrame:
    """Net cash flow per forecast day and draw: inflow paths added, outflow paths subtracted.

    Parameters
    ----------
    paths
        Sample paths indexed by ``(unique_id, ds)`` with one column per draw; a
        series without a row on a day moves no money that day.

    Returns
    -------
    One row per date that any series has (index ``ds``, sorted), the draw
    columns of ``paths``.
    """
    # Series are added in the order of their ids, so the row order of ``paths``
    # cannot change a single bit of the result.
    series, uniques = pd.factorize(paths.index.get_level_values("unique_id"), sort=True)
    inflow = np.array([stage_and_direction(u)[1] == "inflow" for u in uniques], dtype=bool)
    day, dates = pd.factorize(paths.index.get_level_values("ds"), sort=True)
    values = paths.to_numpy(dtype=float)
    net = np.zeros((len(dates), values.shape[1]))
    # One vectorised add per series. A series has at most one row a day, so its
    # day positions are distinct and plain fancy-index assignment accumulates
    # correctly (no np.add.at). Series stored as one run of rows over
    # consecutive days (what the forecast delivers) are added as slices,
    # about ten times faster than gathering and scattering rows.
    order = np.argsort(series, kind="stable")
    bounds = np.searchsorted(series[order], np.arange(len(uniques) + 1))
    for s in range(len(uniques)):
        rows = order[bounds[s] : bounds[s + 1]]
        block = values[rows[0] : rows[-1] + 1] if rows[-1] - rows[0] + 1 == len(rows) else values[rows]
        at = day[rows]
        if at[-1] - at[0] + 1 == len(at) and np.all(at[1:] > at[:-1]):
            at = slice(at[0], at[-1] + 1)
        if inflow[s]:
            net[at] += block
        else:
            net[at] -= block
    index = pd.DatetimeIndex(dates).astype("datetime64[ns]").rename("ds")
    return pd.DataFrame(net, index=index, columns=paths.columns, copy=False)
