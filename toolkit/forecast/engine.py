"""Prophet fits solved together: prophet-batch's exact MAP, Stan where it does not apply.

A series is fitted by Prophet once per backtest window and once more on its
whole history. Stock Prophet hands every fit to CmdStan's L-BFGS (a process
start, a JSON file each way). prophet-batch (``fit_many``) solves the same
posterior in this process instead: for linear or flat growth with additive
components the MAP is a convex problem, solved exactly from the fit's
sufficient statistics, for many fits at once; multiplicative components get a
Gauss-Newton solve checked against its optimality conditions. The models it
returns are ordinary fitted ``Prophet`` objects (same ``params`` layout), so
predicting and sampling paths stay Prophet's own code.

What differs from Stan: the batched solution is the exact optimum, Stan's
L-BFGS stops slightly short of it, so the batched log posterior is never lower
and the fitted values differ a little (``tests/test_forecast_engine.py``
measures it on real series). Each fit's arithmetic depends on its own data
alone, so a fit gives the same numbers whatever else it is solved with.

Stan stays the solver wherever prophet-batch does not solve a fit: logistic
growth, MCMC, regressors with predictors, a fit its solver rejects (no finite
optimum, not converged) -- ``fit_many`` calls ``Prophet.fit`` for those itself,
with exactly Stan's result. A fit that fails in ``fit_many`` altogether (e.g.
too few rows) is left out of the result, so the caller can fit it with Stan
and report Prophet's own error.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from contextlib import AbstractContextManager
from functools import cache
from typing import TYPE_CHECKING

import pandas as pd
from threadpoolctl import ThreadpoolController

if TYPE_CHECKING:
    from prophet import Prophet

__all__ = ["fit_together", "one_blas_thread", "solved_by_stan"]

#: The column naming each fit in the long frame handed to ``fit_many``.
_FIT = "__fit__"


@cache
def _blas() -> ThreadpoolController:
    """NumPy's and SciPy's BLAS, looked up once a process (a look-up costs a few milliseconds).

    SciPy brings a BLAS of its own, which its optimisers call (ETS's fit):
    it is loaded first, or the look-up would miss it.
    """
    import scipy.linalg  # noqa: F401

    return ThreadpoolController()


def one_blas_thread() -> AbstractContextManager:
    """Within it, BLAS runs on one thread.

    A series' arrays are small: BLAS threads waiting for a core (beside a
    pool's other workers, or the other lane of a report) cost more than they
    add. Measured on the benchmark's series, two BLAS threads took 0.42 s of
    CPU a series, one 0.22 s, for the same numbers.
    """
    return _blas().limit(limits=1, user_api="blas")


def fit_together(trainings: Mapping[Hashable, pd.DataFrame],
                 make_model: Callable[[Hashable], Prophet]) -> dict[Hashable, Prophet]:
    """Fit one Prophet model per training frame (``ds, y`` and any column the model reads) in one batched call.

    ``make_model(key)`` returns the new, configured, unfitted model of the fit
    ``key``. Returns the fitted models by key; a fit that raised is missing.
    """
    if not trainings:
        return {}
    from prophet_batch import fit_many  # imported here: reading a stored forecast does not need it

    keys = list(trainings)
    frames = [frame.assign(**{_FIT: position}) for position, frame in enumerate(trainings.values())]
    # batch_size = every fit: one solve, without fit_many's memory planning (an extra preprocess).
    with one_blas_thread():
        fitted = fit_many(pd.concat(frames, ignore_index=True), id_col=_FIT,
                          make_model=lambda position: make_model(keys[position]),
                          on_error="skip", batch_size=len(frames))
    return {keys[position]: model for position, model in fitted.items()}


def solved_by_stan(model: Prophet) -> bool:
    """Whether Stan fitted ``model`` (prophet-batch leaves no Stan fit on the models it solves)."""
    return getattr(model, "stan_fit", None) is not None
