"""Tables for people: the frames the pages show, formatted the way a reader expects.

A raw DataFrame on a report page shows its index, ``8300065.81``,
``1.194e+07``, ``None``, ``NaT`` and customer ids as ``14911.0``. ``people_table``
turns a frame into a pandas ``Styler`` that shows money with its currency symbol
and thousands separators, shares as percentages, dates as dates, ids as text,
missing values as a dash (or a given word) and column labels in plain words,
with no index column. ``key_figures`` does the same for a few named figures
(a label/value table instead of a raw dict).

Columns not named in ``money``/``percent``/``dates``/``integers``/``text`` are
formatted by their type: whole numbers with thousands separators, other numbers
with two decimals, timestamps as dates, lists joined by commas. Columns named
``id`` or ending in ``_id`` are ids: shown as text.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from toolkit.charts import NO_MATH_CLASSES, money_text

__all__ = ["MISSING", "key_figures", "people_table", "plain_label"]

#: What a missing value reads as unless a table says otherwise.
MISSING = "-"

_NUMBER_ALIGN = [("text-align", "right"), ("font-variant-numeric", "tabular-nums")]
_TABLE_STYLES = [
    {"selector": "", "props": [("border-collapse", "collapse"), ("margin", "0.4em 0 1em 0")]},
    {"selector": "th", "props": [("text-align", "left"), ("font-weight", "600"), ("padding", "0.3em 0.9em 0.3em 0"),
                                 ("border-bottom", "1px solid #9ca3af")]},
    # left by default: JupyterLab's stylesheet right-aligns every cell, text included
    {"selector": "td", "props": [("padding", "0.25em 0.9em 0.25em 0"), ("border-bottom", "1px solid #e5e7eb"),
                                 ("text-align", "left")]},
]


def plain_label(column: str) -> str:
    """A column name in plain words: ``expected_value`` -> ``Expected value``."""
    words = str(column).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    return False


def _money(currency: str, decimals: int) -> Callable[[Any], str]:
    return lambda value: money_text(float(value), currency, compact=False, decimals=decimals)


def _percent(value: Any) -> str:
    # + 0.0 turns a negative zero (a share rounded to nothing) into "0.0%", not "-0.0%"
    return f"{round(float(value), 3) + 0.0:.1%}"


def _date(value: Any) -> str:
    day = pd.Timestamp(value)
    return f"{day.day} {day:%b %Y}"


def _integer(value: Any) -> str:
    return f"{float(value):,.0f}"


def _text(value: Any) -> str:
    """Ids and labels as written: a float id that is a whole number loses its ``.0``."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _by_type(value: Any) -> str:
    """A value whose column gave no format: formatted by what it is."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return _date(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):,.0f}" if float(value).is_integer() and abs(value) >= 1000 else f"{float(value):,.2f}"
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        low, high = value  # a (low, high) range, e.g. the scores a segment rule accepts
        return f"{low:g}" if low == high else f"{low:g}–{high:g}"
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return ", ".join(map(str, value)) or MISSING
    if isinstance(value, Mapping):  # counts by name, e.g. contacts per group: "5,707 treatment, 1,000 control"
        return ", ".join(f"{_by_type(count)} {name}" for name, count in value.items()) or MISSING
    return str(value)


def _is_id(column: str) -> bool:
    name = str(column).lower()
    return name == "id" or name.endswith("_id")


def _cell_formatter(format_value: Callable[[Any], str], missing: str) -> Callable[[Any], str]:
    return lambda value: html.escape(missing if _is_missing(value) else format_value(value))


def _formatters(frame: pd.DataFrame, kinds: Mapping[str, Collection[str]], currency: str,
                money_decimals: int) -> dict[str, Callable[[Any], str]]:
    named = {"money": _money(currency, money_decimals), "percent": _percent, "dates": _date,
             "integers": _integer, "text": _text}
    unknown = sorted({c for columns in kinds.values() for c in columns} - set(frame.columns))
    if unknown:
        raise KeyError(f"people_table: no column {unknown} in {list(map(str, frame.columns))}")
    chosen: dict[str, Callable[[Any], str]] = {}
    for column in frame.columns:
        kind = next((k for k, columns in kinds.items() if column in columns), None)
        if kind is None and _is_id(column):
            kind = "text"
        chosen[column] = named[kind] if kind else _by_type
    return chosen


def _stable_uuid(frame: pd.DataFrame) -> str:
    """An element id from the table's content, so the same table renders the same HTML every run."""
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    digest.update("|".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:12]


def people_table(
    frame: pd.DataFrame,
    *,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    dates: Iterable[str] = (),
    integers: Iterable[str] = (),
    text: Iterable[str] = (),
    currency: str = "USD",
    labels: Mapping[str, str] | None = None,
    missing: str | Mapping[str, str] = MISSING,
    money_decimals: int = 2,
) -> Styler:
    """``frame`` as a table for people: formatted values, plain labels, no index column.

    Parameters
    ----------
    money, percent, dates, integers, text
        Columns shown as money in ``currency`` (``$1,234.50``), as shares in
        percent (0.125 -> ``12.5%``), as dates (``1 Nov 2023``), as whole
        numbers (``1,234``) or as text (ids: ``14911``, never ``14911.0``).
        Other columns are formatted by their type.
    labels
        Column headers by column name; the rest are the names in plain words.
    missing
        What a missing value reads as (e.g. ``"not yet"``), or that word by
        column (columns not named read ``-``).
    money_decimals
        Decimals of money amounts (0 for large totals).
    """
    kinds = {"money": set(money), "percent": set(percent), "dates": set(dates),
             "integers": set(integers), "text": set(text)}
    data = frame.reset_index(drop=True)
    formatters = _formatters(data, kinds, currency, money_decimals)
    numeric = [c for c in data.columns if formatters[c] is not _text and
               (c in kinds["money"] | kinds["percent"] | kinds["integers"]
                or pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c]))]
    headers = {c: (labels or {}).get(c, plain_label(c)) for c in data.columns}
    # Values become strings here, so no later display option or dtype can show them otherwise.
    words = missing if isinstance(missing, Mapping) else dict.fromkeys(data.columns, missing)
    shown = pd.DataFrame({headers[c]: data[c].map(_cell_formatter(formatters[c], words.get(c, MISSING)))
                          .astype(object) for c in data.columns})
    styler = Styler(shown, uuid=_stable_uuid(shown), cell_ids=False)
    # JupyterLab typesets HTML outputs, and two amounts in dollars would become LaTeX.
    styler = (styler.hide(axis="index").set_table_styles(_TABLE_STYLES)
              .set_table_attributes(f'class="jc-table {NO_MATH_CLASSES}"'))
    if numeric:
        styler = styler.set_properties(subset=[headers[c] for c in numeric], **dict(_NUMBER_ALIGN))
    return styler


def key_figures(
    figures: Mapping[str, Any] | pd.DataFrame,
    *,
    money: Iterable[str] = (),
    percent: Iterable[str] = (),
    dates: Iterable[str] = (),
    integers: Iterable[str] = (),
    currency: str = "USD",
    labels: Mapping[str, str] | None = None,
    missing: str = MISSING,
) -> Styler:
    """Named figures as a table for people, each formatted by what it is, instead of a raw dict.

    ``figures`` is a mapping of figure to value (a two-column table: figure,
    value) or a frame whose first column names the figure and whose other
    columns hold its values (e.g. ``measure, previous, now, change``).
    ``money``, ``percent``, ``dates`` and ``integers`` name the figures to
    format so (as in :func:`people_table`; money without cents); the others are
    formatted by their type. A name not among the figures is ignored, so one
    list of kinds serves figures that are present only sometimes. ``labels``
    renames figures.
    """
    if isinstance(figures, pd.DataFrame):
        table = figures.reset_index(drop=True)
    else:
        table = pd.DataFrame({"figure": list(figures), "value": list(figures.values())})
    kinds = {"money": set(money), "percent": set(percent), "dates": set(dates), "integers": set(integers)}
    named = {"money": _money(currency, 0), "percent": _percent, "dates": _date, "integers": _integer}
    name_column, *value_columns = table.columns
    shown = {name_column: [(labels or {}).get(name, plain_label(name)) for name in table[name_column]]}
    for column in value_columns:
        cells = []
        for name, value in zip(table[name_column], table[column], strict=True):
            kind = next((k for k, keys in kinds.items() if name in keys), None)
            cells.append(missing if _is_missing(value) else (named[kind] if kind else _by_type)(value))
        shown[column] = cells
    headers = {"figure": "Figure", "value": "Value"}
    return people_table(pd.DataFrame(shown), text=list(shown), labels={c: headers.get(c, plain_label(c))
                                                                       for c in shown})
