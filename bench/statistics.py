"""How well a proxy ranks architectures, and how sure we are: rank metrics with bootstrap intervals.

Metric set after NASLib's ``compute_scores`` (REFERENCE D.2), with the suite's own conventions:

- **Kendall τ-b** (the headline figure; ties handled as ``scipy.stats.kendalltau``, variant ``b``),
  **Spearman ρ** (Pearson on average ranks) and **Pearson r** (on the raw values).
- **Precision of the top k%** (k = 1, 5, 10): the fraction of the proxy's top k% that is in the true
  top k%, with ``m = max(1, round(k·n/100))`` places. Ties at the cut-off share the remaining places
  (each tied architecture counts with the fraction of a place it gets: the expected value under random
  tie-breaking), so #params, which ties whole groups of cells, gets no arbitrary bonus or penalty.
- **Kendall τ within the true top 10%**: τ-b over the architectures whose accuracy is among the best
  ``m``; architectures tied with the ``m``-th are included.
- **nDCG@k** (``ndcg@K``, on request, not in the default table): VKDNW's top-weighted figure (CVPR 2025,
  ``NB201/tss_utils.py``: ``sklearn.metrics.ndcg_score(y_true=[accuracy], y_score=[score], k=5000)``).
  The gain is the accuracy itself (linear, not 2^rel − 1), the discount 1/log₂(position + 1) over the
  proxy's first ``k`` places, normalised by the DCG of the true order; architectures tied in score share
  their places' discounts equally (sklearn's default tie handling). ``k`` is a count, not a percentage.
- **Bootstrap intervals**: percentile intervals (default 95%) over ``n_resamples`` (default
  :data:`DEFAULT_RESAMPLES` = 1000) resamples of the architectures with replacement, drawn from
  ``numpy.random.default_rng(seed)``. Spearman, Pearson and top-k are computed for all resamples at once
  from multiplicity weights; τ-b runs scipy's O(n log n) routine once per resample. The point estimate is
  always the full-sample value, never the bootstrap mean.
- **Paired bootstrap** (:func:`paired_bootstrap`): both proxies on the *same* resamples of the
  architectures both scored, giving an interval for τ_A − τ_B and the share of resamples where A ranks
  better.
- **Noise ceiling** (:func:`noise_ceiling`): τ between independent training runs of the ground truth.

All correlations are signed, computed on the *oriented* score (the value, negated where the proxy
declares ``higher_is_better = False``); never |ρ| (REFERENCE E.2). Non-finite scores are excluded from
every figure and counted (the NaN policy recorded with each run). Population-level combinations such as
TE-NAS's rank sum are declared by the proxy as data (a ``proxies.base.PopulationRule``, stored with every
row as ``population_rule``) and applied here to the stored components (:func:`apply_population_rule`):
this module never imports proxy code.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bench.benchmarks.base import GroundTruthTable

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
TOP_K_PERCENTS: tuple[int, ...] = (1, 5, 10)
TOP_TAU_PERCENT = 10
_CHUNK = 100
"""Resamples drawn and evaluated together (memory: ``_CHUNK × n`` floats); fixed, so results depend
only on the seed."""

METRICS: tuple[str, ...] = (
    "kendall_tau", "spearman_rho", "pearson_r",
    *(f"top{k}_precision" for k in TOP_K_PERCENTS), f"top{TOP_TAU_PERCENT}_kendall_tau",
)
"""Every figure :func:`rank_metrics` estimates by default, in table order. Also accepted where metrics are
named: ``ndcg@K`` (nDCG over the first K places, :func:`ndcg_at_k`)."""


def ndcg_places(name: str) -> int | None:
    """K of a metric name ``ndcg@K`` (a positive integer), or None for any other name."""
    if not name.startswith("ndcg@"):
        return None
    text = name.removeprefix("ndcg@")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"metric {name!r}: expected ndcg@K with K a positive integer, e.g. ndcg@5000")
    return int(text)


def check_metrics(metrics: Sequence[str]) -> list[str]:
    """``metrics`` if each is one of :data:`METRICS` or ``ndcg@K``; else a ValueError naming the bad ones."""
    bad = []
    for name in metrics:
        try:
            known = name in METRICS or ndcg_places(name) is not None
        except ValueError:
            known = False
        if not known:
            bad.append(name)
    if bad:
        raise ValueError(f"unknown metric(s) {bad}; expected some of {', '.join(METRICS)} or ndcg@K")
    return list(metrics)


# ----------------------------------------------------------------------------- single figures


def kendall_tau(score: np.ndarray, truth: np.ndarray) -> float:
    """Kendall τ-b (ties in either variable handled as scipy does); NaN when a variable is constant."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.kendalltau(score, truth, variant="b").statistic)


def rank_nonfinite_last(oriented: np.ndarray) -> np.ndarray:
    """``oriented`` (higher = predicted better) with every non-finite score replaced by one value below all
    finite ones, so they tie for last place (the "worst" NaN policy, as NASLib's −1e8)."""
    oriented = np.asarray(oriented, dtype=float)
    finite = np.isfinite(oriented)
    if finite.all():
        return oriented
    return np.where(finite, oriented, oriented[finite].min() - 1.0 if finite.any() else 0.0)


def spearman_rho(score: np.ndarray, truth: np.ndarray) -> float:
    """Spearman ρ: Pearson correlation of average ranks."""
    return float(_Resampled(score, truth, _identity(score)).spearman()[0])


def pearson_r(score: np.ndarray, truth: np.ndarray) -> float:
    """Pearson r on the values themselves."""
    return float(_Resampled(score, truth, _identity(score)).pearson()[0])


def top_k_places(n: int | np.ndarray, percent: float) -> np.ndarray:
    """Places in the top ``percent``% of ``n`` architectures: ``max(1, round(n·percent/100))``, halves up."""
    return np.maximum(1.0, np.floor(np.asarray(n, dtype=float) * percent / 100 + 0.5))


def top_k_precision(score: np.ndarray, truth: np.ndarray, percent: float) -> float:
    """Fraction of the proxy's top ``percent``% that is in the true top ``percent``% (ties share places)."""
    return float(_Resampled(score, truth, _identity(score)).top_precision(percent)[0])


def top_kendall_tau(score: np.ndarray, truth: np.ndarray, percent: float = TOP_TAU_PERCENT) -> float:
    """Kendall τ-b among the architectures in the true top ``percent``% (ties at the cut included)."""
    return float(_Resampled(score, truth, _identity(score)).top_kendall(percent)[0])


def ndcg_at_k(score: np.ndarray, truth: np.ndarray, k: int) -> float:
    """nDCG over the proxy's first ``k`` places with the accuracy as gain (VKDNW's definition, as
    ``sklearn.metrics.ndcg_score`` with ties averaged); ``k`` above n means n."""
    return float(_Resampled(score, truth, _identity(score)).ndcg(k)[0])


# ----------------------------------------------------------------------------- vectorised machinery


def _identity(score: np.ndarray) -> np.ndarray:
    return np.arange(len(score))[None]


class _TieGroups:
    """Tie groups of one variable (group ids ascending with the value), shared by every resample."""

    def __init__(self, values: np.ndarray) -> None:
        unique, self.group_of_item = np.unique(values, return_inverse=True)
        self.n_groups = len(unique)

    def counts(self, entries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For resampled item ``entries`` (B, n): each entry's group id, and per resample and group the
        number of entries in the group and below it."""
        rows, n = entries.shape
        group = self.group_of_item[entries]
        size = np.bincount((group + self.n_groups * np.arange(rows)[:, None]).ravel(),
                           minlength=rows * self.n_groups).reshape(rows, self.n_groups).astype(float)
        return group, size, np.cumsum(size, axis=1) - size


class _Resampled:
    """Score and truth on a stack of resamples (rows of item indices), every figure vectorised over rows."""

    def __init__(self, score: np.ndarray, truth: np.ndarray, entries: np.ndarray,
                 groups: tuple[_TieGroups, _TieGroups] | None = None) -> None:
        self.score, self.truth, self.entries = score, truth, entries
        self.n = entries.shape[1]
        gs, gt = groups or (_TieGroups(score), _TieGroups(truth))
        self._score_groups, self._truth_groups = gs.counts(entries), gt.counts(entries)

    @staticmethod
    def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx = x - x.mean(axis=1, keepdims=True)
        dy = y - y.mean(axis=1, keepdims=True)
        var = (dx * dx).sum(axis=1) * (dy * dy).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(var > 0, (dx * dy).sum(axis=1) / np.sqrt(var), np.nan)

    def pearson(self) -> np.ndarray:
        return self._pearson(self.score[self.entries], self.truth[self.entries])

    @staticmethod
    def _ranks(counts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        group, size, below = counts
        return np.take_along_axis(below + (size + 1) / 2, group, axis=1)

    def spearman(self) -> np.ndarray:
        return self._pearson(self._ranks(self._score_groups), self._ranks(self._truth_groups))

    def _top_share(self, counts: tuple[np.ndarray, np.ndarray, np.ndarray], percent: float) -> np.ndarray:
        """Per entry, the share of a top-``percent``% place it gets; a tie group straddling the cut-off
        splits the places left over among its entries."""
        group, size, below = counts
        above = self.n - below - size
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(size > 0, np.clip((top_k_places(self.n, percent) - above) / size, 0.0, 1.0), 0.0)
        return np.take_along_axis(share, group, axis=1)

    def top_precision(self, percent: float) -> np.ndarray:
        overlap = self._top_share(self._score_groups, percent) * self._top_share(self._truth_groups, percent)
        return overlap.sum(axis=1) / top_k_places(self.n, percent)

    def kendall(self) -> np.ndarray:
        return _kendall_rows(self.score, self.truth, self.entries, np.ones(self.entries.shape, dtype=bool))

    def top_kendall(self, percent: float) -> np.ndarray:
        return _kendall_rows(self.score, self.truth, self.entries, self._top_share(self._truth_groups, percent) > 0)

    def _discounted(self, counts: tuple[np.ndarray, np.ndarray, np.ndarray], k: int) -> np.ndarray:
        """Σ of entries' gains times the mean discount of their tie group's places, in descending order of
        the grouped variable (the places of a group are the ``size`` after the ``n − below − size`` above)."""
        group, size, below = counts
        discount = np.zeros(self.n + 1)
        places = np.arange(min(k, self.n))
        discount[1:len(places) + 1] = np.cumsum(1.0 / np.log2(places + 2))
        discount[len(places) + 1:] = discount[len(places)]
        first = (self.n - below - size).astype(int)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(size > 0, (discount[first + size.astype(int)] - discount[first]) / size, 0.0)
        return (np.take_along_axis(share, group, axis=1) * self.truth[self.entries]).sum(axis=1)

    def ndcg(self, k: int) -> np.ndarray:
        ideal = self._discounted(self._truth_groups, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ideal != 0, self._discounted(self._score_groups, k) / ideal, np.nan)

    def metric(self, name: str) -> np.ndarray:
        if name == "kendall_tau":
            return self.kendall()
        if name == "spearman_rho":
            return self.spearman()
        if name == "pearson_r":
            return self.pearson()
        if name == f"top{TOP_TAU_PERCENT}_kendall_tau":
            return self.top_kendall(TOP_TAU_PERCENT)
        places = ndcg_places(name)
        if places is not None:
            return self.ndcg(places)
        return self.top_precision(float(name.removeprefix("top").removesuffix("_precision")))


_PAIRWISE_MAX = 300
"""Up to this many items per resample, τ-b is computed from all pairs at once (vectorised over resamples);
above it, scipy's O(n log n) routine runs once per resample."""


def _kendall_rows(score: np.ndarray, truth: np.ndarray, entries: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """τ-b of each resample row over its kept entries."""
    sizes = keep.sum(axis=1)
    if sizes.max(initial=0) > _PAIRWISE_MAX:
        return np.array([kendall_tau(score[row[k]], truth[row[k]]) for row, k in zip(entries, keep, strict=True)])
    width = max(int(sizes.max(initial=0)), 1)
    # Left-align each row's kept entries; padding is masked out.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :width]
    items = np.take_along_axis(entries, order, axis=1)
    mask = np.arange(width)[None, :] < sizes[:, None]
    out = np.empty(len(entries))
    step = max(1, 2_000_000 // (width * width))
    for start in range(0, len(entries), step):
        block = slice(start, start + step)
        out[block] = _pairwise_tau_b(score[items[block]], truth[items[block]], mask[block])
    return out


def _pairwise_tau_b(x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """τ-b per row from all pairs of the masked entries: (concordant − discordant) /
    √((pairs − pairs tied in x)(pairs − pairs tied in y)), as scipy's variant ``b``."""
    sx = np.sign(x[:, :, None] - x[:, None, :]).astype(np.int8)
    sy = np.sign(y[:, :, None] - y[:, None, :]).astype(np.int8)
    both = mask[:, :, None] & mask[:, None, :]
    n = mask.sum(axis=1).astype(float)
    pairs = n * (n - 1) / 2
    balance = (sx * sy * both).sum(axis=(1, 2), dtype=np.int64) / 2
    tied_x = (((sx == 0) & both).sum(axis=(1, 2)) - n) / 2  # the diagonal is no pair
    tied_y = (((sy == 0) & both).sum(axis=(1, 2)) - n) / 2
    denominator = (pairs - tied_x) * (pairs - tied_y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, balance / np.sqrt(denominator), np.nan)


def _resamples(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index chunks (≤ ``_CHUNK`` × n); the same seed and n give the same resamples."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_resamples, _CHUNK):
        yield rng.integers(0, n, size=(min(_CHUNK, n_resamples - start), n))


def bootstrap_distribution(score: np.ndarray, truth: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES,
                           seed: int = 0, metrics: Sequence[str] = METRICS) -> dict[str, np.ndarray]:
    """Each metric on each of ``n_resamples`` bootstrap resamples of the architectures (arrays of length
    ``n_resamples``). Resamples depend only on ``seed`` and ``len(score)``, so two proxies scored on the
    same architectures see the same resamples (the basis of :func:`paired_bootstrap`)."""
    score, truth = _check_pair(score, truth)
    metrics = check_metrics(metrics)
    groups = (_TieGroups(score), _TieGroups(truth))
    out: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for entries in _resamples(len(score), n_resamples, seed):
        resampled = _Resampled(score, truth, entries, groups)
        for metric in metrics:
            out[metric].append(resampled.metric(metric))
    return {m: np.concatenate(v) if v else np.empty(0) for m, v in out.items()}


# ----------------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap percentile interval."""

    value: float
    low: float
    high: float


def interval(point: float, draws: np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """``point`` with the percentile interval of its bootstrap ``draws`` (non-finite draws ignored)."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return Estimate(point, math.nan, math.nan)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Estimate(point, float(low), float(high))


def _check_pair(score: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    score, truth = np.asarray(score, dtype=float), np.asarray(truth, dtype=float)
    if score.ndim != 1 or score.shape != truth.shape:
        raise ValueError(f"score and truth must be 1-D arrays of one length, got {score.shape} and {truth.shape}")
    if not (np.isfinite(score).all() and np.isfinite(truth).all()):
        raise ValueError("score and truth must be finite; drop non-finite entries first")
    if len(score) < 2:
        raise ValueError(f"need at least 2 architectures to rank, got {len(score)}")
    return score, truth


def point_metrics(score: np.ndarray, truth: np.ndarray, metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Each of ``metrics`` (default :data:`METRICS`) on the full sample."""
    score, truth = _check_pair(score, truth)
    full = _Resampled(score, truth, _identity(score))
    return {m: float(full.metric(m)[0]) for m in check_metrics(metrics)}


def rank_metrics(score: np.ndarray, truth: np.ndarray, *, n_resamples: int = DEFAULT_RESAMPLES,
                 confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                 metrics: Sequence[str] = METRICS) -> dict[str, Estimate]:
    """Each of ``metrics`` (default :data:`METRICS`) with its bootstrap interval. ``score`` is oriented
    (higher = predicted better) and finite; ``truth`` is the ground-truth accuracy of the same architectures."""
    return _metrics_and_draws(score, truth, n_resamples, confidence, seed, metrics)[0]


def _metrics_and_draws(score: np.ndarray, truth: np.ndarray, n_resamples: int, confidence: float,
                       seed: int, metrics: Sequence[str] = METRICS
                       ) -> tuple[dict[str, Estimate], dict[str, np.ndarray]]:
    points = point_metrics(score, truth, metrics)
    draws = bootstrap_distribution(score, truth, n_resamples=n_resamples, seed=seed, metrics=metrics)
    return {m: interval(points[m], draws[m], confidence) for m in metrics}, draws


@dataclass(frozen=True)
class PairedComparison:
    """Proxy A against proxy B on the same architectures and the same bootstrap resamples."""

    metric: str
    n: int
    a: float
    b: float
    difference: Estimate
    """A − B with its interval."""
    probability_a_better: float
    """Share of resamples where A's figure exceeds B's (ties count half)."""


def paired_from_draws(metric: str, n: int, a: float, b: float, draws_a: np.ndarray, draws_b: np.ndarray,
                      confidence: float = DEFAULT_CONFIDENCE) -> PairedComparison:
    """A :class:`PairedComparison` from two bootstrap distributions drawn on the same resamples."""
    diff = draws_a - draws_b
    finite = diff[np.isfinite(diff)]
    prob = float(((finite > 0).sum() + 0.5 * (finite == 0).sum()) / finite.size) if finite.size else math.nan
    return PairedComparison(metric, n, a, b, interval(a - b, diff, confidence), prob)


def paired_bootstrap(score_a: np.ndarray, score_b: np.ndarray, truth: np.ndarray, *,
                     metric: str = "kendall_tau", n_resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> PairedComparison:
    """Does proxy A rank better than proxy B? Both oriented scores cover the same architectures."""
    score_a, truth = _check_pair(score_a, truth)
    score_b, _ = _check_pair(score_b, truth)
    draws_a = bootstrap_distribution(score_a, truth, n_resamples=n_resamples, seed=seed, metrics=[metric])[metric]
    draws_b = bootstrap_distribution(score_b, truth, n_resamples=n_resamples, seed=seed, metrics=[metric])[metric]
    a, b = point_metrics(score_a, truth)[metric], point_metrics(score_b, truth)[metric]
    return paired_from_draws(metric, len(truth), a, b, draws_a, draws_b, confidence)


# ----------------------------------------------------------------------------- noise ceiling


NOISE_CEILING_MEASURES = {
    "trial0_vs_trial1": "τ-b between the first and second training run (archs with ≥ 2 runs)",
    "trial0_vs_mean_of_others": "τ-b between the first run and the mean of the other runs (archs with ≥ 2 runs)",
}


def noise_ceiling(trials: pd.DataFrame, archs: Sequence[Any] | None = None, *,
                  accuracy_column: str | None = None, n_resamples: int = DEFAULT_RESAMPLES,
                  confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> pd.DataFrame:
    """How well one training run of the ground truth ranks another: the best a proxy could hope for.

    ``trials`` has an architecture column (``arch``, as ``GroundTruthTable.trials``, or ``index``), a
    ``trial`` column and one accuracy column (``accuracy``, else the first other numeric column; an
    optional ``key`` column is ignored). Over the architectures of ``archs`` (all when None) that have at
    least two runs, two measures (see :data:`NOISE_CEILING_MEASURES`), each a τ-b and Spearman ρ with
    bootstrap intervals. The first is the ceiling for ranking *single-run* accuracies; benchmarks compare
    with the mean over runs, which is less noisy, so the second (one run against the others' mean) is the
    closer, still conservative, bound. Runs are ordered by their ``trial`` number.
    """
    who = "arch" if "arch" in trials.columns else "index"
    column = accuracy_column or ("accuracy" if "accuracy" in trials.columns else
                                 next(c for c in trials.columns if c not in (who, "trial", "key")))
    table = trials if archs is None else trials[trials[who].isin(list(archs))]
    wide = table.pivot_table(index=who, columns="trial", values=column, aggfunc="first").sort_index(axis=1)
    wide = wide[wide.notna().sum(axis=1) >= 2]
    runs = wide.to_numpy(float)
    rows_at = np.arange(len(runs))
    present_first = np.argsort(np.isnan(runs), axis=1, kind="stable")  # columns of the runs, in trial order
    first = runs[rows_at, present_first[:, 0]] if len(runs) else np.empty(0)
    second = runs[rows_at, present_first[:, 1]] if len(runs) else np.empty(0)
    rest_mean = (np.nansum(runs, axis=1) - first) / (np.isfinite(runs).sum(axis=1) - 1)
    rows: list[dict[str, Any]] = []
    for measure, other in (("trial0_vs_trial1", second), ("trial0_vs_mean_of_others", rest_mean)):
        row: dict[str, Any] = {"measure": measure, "description": NOISE_CEILING_MEASURES[measure], "n": len(first)}
        if len(first) >= 2:
            draws = bootstrap_distribution(first, other, n_resamples=n_resamples, seed=seed,
                                           metrics=["kendall_tau", "spearman_rho"])
            for metric, point in (("kendall_tau", kendall_tau(first, other)),
                                  ("spearman_rho", spearman_rho(first, other))):
                est = interval(point, draws[metric], confidence)
                row.update({metric: est.value, f"{metric}_low": est.low, f"{metric}_high": est.high})
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- stored scores


VARIANT_KEY: tuple[str, ...] = ("benchmark", "network", "dataset", "proxy", "option_hash", "seed")
"""Rows sharing these columns are one proxy protocol scored on a set of architectures."""


@dataclass
class Evaluation:
    """Everything the report shows, as plain tables.

    ``table``: one row per (benchmark, network, dataset, proxy variant): each metric with ``_low``/``_high``
    interval columns, ``n`` (finite scores used), ``n_nonfinite``, ``n_disconnected`` (degenerate
    architectures), median seconds and peak memory per architecture, the GT key. ``paired``: τ difference
    and P(A better) for every ordered pair of variants of a dataset, on the architectures both scored
    finitely. ``noise_ceiling``: see :func:`noise_ceiling` (ground-truth keys with per-trial results only).
    ``points``: per architecture (spec string ``arch``) the oriented score and accuracy used (for plots).
    ``notes``: anything a reader must know.
    """

    table: pd.DataFrame
    paired: pd.DataFrame
    noise_ceiling: pd.DataFrame
    points: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    nan_policy: str = "exclude"
    n_resamples: int = DEFAULT_RESAMPLES
    confidence: float = DEFAULT_CONFIDENCE
    seed: int = 0


def option_differences(options: Sequence[dict[str, Any]]) -> list[str]:
    """Per options dict, ``"[key=value,...]"`` naming the options on which the dicts differ (``""`` where
    none differ): how a label tells several protocols of one proxy apart."""
    varying = sorted({k for o in options for k in o
                      if len({json.dumps(x.get(k), default=str, sort_keys=True) for x in options}) > 1})
    return ["[" + ",".join(f"{k}={o.get(k)}" for k in varying) + "]" if varying else "" for o in options]


def variant_labels(rows: pd.DataFrame) -> pd.Series:
    """Readable name per row's variant: the proxy name; where one dataset holds several protocols of a
    proxy, the options that differ between them (``zen[network=no-reslink]``), or the option hash where the
    rows carry no options or the options do not tell them apart; the seed where it holds several seeds;
    the network where it holds several networks."""
    labels = rows["proxy"].astype(str).copy()
    for _, group in rows.groupby(["dataset", "proxy"], sort=False):
        if group["option_hash"].nunique() > 1:
            hashes = group["option_hash"].astype(str)
            protocols = group.drop_duplicates("option_hash")
            options = ([o if isinstance(o, dict) else {} for o in protocols["options"]]
                       if "options" in protocols else [{} for _ in range(len(protocols))])
            named = dict(zip(protocols["option_hash"].astype(str), option_differences(options), strict=True))
            if len(set(named.values())) < len(named) or "" in named.values():
                named = {h: "@" + h[:6] for h in named}
            labels.loc[group.index] += hashes.map(named)
        if group["seed"].nunique() > 1:
            labels.loc[group.index] += " seed " + group["seed"].astype(str)
        if "network" in group and group["network"].nunique() > 1:
            labels.loc[group.index] += " [" + group["network"].astype(str) + "]"
    return labels


# ----------------------------------------------------------------------------- population rules


POPULATION_RULES = {
    "rank_sum": "Σ over components of rank (1..N ascending, ties averaged): TE-NAS",
    "log_rank_sum": "Σ over components of log(rank / N) (ranks 1..N ascending, ties averaged): AZ-NAS",
}
"""Population-level combinations statistics applies (``PopulationRule.rule``)."""


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (zero and non-finite values unchanged)."""
    out = np.asarray(values, dtype=float).copy()
    finite = np.isfinite(out) & (out != 0)
    magnitude = np.floor(np.log10(np.abs(out[finite])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[finite] = np.round(out[finite] * scale) / scale
    return out


def rule_components(rule: dict[str, Any]) -> list[str]:
    """The component names a stored rule reads, nested rules' included, in order, each once."""
    names: list[str] = []
    for entry in rule.get("components") or []:
        for name in rule_components(entry) if isinstance(entry, dict) else [entry]:
            if name not in names:
                names.append(name)
    return names


def apply_population_rule(rule: dict[str, Any], components: dict[str, np.ndarray]) -> np.ndarray:
    """The population score of a stored rule (``PopulationRule.to_dict()``) over the stored components
    (one array per component name, one entry per architecture, each oriented higher-is-better).

    Each entry of the rule is a component name, rounded to ``precision`` significant digits when given, or a
    nested rule, applied first (its own precision and weights). The entries are ranked 1..N ascending
    (``scipy.stats.rankdata``, ties averaged) over the N architectures where no entry is NaN; ``rank_sum``
    adds w·rank, ``log_rank_sum`` adds w·log(rank / N), w the rule's ``weights`` (default 1 each). An
    architecture with a NaN entry gets NaN (left out of the ranking); −inf ranks last, +inf first.
    """
    name = rule.get("rule")
    if name not in POPULATION_RULES:
        raise ValueError(f"unknown population rule {name!r}; expected one of {', '.join(POPULATION_RULES)}")
    entries = list(rule.get("components") or [])
    missing = [c for c in rule_components(rule) if c not in components]
    if not entries or missing:
        raise ValueError(f"population rule {name} needs component(s) {', '.join(missing or ['(none named)'])}")
    weights = rule.get("weights") or [1.0] * len(entries)
    if len(weights) != len(entries):
        raise ValueError(f"population rule {name}: {len(weights)} weights for {len(entries)} components")
    precision = rule.get("precision")
    columns = []
    for entry in entries:
        if isinstance(entry, dict):
            columns.append(apply_population_rule(entry, components))
            continue
        column = np.asarray(components[entry], dtype=float)
        columns.append(round_significant(column, int(precision)) if precision is not None else column)
    if any(c.ndim != 1 or c.shape != columns[0].shape for c in columns):
        raise ValueError(f"population rule {name}: components must be 1-D arrays of one length, got shapes "
                         f"{[c.shape for c in columns]}")
    valid = ~np.any([np.isnan(c) for c in columns], axis=0)
    out = np.full(columns[0].shape, np.nan)
    n = int(valid.sum())
    if n:
        ranks = [stats.rankdata(c[valid]) for c in columns]
        terms = ranks if name == "rank_sum" else [np.log(r / n) for r in ranks]
        out[valid] = sum(float(w) * t for w, t in zip(weights, terms, strict=True))
    return out


def population_scores(rows: pd.DataFrame) -> tuple[np.ndarray, str | None]:
    """The stored values of one variant after the population-level combination stored with its rows
    (``population_rule``: a rule dict or None). Returns the scores and a note when the rule could not be
    applied (components missing: the raw values are used then)."""
    values = rows["value"].to_numpy(float)
    rules = [r for r in rows.get("population_rule", pd.Series([None] * len(rows))) if r]
    if not rules:
        return values, None
    rule = rules[0]
    if any(r != rule for r in rules) or len(rules) != len(rows):
        return values, f"{rows.iloc[0]['proxy']}: rows disagree on the population rule; raw values used"
    present = {k for c in rows["components"] for k in (c or {})}
    names = [k for k in rule_components(rule) if k in present]  # a row without one of them gets NaN
    components = {k: np.array([(c or {}).get(k, math.nan) for c in rows["components"]], float) for k in names}
    try:
        return apply_population_rule(rule, components), None
    except ValueError as exc:
        return values, f"{rows.iloc[0]['proxy']}: population rule not applied ({exc})"


NAN_POLICIES = {
    "exclude": "non-finite scores are left out of every figure and counted",
    "worst": "non-finite scores rank last, tied (as NASLib's NaN/inf → −1e8)",
}


def evaluate(rows: pd.DataFrame, ground_truth: GroundTruthTable | pd.DataFrame, *,
             trials: pd.DataFrame | None = None, nan_policy: str = "exclude", n_resamples: int = DEFAULT_RESAMPLES,
             confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Evaluation:
    """Rank metrics of every stored proxy variant against ground truth.

    ``rows``: stored scores (:meth:`bench.store.ResultStore.scores`). ``ground_truth``: a
    :class:`~bench.benchmarks.base.GroundTruthTable` or its table, indexed by spec string with one column
    per GT key; each row is joined on its spec (``arch``) and compared with the column its run recorded
    (``gt_key``). Rows are taken in the table's order (the benchmark's enumeration: NB201 index order),
    unknown specs last. Each variant is combined at population level (its stored rule), oriented by its
    recorded direction, stripped of non-finite scores (counted), then measured with bootstrap intervals.
    ``trials``: per-run accuracies (columns ``arch, trial, accuracy, key``; default: the table's
    ``trials``); for every GT key they hold trials of, the noise ceiling over the architectures scored
    with that key. ``nan_policy`` ("exclude"): see :data:`NAN_POLICIES`.
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(f"unknown NaN policy {nan_policy!r}; expected one of {', '.join(NAN_POLICIES)}")
    if isinstance(ground_truth, GroundTruthTable):
        trials = ground_truth.trials if trials is None else trials
        ground_truth = ground_truth.table
    notes: list[str] = []
    empty = pd.DataFrame()
    if rows.empty:
        return Evaluation(empty, empty, empty, empty, ["the store holds no scores"], nan_policy, n_resamples,
                          confidence, seed)
    missing = sorted(set(rows["gt_key"]) - set(map(str, ground_truth.columns)))
    if missing:
        raise ValueError(f"ground truth has no column(s) {missing} recorded in the store; "
                         f"columns: {', '.join(map(str, ground_truth.columns))}")
    position = ground_truth.index.get_indexer(rows["arch"])
    rows = rows.assign(label=variant_labels(rows), _order=np.where(position < 0, len(ground_truth), position))
    rows = rows.sort_values(["_order", "arch"], kind="stable").drop(columns="_order")
    table_rows, points, tau_draws = [], [], {}
    for _, group in rows.groupby([k for k in VARIANT_KEY if k in rows], sort=True):
        combined, note = population_scores(group)
        if note:
            notes.append(note)
        direction = 1.0 if bool(group["higher_is_better"].iloc[0]) else -1.0
        truth = _accuracies(ground_truth, group)
        oriented = direction * combined
        finite, known = np.isfinite(oriented), np.isfinite(truth)
        if nan_policy == "worst":
            oriented = rank_nonfinite_last(oriented)
        use = np.isfinite(oriented) & known
        first = group.iloc[0]
        record: dict[str, Any] = {k: first[k] for k in VARIANT_KEY if k in group}
        record.update(label=first["label"], proxy_class=first["proxy_class"],
                      higher_is_better=bool(first["higher_is_better"]),
                      gt_key=",".join(sorted(group["gt_key"].unique())), n=int(use.sum()),
                      n_scored=len(group), n_nonfinite=int((~finite).sum()), n_without_truth=int((~known).sum()),
                      n_disconnected=int(group["disconnected"].sum()),
                      median_seconds=float(group["seconds"].median()),
                      median_peak_memory_mb=float(group["peak_memory_mb"].median()),
                      combined=note is None and not np.array_equal(combined, group["value"].to_numpy(float),
                                                                   equal_nan=True))
        if use.sum() >= 2:
            estimates, draws = _metrics_and_draws(oriented[use], truth[use], n_resamples, confidence, seed)
            tau_draws[(first["dataset"], first["label"])] = (group["arch"].to_numpy()[use], draws["kendall_tau"])
            for metric, est in estimates.items():
                record.update({metric: est.value, f"{metric}_low": est.low, f"{metric}_high": est.high})
        else:
            notes.append(f"{first['dataset']}/{first['label']}: fewer than 2 finite scores with ground truth")
        if (~known).any():
            notes.append(f"{first['dataset']}/{first['label']}: {int((~known).sum())} architecture(s) without "
                         f"ground truth were left out")
        table_rows.append(record)
        points.append(pd.DataFrame({"dataset": first["dataset"], "label": first["label"],
                                    "arch": group["arch"].to_numpy(), "oriented_score": oriented,
                                    "value": combined, "accuracy": truth,
                                    "disconnected": group["disconnected"].to_numpy(bool)}))
    point_table = pd.concat(points, ignore_index=True)
    order = {arch: i for i, arch in enumerate(dict.fromkeys(rows["arch"]))}
    paired = _paired_table(point_table, tau_draws, order, n_resamples=n_resamples, confidence=confidence, seed=seed)
    ceilings = []
    if trials is not None and len(trials):
        keys = trials["key"].unique() if "key" in trials else [None]
        for key in keys:
            scored = rows if key is None else rows[rows["gt_key"] == key]
            for dataset, archs in scored.groupby("dataset", sort=True)["arch"]:
                ceiling = noise_ceiling(trials if key is None else trials[trials["key"] == key], archs.unique(),
                                        n_resamples=n_resamples, confidence=confidence, seed=seed)
                ceiling.insert(0, "gt_key", key if key is not None else ",".join(sorted(scored["gt_key"].unique())))
                ceiling.insert(0, "dataset", dataset)
                ceilings.append(ceiling)
    ceiling_table = pd.concat(ceilings, ignore_index=True) if ceilings else empty
    return Evaluation(pd.DataFrame(table_rows), paired, ceiling_table, point_table, notes, nan_policy, n_resamples,
                      confidence, seed)


def _accuracies(ground_truth: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Each row's accuracy from the GT column its run recorded (NaN where the table lacks the arch)."""
    truth = np.full(len(rows), math.nan)
    for key, positions in rows.reset_index(drop=True).groupby("gt_key").groups.items():
        truth[positions] = ground_truth[key].reindex(rows["arch"].to_numpy()[positions]).to_numpy(float)
    return truth


def _paired_table(points: pd.DataFrame, known_draws: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
                  order: dict[str, int], *, n_resamples: int, confidence: float, seed: int) -> pd.DataFrame:
    """τ_A − τ_B for every ordered pair of variants of a dataset, on their common finite architectures.

    The τ bootstrap of each variant is taken once per dataset on the architectures *every* variant of
    that dataset scored finitely, so all pairs share one set of resamples; where that set is the
    variant's own (no NaN anywhere), its main-table draws are reused (``known_draws``: per (dataset,
    label) the architectures in evaluation order and τ draws; ``order``: each spec's evaluation position)."""
    rows = []
    for dataset, group in points.groupby("dataset", sort=True):
        usable = group[np.isfinite(group["oriented_score"]) & np.isfinite(group["accuracy"])]
        wide = usable.pivot_table(index="arch", columns="label", values="oriented_score", aggfunc="first")
        wide = wide.iloc[np.argsort([order[a] for a in wide.index], kind="stable")]
        labels = list(wide.columns)
        wide = wide.dropna()
        if len(labels) < 2 or len(wide) < 2:
            continue
        truth = usable.drop_duplicates("arch").set_index("arch").loc[wide.index, "accuracy"].to_numpy()
        draws = {}
        for lab in labels:
            arch_set, known = known_draws.get((dataset, lab), (None, None))
            if arch_set is not None and np.array_equal(arch_set, wide.index.to_numpy()):
                draws[lab] = known
            else:
                draws[lab] = bootstrap_distribution(wide[lab].to_numpy(), truth, n_resamples=n_resamples, seed=seed,
                                                    metrics=["kendall_tau"])["kendall_tau"]
        point = {lab: kendall_tau(wide[lab].to_numpy(), truth) for lab in labels}
        for a in labels:
            for b in labels:
                if a == b:
                    continue
                cmp = paired_from_draws("kendall_tau", len(wide), point[a], point[b], draws[a], draws[b], confidence)
                rows.append({"dataset": dataset, "a": a, "b": b, "n": cmp.n, "tau_a": cmp.a, "tau_b": cmp.b,
                             "tau_difference": cmp.difference.value, "tau_difference_low": cmp.difference.low,
                             "tau_difference_high": cmp.difference.high,
                             "probability_a_better": cmp.probability_a_better})
    return pd.DataFrame(rows)
