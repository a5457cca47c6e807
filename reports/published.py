"""Published proxy correlations per benchmark, copied from the project's REFERENCE (NAS-Bench-201: sections
A.1, A.3, A.3c). Every value names its benchmark (``benchmark``, the registry name); a report shows only
the values of the benchmark it covers.

Each value keeps its source, metric and protocol so a report can print it beside ours and a reader can
see where protocols differ. Metrics: ``kendall_tau`` (τ-b), ``spearman_rho`` (signed ρ),
``abs_spearman_rho`` (|ρ|: Abdelfattah's notebook takes the absolute value, REFERENCE A.0),
``spearman_rho_vs_val`` (ρ against NASLib's own validation accuracy) and ``pairwise_accuracy`` (share of
correctly ordered pairs, not a correlation). ``proxy`` is the zenbench
name where zenbench has the proxy, else the source's name. Values tagged ``[C]`` were computed by the
REFERENCE's author from published data, not printed in a paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

DATASETS = ("cifar10", "cifar100", "imagenet16")


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    archs: str
    protocol: str
    ground_truth: str


@dataclass(frozen=True)
class PublishedValue:
    proxy: str
    dataset: str
    metric: str
    value: float
    source: str
    """Key into :data:`SOURCES`."""
    note: str = ""
    benchmark: str = "nb201"


SOURCES: dict[str, Source] = {s.key: s for s in (
    Source("abdelfattah", "Abdelfattah et al. ICLR'21, zero-cost-nas notebooks/nasbench201_correlations.ipynb, "
           "printed 'Table 1' output [V-repo]", "15,625",
           "one real batch of 64 per arch (a fresh batch for each), PyTorch default init, seed 42; synflow: "
           "all-ones input, batch 1; reports |ρ|",
           "C10: cifar10-valid test-accuracy (ori-test of the 25k-trained net); C100, IN16: x-test"),
    Source("vkdnw", "VKDNW (CVPR'25) Table 1 [V-img]", "not stated",
           "each proxy re-run with its authors' code (AZ-NAS harness), mean of 5 runs (std < 0.02)",
           "not stated (unverified)"),
    Source("vkdnw-gradsign", "VKDNW (CVPR'25) Table 1, marked † = copied from the GradSign paper [V-img]",
           "original paper", "GradSign paper's protocol", "not stated"),
    Source("aznas", "AZ-NAS NB201/tss_general.ipynb output [V-repo]", "15,625", "batch 64, seed 1",
           "C10 ori-test (NATS API)"),
    Source("aznas-issue8", "AZ-NAS issue #8, a user's re-run; disputed by the authors [V-issue]", "?",
           "authors' code", "not stated"),
    Source("white-blog", "White et al., ICLR 2022 blog 'A Deeper Look at Zero-Cost Proxies', Table 1 and Fig. 9 "
           "text [V-repo]", "1,000 random", "Archai implementation", "not stated"),
    Source("deeplite", "Deeplite/deeplite-torch-zoo PR #323 [V-issue]", "500 random", "their implementation",
           "not stated"),
    Source("reference-params", "analytic #params against the NB201 ground truth, computed from the NAS-Bench-201 table "
           "(not a paper)", "15,625",
           "analytic parameter count (conv-only FLOPs rank identically)", "test keys (C10 ori-test of the "
           "50k-trained net, C100 / IN16 x-test)"),
    Source("reference-1000", "an independent re-implementation of the NB201 network and proxies, run as a cross-check "
           "(unpublished)", "1,000 random (seed 0)",
           "Zen: Gaussian init, train-mode BN, Gaussian input, γ = 0.01, B = 32, repeat 1, f = lastact output; "
           "synflow: BN removed, |θ|, float64, all-ones input, log of the score; torch CPU",
           "C10 ori-test, seed mean"),
    Source("freerea", "FreeREA (WACV'23) cached scores, NiccoloCavagnero/FreeREA cached_metrics/nats; "
           "correlations computed from the published scores", "15,625",
           "each score the mean of 3 random inits on one fixed real batch of 64 (seed 3)",
           "NATS get_more_info(hp=200)['test-accuracy']: C10 ori-test (50k-trained), C100 / IN16 x-test"),
    Source("nbsz-early", "NAS-Bench-Suite-Zero early JSON (automl/NASLib naslib/data/zc_nasbench201.json "
           "@1bdbd96); correlations computed from the published scores", "724 random (725 on C100)",
           "NASLib implementation, CPU, batch 64, NaN/inf → −1e8",
           "NB201 test (nb201_merged.csv); 'ρ vs NASLib val': against NASLib's val_accuracy"),
)}


def _rows(proxy: str, source: str, metric: str, values: tuple[float | None, ...],
          note: str = "") -> list[PublishedValue]:
    """Values in :data:`DATASETS` order (a shorter tuple covers the first datasets; None: not reported)."""
    return [PublishedValue(proxy, ds, metric, v, source, note)
            for ds, v in zip(DATASETS, values, strict=False) if v is not None]


def _kt_spr(proxy: str, source: str, pairs: tuple[tuple[float, float], ...], note: str = "") -> list[PublishedValue]:
    return (_rows(proxy, source, "kendall_tau", tuple(p[0] for p in pairs), note)
            + _rows(proxy, source, "spearman_rho", tuple(p[1] for p in pairs), note))


_VALUES: list[PublishedValue] = [
    # A.1 Abdelfattah notebook, |ρ| over all 15,625 archs.
    *_rows("grad_norm", "abdelfattah", "abs_spearman_rho", (0.594, 0.637, 0.578)),
    *_rows("snip", "abdelfattah", "abs_spearman_rho", (0.596, 0.637, 0.578)),
    *_rows("grasp", "abdelfattah", "abs_spearman_rho", (0.514, 0.547, 0.549)),
    *_rows("fisher", "abdelfattah", "abs_spearman_rho", (0.360, 0.385, 0.327)),
    *_rows("synflow", "abdelfattah", "abs_spearman_rho", (0.737, 0.763, 0.751)),
    *_rows("jacob_cov", "abdelfattah", "abs_spearman_rho", (0.731, 0.704, 0.701)),
    *_rows("vote(synflow, jacob_cov, snip)", "abdelfattah", "pairwise_accuracy", (0.817, 0.832, 0.813),
           "pairwise-order accuracy, not a correlation"),
    # A.1 VKDNW Table 1, KT / SPR.
    *_kt_spr("flops", "vkdnw", ((0.623, 0.799), (0.586, 0.763), (0.545, 0.718))),
    *_kt_spr("grad_norm", "vkdnw", ((0.328, 0.438), (0.341, 0.451), (0.310, 0.418))),
    *_kt_spr("grasp", "vkdnw", ((0.352, 0.505), (0.349, 0.498), (0.359, 0.502))),
    *_kt_spr("snip", "vkdnw", ((0.431, 0.591), (0.440, 0.597), (0.389, 0.521))),
    *_kt_spr("synflow", "vkdnw", ((0.561, 0.758), (0.553, 0.750), (0.531, 0.719))),
    *_kt_spr("jacob_cov", "vkdnw", ((0.616, 0.800), (0.639, 0.820), (0.602, 0.779))),
    *_kt_spr("naswot", "vkdnw", ((0.571, 0.762), (0.607, 0.799), (0.605, 0.794))),
    *_kt_spr("zen", "vkdnw", ((0.102, 0.103), (0.079, 0.072), (0.091, 0.109))),
    *_rows("gradsign", "vkdnw-gradsign", "spearman_rho", (0.765, 0.793, 0.783)),
    *_kt_spr("zico", "vkdnw", ((0.607, 0.802), (0.614, 0.809), (0.587, 0.779))),
    *_kt_spr("tenas", "vkdnw", ((0.536, 0.722), (0.537, 0.723), (0.523, 0.709)), "rank-sum of NTK-cond and #LR"),
    *_kt_spr("az_nas", "vkdnw", ((0.712, 0.892), (0.696, 0.880), (0.673, 0.859))),
    *_kt_spr("trainable_layers", "vkdnw", ((0.626, 0.767), (0.646, 0.787), (0.623, 0.764))),
    *_kt_spr("vkdnw_agg", "vkdnw", ((0.750, 0.919), (0.753, 0.919), (0.743, 0.906))),
    # A.1 AZ-NAS notebook and issue #8.
    *_kt_spr("az_nas", "aznas", ((0.7409, 0.9127),)),
    *_rows("az_nas", "aznas-issue8", "spearman_rho", (0.75, 0.73, 0.68)),
    # A.1 White et al. blog: C100 Table 1, C10 text on Fig. 9.
    *[PublishedValue(p, "cifar100", "spearman_rho", v, "white-blog") for p, v in (
        ("fisher", 0.6104), ("grad_norm", 0.6779), ("grasp", 0.6319), ("jacob_cov", 0.7194), ("snip", 0.6789),
        ("synflow", 0.7938), ("flops", 0.7142), ("params", 0.7346))],
    PublishedValue("jacob_cov", "cifar10", "spearman_rho", 0.69, "white-blog", "at init, text on Fig. 9"),
    PublishedValue("grasp", "cifar10", "spearman_rho", 0.63, "white-blog", "at init, text on Fig. 9"),
    # A.1 Deeplite PR #323, C100 Kendall τ.
    *[PublishedValue(p, "cifar100", "kendall_tau", v, "deeplite", note) for p, v, note in (
        ("fisher", 0.354, ""), ("grad_norm", 0.301, ""), ("grasp", 0.307, ""), ("jacob_cov", 0.561, ""),
        ("l2_norm", 0.499, ""), ("plain", -0.190, ""), ("snip", 0.412, ""), ("synflow", 0.548, ""),
        ("zico", 0.538, ""), ("params", 0.531, "nparams"), ("flops", 0.567, "macs"))],
    # A.1 / A.3 [C] #params over all archs, test keys.
    *_kt_spr("params", "reference-params", ((0.5778, 0.7527), (0.5532, 0.7278), (0.5201, 0.6915))),
    # A.3 [C] 1,000 random archs, C10.
    *_kt_spr("zen", "reference-1000", ((0.310, 0.402),), "ZenNAS-faithful BN term (running_var), all BNs tracked"),
    *_kt_spr("zen", "reference-1000", ((0.058, 0.040),), "cell-op BNs untracked (Samsung/NASLib-style model)"),
    *_kt_spr("zen", "reference-1000", ((0.368, 0.487),), "σ from each BN input's batch variance"),
    *_kt_spr("zen", "reference-1000", ((0.483, 0.664),), "log Δ only, no BN term"),
    *_kt_spr("synflow", "reference-1000", ((0.584, 0.783),)),
    *_kt_spr("params", "reference-1000", ((0.592, 0.773),)),
    # A.3c FreeREA cache (ρ, τ_b).
    *_kt_spr("naswot", "freerea", ((0.5981, 0.7849), (0.6145, 0.8004), (0.5873, 0.7711)),
             "201 NaN/inf archs dropped"),
    *_kt_spr("naswot", "freerea", ((0.6081, 0.7931), (0.6241, 0.8080), (0.5975, 0.7798)), "NaN → −1e8"),
    *_kt_spr("synflow", "freerea", ((0.5712, 0.7690), (0.5640, 0.7610), (0.5556, 0.7472)), "raw SynFlow"),
    *_kt_spr("freerea_log_synflow", "freerea", ((0.6301, 0.8260), (0.5973, 0.7923), (0.5851, 0.7773)),
             "FreeREA's log-SynFlow, a different proxy"),
    *_rows("nregions", "freerea", "kendall_tau", (0.5394, 0.6159, None), "#linear regions (TE-NAS-style)"),
    *_rows("nregions", "freerea", "spearman_rho", (0.7253, 0.8023, None), "#linear regions (TE-NAS-style)"),
]

# A.3c NAS-Bench-Suite-Zero early JSON: (ρ vs NASLib val_accuracy, ρ vs NB201 test, τ_b vs test) per dataset.
_NBSZ: dict[str, tuple[tuple[float, float, float], ...]] = {
    "naswot": ((0.787, 0.800, 0.611), (0.814, 0.816, 0.625), (0.795, 0.797, 0.610)),
    "synflow": ((0.736, 0.776, 0.575), (0.762, 0.767, 0.568), (0.759, 0.761, 0.567)),
    "jacob_cov": ((0.766, 0.732, 0.557), (0.725, 0.729, 0.559), (0.727, 0.730, 0.554)),
    "params": ((0.738, 0.773, 0.598), (0.744, 0.743, 0.567), (0.715, 0.718, 0.546)),
    "flops": ((0.711, 0.751, 0.558), (0.722, 0.721, 0.529), (0.694, 0.696, 0.508)),
    "l2_norm": ((0.725, 0.739, 0.542), (0.748, 0.748, 0.547), (0.738, 0.741, 0.543)),
    "snip": ((0.608, 0.651, 0.481), (0.658, 0.656, 0.486), (0.612, 0.613, 0.456)),
    "grad_norm": ((0.607, 0.648, 0.476), (0.648, 0.646, 0.476), (0.615, 0.616, 0.453)),
    "grasp": ((0.538, 0.570, 0.404), (0.552, 0.549, 0.388), (0.514, 0.517, 0.375)),
    "fisher": ((0.509, 0.551, 0.404), (0.555, 0.551, 0.407), (0.524, 0.525, 0.390)),
    "epe_nas": ((0.666, 0.640, 0.461), (0.420, 0.423, 0.290), (0.103, 0.102, 0.069)),
    "plain": ((-0.258, -0.252, -0.170), (-0.268, -0.267, -0.178), (-0.256, -0.259, -0.175)),
}
for _proxy, _triples in _NBSZ.items():
    _VALUES += _rows(_proxy, "nbsz-early", "spearman_rho", tuple(t[1] for t in _triples))
    _VALUES += _rows(_proxy, "nbsz-early", "kendall_tau", tuple(t[2] for t in _triples))
    _VALUES += _rows(_proxy, "nbsz-early", "spearman_rho_vs_val", tuple(t[0] for t in _triples))

PUBLISHED: tuple[PublishedValue, ...] = tuple(_VALUES)


def published_table(benchmark: str | None = None) -> pd.DataFrame:
    """Every published value (of ``benchmark`` only, when given) with its source's citation, arch count,
    protocol and ground truth."""
    frame = pd.DataFrame([vars(v) for v in PUBLISHED])
    if benchmark is not None:
        frame = frame[frame["benchmark"] == benchmark]
    sources = pd.DataFrame([vars(s) for s in SOURCES.values()]).rename(columns={"key": "source"})
    return frame.merge(sources, on="source", how="left").reset_index(drop=True)
