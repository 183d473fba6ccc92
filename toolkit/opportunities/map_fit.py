"""The MAP fit of pymc-marketing's BG/NBD and Gamma-Gamma models, with SciPy.

pymc-marketing fits a model's MAP with ``pymc.find_MAP``, which builds and
compiles seven PyTensor functions per fit (the start point, a check of it, the
log density, its gradient, the deterministics): about 2.5 s a fit, of which the
graph rewriting is most, paid again on every run because the data are part of
the graph. The numbers it optimises are short: the models' published
log-likelihoods (the BG/NBD of Fader, Hardie & Lee 2005, and the Gamma-Gamma of
spend per purchase, eq. 1a of Fader & Hardie 2013, exactly as pymc-marketing
writes them) plus the log densities of the priors, without the Jacobian of the
transforms, as ``find_MAP`` does. SciPy's L-BFGS-B finds the same point in a few
hundredths of a second.

:func:`fit_map` fits a built pymc-marketing model this way and leaves it as its
own ``fit(method="map")`` would: the point in ``idata.posterior`` (one chain,
one draw), with the model's attributes and fit data, so every prediction is
still pymc-marketing's. It returns False, and fits nothing, for what it does not
write out (the Pareto/NBD, covariates, priors with priors of their own); the
caller then uses ``find_MAP``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

class _Support(NamedTuple):
    """A prior's log density on its support, the map of the support to the real line and back, a start."""

    logpdf: Callable[[np.ndarray], np.ndarray]
    to_real: Callable[[float], float]
    from_real: Callable[[np.ndarray], np.ndarray]
    start: float


def _positive(logpdf: Callable[[np.ndarray], np.ndarray]) -> _Support:
    return _Support(logpdf, np.log, np.exp, 1.0)


def _interval(logpdf: Callable[[np.ndarray], np.ndarray], lower: float, upper: float) -> _Support:
    width = upper - lower
    return _Support(logpdf, lambda x: special.logit((x - lower) / width),
                    lambda z: lower + width * special.expit(z), lower + width / 2)


def _support(prior) -> _Support | None:
    """The log density and transform of one pymc-extras ``Prior`` with plain numbers, or None.

    Only the distributions of pymc-marketing's defaults and of ``RepurchaseModel``'s own priors.
    """
    kwargs = dict(prior.parameters)
    if prior.dims or not all(isinstance(v, (int, float)) for v in kwargs.values()):
        return None
    match prior.distribution, sorted(kwargs):
        case "HalfFlat", []:
            return _positive(np.zeros_like)
        case "Weibull", ["alpha", "beta"]:
            return _positive(stats.weibull_min(kwargs["alpha"], scale=kwargs["beta"]).logpdf)
        case "Gamma", ["mu", "sigma"]:
            shape = (kwargs["mu"] / kwargs["sigma"]) ** 2
            return _positive(stats.gamma(shape, scale=kwargs["mu"] / shape).logpdf)
        case "Gamma", ["alpha", "beta"]:
            return _positive(stats.gamma(kwargs["alpha"], scale=1 / kwargs["beta"]).logpdf)
        case "Uniform", ["lower", "upper"]:
            return _interval(np.zeros_like, kwargs["lower"], kwargs["upper"])
        case "Beta", ["alpha", "beta"]:
            return _interval(stats.beta(kwargs["alpha"], kwargs["beta"]).logpdf, 0.0, 1.0)
        case "Pareto", ["alpha", "m"]:
            m = kwargs["m"]
            return _Support(stats.pareto(kwargs["alpha"], scale=m).logpdf,
                            lambda x: np.log(x - m), lambda z: m + np.exp(z), 2.0 * m)
    return None


def bgnbd_loglik(a: float, b: float, r: float, alpha: float, frequency: np.ndarray,
                 recency: np.ndarray, T: np.ndarray) -> float:
    """BG/NBD log-likelihood summed over customers (pymc-marketing's ``BetaGeoNBD.logp``)."""
    x = frequency
    d1 = (special.gammaln(r + x) - special.gammaln(r) + special.gammaln(a + b) + special.gammaln(b + x)
          - special.gammaln(b) - special.gammaln(a + b + x))
    d2 = r * np.log(alpha) - (r + x) * np.log(alpha + recency)
    c3 = ((alpha + recency) / (alpha + T)) ** (r + x)
    c4 = np.where(x > 0, a / np.maximum(b + x - 1, np.finfo(float).tiny), 0.0)
    return float(np.sum(d1 + d2 + np.log(c3 + c4)))


def gamma_gamma_loglik(p: float, q: float, v: float, frequency: np.ndarray, monetary_value: np.ndarray) -> float:
    """Gamma-Gamma log-likelihood of mean spend summed over customers (pymc-marketing's potential)."""
    x, z = frequency, monetary_value
    return float(np.sum(special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q)
                        + q * np.log(v) + (p * x - 1) * np.log(z) + p * x * np.log(x)
                        - (p * x + q) * np.log(x * z + v)))


def _loglik(model) -> tuple[Callable[[dict[str, float]], dict[str, float]],
                            Callable[[dict[str, float]], float]] | None:
    """(the model's deterministics, its log-likelihood) as functions of the free parameters, or None."""
    data = model.data
    name = type(model).__name__
    if name == "BetaGeoModel" and not model.covariate_cols:
        frequency, recency, T = (data[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        pooled = "a" not in model.model_config

        def derived(free: dict[str, float]) -> dict[str, float]:
            if not pooled:
                return {}
            return {"a": free["phi_dropout"] * free["kappa_dropout"],
                    "b": (1 - free["phi_dropout"]) * free["kappa_dropout"]}

        def loglik(values: dict[str, float]) -> float:
            return bgnbd_loglik(values["a"], values["b"], values["r"], values["alpha"], frequency, recency, T)

        return derived, loglik
    if name == "GammaGammaModel":
        frequency, spend = data["frequency"].to_numpy(float), data["monetary_value"].to_numpy(float)
        return (lambda free: {}), lambda v: gamma_gamma_loglik(v["p"], v["q"], v["v"], frequency, spend)
    return None


def fit_map(model, data: pd.DataFrame) -> bool:
    """Fit ``model``'s MAP on ``data`` as ``model.fit(data=data, method="map")`` would; False if not written out.

    The optimiser works on the real line (log, logit) from a neutral start; it
    is not ``find_MAP``'s start, but the MAP it finds is the same point (tested).
    """
    import arviz as az
    import xarray as xr

    model.build_model(data)
    likelihood = _loglik(model)
    free = [rv.name for rv in model.model.free_RVs]
    supports = {name: _support(model.model_config[name]) for name in free}
    if likelihood is None or any(s is None for s in supports.values()):
        return False
    derived, loglik = likelihood
    start = np.array([supports[name].to_real(supports[name].start) for name in free])

    def values_of(z: np.ndarray) -> dict[str, float]:
        values = {name: float(supports[name].from_real(zi)) for name, zi in zip(free, z)}
        return {**values, **derived(values)}

    def objective(z: np.ndarray) -> float:
        values = values_of(z)
        total = loglik(values) + sum(float(supports[n].logpdf(np.asarray(values[n]))) for n in free)
        return -total if np.isfinite(total) else np.inf

    found = optimize.minimize(objective, start, method="L-BFGS-B",
                              options={"maxiter": 5000, "maxfun": 50000, "ftol": 1e-15, "gtol": 1e-9})
    point = values_of(found.x)
    names = free + [d.name for d in model.model.deterministics]
    posterior = xr.Dataset({n: (("chain", "draw"), [[point[n]]]) for n in names},
                           coords={"chain": [0], "draw": [0]})
    model.idata = az.InferenceData(posterior=posterior)
    model.set_idata_attrs(model.idata)
    model._add_fit_data_group(model.data)
    return True

