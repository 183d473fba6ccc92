"""Quiet, cheaper I/O around Prophet's Stan optimizer (the model itself is untouched).

Prophet hands its model data to cmdstanpy as a dict of Python lists, and
cmdstanpy writes it to a JSON file through ``stanio``, which walks every
number in Python and then encodes with the pure-Python JSON encoder. On three
years of daily data that is a 600 KB file and more than half of a fit.
:class:`FastJsonModel` writes the same dict with the standard library's C
encoder instead: ``json.dumps`` formats floats with the same ``repr`` as the
Python encoder, so the file is byte-for-byte the one cmdstanpy would write
(``tests/test_forecast.py`` checks this) and the optimizer sees identical input.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

from stanio.json import process_value

__all__ = ["FastJsonModel", "quiet_logging", "write_stan_json"]


def quiet_logging() -> None:
    """Silence cmdstanpy's per-fit INFO lines, Prophet's chatter and its plotly notice.

    ``setLevel`` on the cmdstanpy logger is undone by cmdstanpy on first use,
    so the logger is disabled instead. Call it in every worker process too.
    """
    logging.getLogger("cmdstanpy").disabled = True
    logging.getLogger("prophet.plot").disabled = True
    logging.getLogger("prophet").setLevel(logging.WARNING)
    # prophet-batch logs a summary per call and each fit it leaves to the caller (who reports it)
    logging.getLogger("prophet_batch").setLevel(logging.ERROR)


def write_stan_json(path: str, data: dict[str, Any]) -> None:
    """Write Prophet's Stan data (ints, floats, lists, NumPy values) as CmdStan JSON.

    NumPy values go through ``stanio``'s own conversion, so the text matches
    what cmdstanpy writes.
    """
    with open(path, "w") as handle:
        handle.write(json.dumps(data, default=process_value))


class FastJsonModel:
    """Stand-in for a ``CmdStanModel`` whose ``optimize`` writes its inputs quickly.

    Prophet's Stan backend calls ``model.optimize(data=<dict>, inits=<dict>, ...)``;
    this writes both dicts with :func:`write_stan_json` and passes file paths on,
    which cmdstanpy accepts as they are. Everything else is delegated.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def optimize(self, data: Any = None, inits: Any = None, **kwargs: Any) -> Any:
        paths = []
        try:
            if isinstance(data, dict):
                data = self._dump(data, paths)
            if isinstance(inits, dict):
                inits = self._dump(inits, paths)
            return self._model.optimize(data=data, inits=inits, **kwargs)
        finally:
            for path in paths:
                os.remove(path)

    @staticmethod
    def _dump(values: dict[str, Any], paths: list[str]) -> str:
        handle, path = tempfile.mkstemp(suffix=".json")
        os.close(handle)
        paths.append(path)
        write_stan_json(path, values)
        return path
