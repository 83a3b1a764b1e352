"""Small statistics for study reports and the benchmarks: means, Student-t quantiles, 95% intervals.

No scipy: the t quantile inverts the Student-t distribution function, written through the
regularised incomplete beta function (a continued fraction, Lentz's method), by bisection. It
takes fractional degrees of freedom, as Welch-Satterthwaite produces, and agrees with the printed
tables to their last digit (tests/test_benchmark_parity.py).
"""

from __future__ import annotations

import math
import statistics


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def regularised_incomplete_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, possibly fractional) degrees of freedom."""
    tail = 0.5 * regularised_incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0 < p < 1) of Student's t with ``df`` degrees of freedom; the normal
    quantile for ``df = inf``."""
    if not 0.0 < p < 1.0 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0 (got p={p}, df={df})")
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2.0


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def pstdev(values: list[float]) -> float:
    """Population standard deviation (as the public code reports a spread over networks)."""
    m = mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def paired_interval(differences: list[float]) -> dict:
    """Mean of paired differences and its 95% t-interval (sample std, n - 1 degrees of freedom)."""
    n = len(differences)
    m = mean(differences)
    if n < 2:
        return {"mean": m, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((d - m) ** 2 for d in differences) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return {"mean": m, "low": m - half, "high": m + half, "n": n}


def welch_interval(a: list[float], b: list[float]) -> dict:
    """mean(a) - mean(b) with a 95% Welch interval (Welch-Satterthwaite degrees of freedom).

    Returns ``difference``, ``low``, ``high``, ``df`` and the sample sizes; ``low``/``high`` are
    None when either side has fewer than two values. Equal, constant samples give a zero-width
    interval (``df`` = n_a + n_b - 2)."""
    record = {"difference": mean(a) - mean(b) if a and b else None, "low": None, "high": None, "df": None,
              "n": [len(a), len(b)]}
    if len(a) < 2 or len(b) < 2:
        return record
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        df = float(len(a) + len(b) - 2)
    else:
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    record.update(low=record["difference"] - half, high=record["difference"] + half, df=df)
    return record
