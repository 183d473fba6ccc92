"""A forecast stored as it is made: Parquet tables on disk, the net cash flow in memory.

Thousands of series (stages x directions x segments) do not fit in memory as
sample paths: 10,000 series x 90 days x 500 draws are 3.6 GB of floats. A
forecaster given a ``store`` directory writes each finished chunk of series
to the tables below and keeps only the net cash flow per day and draw, which
is all the cash position needs. Files in the directory:

* ``forecast.parquet``: ``unique_id, ds, yhat, yhat_lower, yhat_upper, model``
  plus the series' extra columns, one row per series and day;
* ``diagnostics.parquet``: one row per series (as ``ForecastResult.diagnostics``);
* ``backtest.parquet``: backtest scores per series, model and window;
* ``notes.parquet``: the forecast's notes, ``topic, text, level``;
* ``net_flow.parquet``: the net cash flow of all series, one row per forecast
  day (``ds``) and one column per draw.

Rows are written in the order the series finish, each series' rows together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from toolkit.notes import Note

__all__ = ["NOTE_COLUMNS", "STORED_TABLES", "StoreWriter", "StoredForecast"]

#: The tables a stored forecast writes row by row, one Parquet file each.
STORED_TABLES = ("forecast", "diagnostics", "backtest", "notes")

#: Columns of the notes table: the fields of :class:`~toolkit.notes.Note`.
NOTE_COLUMNS = ("topic", "text", "level")

_NET_FLOW = "net_flow"


@dataclass(frozen=True)
class StoredForecast:
    """A forecast written to ``directory`` by ``StageForecaster(store=directory)``.

    Each attribute reads its table from disk when asked for, so holding this
    object holds no forecast; read a table in parts with
    ``pyarrow.parquet.ParquetFile(stored.path("forecast")).iter_batches()``
    when it is too large for memory.
    """

    directory: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))

    def path(self, table: str) -> Path:
        """The Parquet file of ``table`` (one of ``STORED_TABLES`` or ``"net_flow"``)."""
        if table not in (*STORED_TABLES, _NET_FLOW):
            raise ValueError(f"unknown table {table!r}; tables are {[*STORED_TABLES, _NET_FLOW]}")
        return self.directory / f"{table}.parquet"

    @property
    def forecast(self) -> pd.DataFrame:
        """``unique_id, ds, yhat, yhat_lower, yhat_upper, model`` and extras, series by series."""
        return pd.read_parquet(self.path("forecast"))

    @property
    def diagnostics(self) -> pd.DataFrame:
        """One row per series: status, model served, reason, backtest scores, extras."""
        return pd.read_parquet(self.path("diagnostics"))

    @property
    def backtest(self) -> pd.DataFrame:
        """Backtest scores per series, model and window."""
        return pd.read_parquet(self.path("backtest"))

    @property
    def notes(self) -> list[Note]:
        """What the forecast left out, assumed or doubts, as in ``ForecastResult.notes``."""
        table = pd.read_parquet(self.path("notes"))
        return [Note(row.topic, row.text, row.level) for row in table.itertuples()]

    @property
    def net_flow(self) -> pd.DataFrame:
        """Net cash flow of all series per forecast day (index ``ds``) and draw."""
        return pd.read_parquet(self.path(_NET_FLOW))


class StoreWriter:
    """Appends frames to the stored tables as they arrive; one ``ParquetWriter`` per table.

    A table's schema is that of its first non-empty frame, with columns that
    frame left empty (all missing) typed as text, so a later chunk's error
    messages or labels still fit; every later frame is cast to it.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.stored = StoredForecast(Path(directory))
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._empty: dict[str, pd.DataFrame] = {}

    def __enter__(self) -> StoreWriter:
        self.stored.directory.mkdir(parents=True, exist_ok=True)
        return self

    def append(self, table: str, frame: pd.DataFrame) -> None:
        """Write ``frame``'s rows to the end of ``table``."""
        if frame.empty:
            self._empty.setdefault(table, frame)
            return
        writer = self._writers.get(table)
        if writer is None:
            schema = pa.Schema.from_pandas(frame, preserve_index=False)
            for k, field in enumerate(schema):
                if pa.types.is_null(field.type):
                    schema = schema.set(k, field.with_type(pa.string()))
            writer = self._writers[table] = pq.ParquetWriter(self.stored.path(table), schema)
        writer.write_table(pa.Table.from_pandas(frame, schema=writer.schema, preserve_index=False))

    def write_net_flow(self, net_flow: pd.DataFrame) -> None:
        """Write the net cash flow per day and draw (small: days x draws)."""
        net_flow.to_parquet(self.stored.path(_NET_FLOW))

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for writer in self._writers.values():
            writer.close()
        for table in STORED_TABLES:
            if table not in self._writers and table in self._empty:
                self._empty[table].to_parquet(self.stored.path(table), index=False)
