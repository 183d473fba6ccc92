"""The BG/NBD and Gamma-Gamma models in closed form: their MAP fits and predictions, with SciPy.

pymc-marketing fits these models with ``pymc.find_MAP``, which builds and
compiles seven PyTensor functions per fit (about 2.5 s, paid again on every run
because the data are part of the graph), and importing pymc to rebuild a fitted
model costs 2-3 s in every process that predicts. Yet both models are a handful
of published formulas: the BG/NBD of Fader, Hardie & Lee (2005, "Counting your
customers the easy way") and the Gamma-Gamma of spend per purchase (Fader &
Hardie 2013, eq. 1a). They are written here exactly as pymc-marketing writes
them, so that the numbers are its numbers (tested against it):

* :func:`fit_bgnbd` and :func:`fit_gamma_gamma` maximise the log-likelihood
  plus the priors' log densities, without the Jacobian of the transforms, as
  ``find_MAP`` does, with L-BFGS-B on the real line (log, logit): a few
  hundredths of a second.
* :func:`probability_alive`, :func:`expected_purchases` and
  :func:`expected_spend` are pymc-marketing's ``expected_probability_alive``,
  ``expected_purchases`` and ``expected_customer_spend`` at the MAP point.

Priors are ``(distribution, parameters)`` pairs named as in pymc; only those
``RepurchaseModel`` uses are written out (:data:`DEFAULT_PRIORS` are
pymc-marketing's defaults; ``HalfFlat`` makes the MAP the maximum-likelihood fit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
from scipy import optimize, special, stats

#: A prior: pymc's distribution name and its parameters.
Prior = tuple[str, Mapping[str, float]]
#: pymc-marketing's default priors of the BG/NBD (drop-out pooled as phi and kappa) and the Gamma-Gamma.
DEFAULT_PRIORS: dict[str, Prior] = {
    "alpha": ("Weibull", {"alpha": 2, "beta": 10}), "r": ("Weibull", {"alpha": 2, "beta": 1}),
    "phi_dropout": ("Uniform", {"lower": 0, "upper": 1}), "kappa_dropout": ("Pareto", {"alpha": 1, "m": 1}),
    "p": ("HalfFlat", {}), "q": ("HalfFlat", {}), "v": ("HalfFlat", {}),
}
FLAT = ("HalfFlat", {})


class _Support(NamedTuple):
    """A prior's log density on its support, the map of the support to the real line and back, a start."""

    logpdf: Callable[[float], float]
    to_real: Callable[[float], float]
    from_real: Callable[[float], float]
    start: float


def _positive(logpdf: Callable[[float], float]) -> _Support:
    return _Support(logpdf, np.log, np.exp, 1.0)


def _support(prior: Prior) -> _Support:
    """The log density and transform of one prior (see :data:`Prior`)."""
    name, kwargs = prior
    match name:
        case "HalfFlat":
            return _positive(lambda x: 0.0)
        case "Weibull":
            return _positive(stats.weibull_min(kwargs["alpha"], scale=kwargs["beta"]).logpdf)
        case "Gamma":
            shape = (kwargs["mu"] / kwargs["sigma"]) ** 2
            return _positive(stats.gamma(shape, scale=kwargs["mu"] / shape).logpdf)
        case "Uniform" | "Beta":
            lower, upper = (kwargs["lower"], kwargs["upper"]) if name == "Uniform" else (0.0, 1.0)
            logpdf = (lambda x: 0.0) if name == "Uniform" else stats.beta(kwargs["alpha"], kwargs["beta"]).logpdf
            width = upper - lower
            return _Support(logpdf, lambda x: special.logit((x - lower) / width),
                            lambda z: lower + width * special.expit(z), lower + width / 2)
        case "Pareto":
            m = kwargs["m"]
            return _Support(stats.pareto(kwargs["alpha"], scale=m).logpdf, lambda x: np.log(x - m),
                            lambda z: m + np.exp(z), 2.0 * m)
    raise ValueError(f"no closed form for a {name} prior")


def _map(priors: Mapping[str, Prior], loglik: Callable[[dict[str, float]], float],
         derived: Callable[[dict[str, float]], dict[str, float]] = lambda free: {}) -> dict[str, float]:
    """The point maximising ``loglik`` plus the priors' log densities (no Jacobian, as ``find_MAP``)."""
    names = list(priors)
    supports = [_support(priors[name]) for name in names]

    def values_of(z: np.ndarray) -> dict[str, float]:
        free = {name: float(s.from_real(zi)) for name, s, zi in zip(names, supports, z)}
        return {**free, **derived(free)}

    def objective(z: np.ndarray) -> float:
        values = values_of(z)
        total = loglik(values) + sum(float(s.logpdf(values[n])) for n, s in zip(names, supports))
        return -total if np.isfinite(total) else np.inf

    start = np.array([s.to_real(s.start) for s in supports])
    found = optimize.minimize(objective, start, method="L-BFGS-B",
                              options={"maxiter": 5000, "maxfun": 50000, "ftol": 1e-15, "gtol": 1e-9})
    return values_of(found.x)


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


def fit_bgnbd(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray,
              priors: Mapping[str, Prior] | None = None) -> dict[str, float]:
    """MAP of the BG/NBD: r, alpha and the drop-out, as a and b or pooled as phi_dropout and kappa_dropout.

    ``priors`` name alpha, r and either a and b or phi_dropout and kappa_dropout
    (a = phi kappa, b = (1 - phi) kappa); default pymc-marketing's.
    """
    priors = dict(priors or {k: DEFAULT_PRIORS[k] for k in ("alpha", "phi_dropout", "kappa_dropout", "r")})
    data = [np.asarray(c, dtype=float) for c in (frequency, recency, T)]

    def dropout(free: dict[str, float]) -> dict[str, float]:
        if "phi_dropout" not in free:
            return {}
        return {"a": free["phi_dropout"] * free["kappa_dropout"],
                "b": (1 - free["phi_dropout"]) * free["kappa_dropout"]}

    return _map(priors, lambda v: bgnbd_loglik(v["a"], v["b"], v["r"], v["alpha"], *data), dropout)


def fit_gamma_gamma(frequency: np.ndarray, monetary_value: np.ndarray,
                    priors: Mapping[str, Prior] | None = None) -> dict[str, float]:
    """MAP of the Gamma-Gamma model on repeat customers' frequency and mean spend: p, q and v."""
    priors = dict(priors or {k: DEFAULT_PRIORS[k] for k in ("p", "q", "v")})
    x, z = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    return _map(priors, lambda v: gamma_gamma_loglik(v["p"], v["q"], v["v"], x, z))


def probability_alive(params: Mapping[str, float], frequency: np.ndarray, recency: np.ndarray,
                      T: np.ndarray) -> np.ndarray:
    """P(the customer has not dropped out) under the BG/NBD; 1 for customers who never bought again."""
    a, b, r, alpha = (params[k] for k in ("a", "b", "r", "alpha"))
    x = np.asarray(frequency, dtype=float)
    log_div = (r + x) * np.log((alpha + T) / (alpha + recency)) + np.log(a / (b + np.maximum(x, 1) - 1))
    return np.where(x == 0, 1.0, special.expit(-log_div))


def expected_purchases(params: Mapping[str, float], frequency: np.ndarray, recency: np.ndarray,
                       T: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Expected purchases over the next ``t`` time units under the BG/NBD (FHL 2005, eq. 10)."""
    a, b, r, alpha = (params[k] for k in ("a", "b", "r", "alpha"))
    x = np.asarray(frequency, dtype=float)
    numerator = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + T + t))
    numerator *= (a + b + x - 1) / (a - 1)
    denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + recency)) ** (r + x)
    return numerator / denominator


def expected_spend(params: Mapping[str, float], frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
    """Expected spend per purchase: the customer's mean spend shrunk towards everyone's (Gamma-Gamma)."""
    p, q, v = (params[k] for k in ("p", "q", "v"))
    x = np.asarray(frequency, dtype=float)
    weight = p * x / (p * x + q - 1)
    return (1 - weight) * v * p / (q - 1) + weight * np.asarray(monetary_value, dtype=float)
