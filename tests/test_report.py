"""Reports render from a small store; the Markdown table reads back to the numbers we compute by hand."""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import benchmarks
from bench.benchmarks.base import GroundTruthTable
from bench.cli import main
from bench.runner import run_benchmark
from bench.store import ResultStore, ScoreRow
from reports.published import PUBLISHED, SOURCES, published_table
from reports.render import (
    correlation_rows,
    markdown_table,
    pareto_front,
    place_labels,
    published_section,
    render_report,
    save_png,
)

PROBES = ["test_runner:WeightProbe", "test_runner:ImageProbe"]  # tiny proxies defined in tests/test_runner.py


@pytest.fixture(scope="module")
def gt(nb201_csv) -> GroundTruthTable:
    return benchmarks.get("nb201").ground_truth(nb201_csv)


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, gt) -> Path:
    path = tmp_path_factory.mktemp("report") / "small.db"
    for dataset, sample in (("cifar10", 40), ("imagenet16", 12)):
        run_benchmark(path, PROBES, dataset=dataset, sample=sample, seed=0, device="cpu", ground_truth=gt,
                      data_source="noise", batch_per_arch=True, progress=False)
    return path


def parse_table(markdown: str, heading: str) -> pd.DataFrame:
    """The first Markdown table after ``heading``, as strings (escaped pipes restored)."""
    lines = markdown[markdown.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in block]
    return pd.DataFrame(cells[2:], columns=cells[0])


def interval(cell: str) -> tuple[float, float, float]:
    value, low, high = re.fullmatch(r"(-?[\d.]+) \[(-?[\d.]+), (-?[\d.]+)\]", cell).groups()
    return float(value), float(low), float(high)


def test_report_renders_and_its_table_reads_back(tmp_path, small_store, gt):
    out = tmp_path / "report"
    result = render_report(small_store, out, ground_truth=gt, n_resamples=60)
    readme = (out / "README.md").read_text()
    for name in ("correlations.csv", "paired.csv", "noise_ceiling.csv", "protocol.csv", "runs.csv",
                 "scatter_cifar10.png", "cost_cifar10.png", "scatter_imagenet16.png", "cost_imagenet16.png"):
        assert (out / name) in result.files and (out / name).stat().st_size > 0, name
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png.name})" in readme  # every figure is shown in the report

    table = parse_table(readme, "## CIFAR-10").set_index("proxy")
    assert set(table.index) == {"test_runner_weights", "test_runner_images"}
    with ResultStore(small_store, create=False) as store:
        rows = store.scores("cifar10")
    # Recompute the weights probe's tau by hand: finite scores only, against the recorded GT key.
    weights = rows[rows["proxy"] == "test_runner_weights"]
    finite = weights[np.isfinite(weights["value"])]
    truth = gt.table.loc[finite["arch"], "cifar10_test"].to_numpy()  # joined on the spec strings
    expected_tau = stats.kendalltau(finite["value"], truth).statistic
    expected_rho = stats.spearmanr(finite["value"], truth).statistic
    tau, low, high = interval(table.loc["test_runner_weights", "τ"])
    assert tau == pytest.approx(expected_tau, abs=5e-4) and low <= tau <= high
    assert interval(table.loc["test_runner_weights", "ρ"])[0] == pytest.approx(expected_rho, abs=5e-4)
    assert int(table.loc["test_runner_weights", "N"]) == len(finite)
    assert int(table.loc["test_runner_weights", "non-finite"]) == len(weights) - len(finite) > 0
    csv = pd.read_csv(out / "correlations.csv").set_index(["dataset", "label"])
    assert not any(column.startswith("top-") for column in table.columns)  # 10% of N <= 40 is under 5 archs
    assert "τ in true top-10%" not in table.columns
    for proxy, row in table.iterrows():
        for column, metric in (("τ", "kendall_tau"), ("ρ", "spearman_rho"), ("r", "pearson_r")):
            assert interval(row[column])[0] == pytest.approx(csv.loc[("cifar10", proxy), metric], abs=5e-4)

    # Header: the exact commands that regenerate the report, from the store's run table.
    with ResultStore(small_store, create=False) as store:
        commands = list(store.runs()["command"])
    block = readme[readme.index("```sh") + 6:readme.index("```", readme.index("```sh") + 6)].splitlines()
    assert block[:-1] == commands
    assert block[-1].startswith(f"zenbench report --benchmark nb201 --store {small_store} --out {out}")
    assert readme.startswith("# Zero-shot proxies on NAS-Bench-201: report")
    assert "Benchmark: NAS-Bench-201 (`nb201`), network: default." in readme
    assert "--resamples 60" in block[-1]

    ceiling = parse_table(readme, "## Noise ceiling")
    assert len(ceiling) == 2 and 0.5 < interval(ceiling["τ"].iloc[0])[0] <= 1.0
    assert set(ceiling["ground truth"]) == {"cifar10_test"} and set(ceiling["dataset"]) == {"CIFAR-10"}
    protocol = parse_table(readme, "## Protocol")
    assert set(protocol["input_kind"]) == {"none", "real"}
    assert any(cell.startswith("a batch per architecture") for cell in protocol["batch"])
    # Each proxy's structured reference travels with the runs (as declared at scoring time).
    assert "test_runner:WeightProbe: reference choices" in readme and "paper: zenbench's test probe" in readme
    assert "network: NB201 variant, C=4, one cell per stage" in readme
    assert "Not computed" not in readme


def test_report_on_an_empty_store_and_without_cifar10(tmp_path, gt):
    empty = tmp_path / "empty.db"
    ResultStore(empty).close()
    render_report(empty, tmp_path / "empty", ground_truth=gt, n_resamples=10)
    assert "holds no scores" in (tmp_path / "empty" / "README.md").read_text()
    only16 = tmp_path / "in16.db"
    run_benchmark(only16, ["test_runner:WeightProbe"], dataset="imagenet16", sample=5, device="cpu",
                  ground_truth=gt, progress=False)
    render_report(only16, tmp_path / "in16", ground_truth=gt, n_resamples=10)
    readme = (tmp_path / "in16" / "README.md").read_text()
    assert "## ImageNet16-120" in readme and "## CIFAR-10\n" not in readme
    assert "Not computed" in readme  # no per-run ground truth for ImageNet16-120


def _plugin_row(arch: str, index: int, **changes) -> ScoreRow:
    """A row scored by a plug-in proxy (a class that is not installed) with a rank-sum rule."""
    values = dict(benchmark="nb201", network="default", arch=arch, dataset="cifar10", proxy="plugin",
                  option_hash="p1", seed=0, value=-float(index), components={"x": float(index), "y": float(index)},
                  seconds=0.1, peak_memory_mb=None, device="cpu", batch_source="none", batch_mode="shared",
                  batch_seed=None, batch_size=None, data_source="noise", input_kind="none",
                  proxy_class="not_installed_pkg.proxies:Plugin", options={}, higher_is_better=True,
                  population_rule={"rule": "rank_sum", "components": ["x", "y"], "precision": None},
                  gt_key="cifar10_test", disconnected=False, nan_policy="keep-flag-exclude", zenbench_version="0",
                  torch_version="0", run_id="r")
    return ScoreRow(**{**values, **changes})


def test_report_applies_a_plug_ins_stored_rule_without_importing_it(tmp_path, gt):
    """The rank sum of x and y orders the archs as their accuracy, their raw values the other way."""
    archs = list(gt.table.sort_values("cifar10_test").index[::500])
    path = tmp_path / "plugin.db"
    with ResultStore(path) as store:
        for i, arch in enumerate(archs):
            store.add(_plugin_row(arch, i))
            store.add(_plugin_row(f"{i:08d}", i, benchmark="macro"))  # another benchmark's scores
    with pytest.raises(ValueError, match="several benchmarks"):
        render_report(path, tmp_path / "both", ground_truth=gt, n_resamples=10)
    result = render_report(path, tmp_path / "nb201", benchmark="nb201", ground_truth=gt, n_resamples=10)
    row = result.evaluation.table.iloc[0]
    assert row["kendall_tau"] == pytest.approx(1.0) and bool(row["combined"]) and row["n"] == len(archs)
    assert set(result.evaluation.points["arch"]) == set(archs)  # the macro rows stay out of the NB201 report
    assert "not_installed_pkg" in (tmp_path / "nb201" / "README.md").read_text()


def test_report_cli(tmp_path, small_store, nb201_csv, capsys):
    code = main(["report", "--store", str(small_store), "--out", str(tmp_path / "cli"), "--ground-truth",
                 str(nb201_csv), "--resamples", "20", "--nan-policy", "worst"])
    assert code == 0 and "README.md" in capsys.readouterr().out
    table = parse_table((tmp_path / "cli" / "README.md").read_text(), "## CIFAR-10").set_index("proxy")
    assert table.loc["test_runner_weights", "non-finite"] != "0"
    assert int(table.loc["test_runner_weights", "N"]) == 40  # ranked last instead of left out


def test_published_values_keep_abs_rho_apart():
    """Abdelfattah's |ρ| lands in the |ρ| column only; VKDNW's signed values in τ and ρ."""
    ours = pd.DataFrame([{"proxy": "synflow", "label": "synflow", "kendall_tau": 0.5, "spearman_rho": 0.7}])
    published = published_table()
    text = "\n".join(published_section(published, ours, "cifar10"))
    table = parse_table(text, "| proxy")
    abdelfattah = table[table["published |ρ|"] == "0.737"]
    assert len(abdelfattah) == 1 and abdelfattah.iloc[0]["published ρ"] == "–"
    vkdnw = table[table["published τ"] == "0.561"]
    assert len(vkdnw) == 1 and vkdnw.iloc[0]["published ρ"] == "0.758"
    assert "reports |ρ|" in text
    assert published_section(published, ours.assign(proxy="no_such"), "cifar10")[0].startswith("_No published")


def test_published_values_are_complete_per_source():
    sources = {v.source for v in PUBLISHED}
    assert sources == set(SOURCES)
    assert {v.benchmark for v in PUBLISHED} == {"nb201"} and published_table("macro").empty
    assert len(published_table("nb201")) == len(published_table()) == len(PUBLISHED)
    for value in PUBLISHED:
        assert -1 <= value.value <= 1 and value.dataset in ("cifar10", "cifar100", "imagenet16")
    metrics = {(v.proxy, v.source, v.metric) for v in PUBLISHED if v.dataset == "cifar10"}
    assert ("synflow", "abdelfattah", "abs_spearman_rho") in metrics
    assert ("synflow", "abdelfattah", "spearman_rho") not in metrics  # the notebook never reports signed ρ


def test_cost_plot_labels_of_a_tight_cluster_do_not_overlap() -> None:
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    x = np.array([0.50, 0.52, 0.55, 0.51, 0.53, 0.05])  # five proxies within 10% of cost and 0.02 of τ
    y = np.array([0.49, 0.48, 0.50, 0.47, 0.485, 0.2])
    ax.scatter(x, y)
    ax.set_xscale("log")
    ax.set_xlim(0.01, 5)
    ax.set_ylim(0, 0.8)
    place_labels(ax, x, y, [f"proxy_{i}" for i in range(len(x))])
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # the text, without its leader line
    plt.close(fig)
    assert len(boxes) == len(x)
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_cost_plot_labels_sit_nearer_their_own_point_than_any_other() -> None:
    """The ImageNet16-120 case: params and flops at one τ, 0.014 s and 0.021 s, l2_norm just above; a label left
    of flops used to sit on params."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    x = np.array([0.0117, 0.0143, 0.0210, 0.0285, 0.116, 0.157, 0.095])
    y = np.array([0.537, 0.520, 0.520, 0.544, 0.537, 0.598, 0.265])
    ax.scatter(x, y)
    ax.set_xscale("log")
    ax.set_xlim(x.min() / 3, x.max() * 6)
    ax.set_ylim(0.24, 0.62)
    place_labels(ax, x, y, [f"p{i}" for i in range(len(x))])
    renderer = fig.canvas.get_renderer()
    centres = ax.transData.transform(np.column_stack([x, y]))
    for text in ax.texts:
        assert text.arrow_patch is None  # room enough here: every label beside its own point
        box, own = text.get_window_extent(renderer), int(text.get_text()[1:])
        gaps = [math.hypot(max(box.x0 - cx, 0, cx - box.x1), max(box.y0 - cy, 0, cy - box.y1)) for cx, cy in centres]
        assert gaps[own] <= min(gaps), (text.get_text(), gaps)
    plt.close(fig)


def test_pareto_front_by_hand():
    cost = np.array([1.0, 2.0, 3.0, 0.5, 10.0])
    tau = np.array([0.5, 0.4, 0.7, 0.2, 0.7])
    assert list(pareto_front(cost, tau)) == [3, 0, 2]  # 1 is beaten by 0; 4 costs more than 2 for the same τ


def test_markdown_table_escapes_pipes():
    text = markdown_table(["a", "b"], [["x|y", 1.5]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1.5 |"]
    row = parse_table(text, "| a").iloc[0]
    assert row["a"] == "x|y" and math.isclose(float(row["b"]), 1.5)


def test_top_k_columns_need_five_architectures() -> None:
    """k% of N under 5: "n too small"; a column no row can fill is left out (hand-made table)."""
    base = {"n_nonfinite": 0, "median_seconds": 0.01, "median_peak_memory_mb": float("nan")}
    metrics = {m: 0.5 for m in ("kendall_tau", "spearman_rho", "pearson_r", "top1_precision", "top5_precision",
                                "top10_precision", "top10_kendall_tau")}
    metrics.update({f"{m}_low": 0.4 for m in list(metrics)} | {f"{m}_high": 0.6 for m in list(metrics)})
    table = pd.DataFrame([{"label": label, "n": n, **base, **metrics} for label, n in (("a", 120), ("b", 60),
                                                                                          ("c", 30))])
    headers, rows = correlation_rows(table)
    assert "top-1%" not in headers  # 1% of 120 < 5
    cells = {row[0]: dict(zip(headers, row, strict=True)) for row in rows}
    assert cells["a"]["top-5%"] == "0.500 [0.400, 0.600]" and cells["b"]["top-5%"] == "n too small"  # 6 and 3
    assert cells["b"]["top-10%"] == "0.500 [0.400, 0.600]" and cells["c"]["top-10%"] == "n too small"
    assert cells["c"]["τ in true top-10%"] == "n too small"


def _seeded_rows(gt: GroundTruthTable, archs: list[str], seeds: tuple[int, ...]) -> list[ScoreRow]:
    """A proxy whose score is the test accuracy plus init noise that grows with the seed."""
    rng = np.random.default_rng(0)
    truth = gt.table.loc[archs, "cifar10_test"].to_numpy()
    rows = []
    for seed in seeds:
        noise = rng.normal(0, 4.0, len(archs))
        for arch, acc, eps in zip(archs, truth, noise, strict=True):
            rows.append(_plugin_row(arch, 0, proxy="noisy", option_hash="n1", seed=seed, value=float(acc + eps),
                                    components={}, population_rule=None, threads=2, load_avg=0.5 + seed,
                                    sample_seed=7))
    return rows


def test_report_init_seeds_gt_key_and_cost_context(tmp_path, gt) -> None:
    archs = list(gt.table.sort_values("cifar10_test").index[1000::400])[:30]
    path = tmp_path / "seeds.db"
    rows = _seeded_rows(gt, archs, (0, 1, 2))
    with ResultStore(path) as store:
        for row in rows:
            store.add(row)
    out = tmp_path / "r"
    result = render_report(path, out, ground_truth=gt, n_resamples=30, gt_key="cifar10_valid",
                           scatter_axes="value")
    readme = (out / "README.md").read_text()
    values = pd.DataFrame({"arch": [r.arch for r in rows], "seed": [r.seed for r in rows],
                           "value": [r.value for r in rows]})
    valid = gt.table.loc[archs, "cifar10_valid"]
    single = [stats.kendalltau(g.set_index("arch").loc[archs, "value"], valid).statistic
              for _, g in values.groupby("seed")]
    averaged = values.groupby("arch")["value"].mean().loc[archs]
    expected_mean = stats.kendalltau(averaged, valid).statistic
    init = parse_table(readme, "### Init seeds").iloc[0]
    assert init["proxy"] == "noisy" and init["init seeds"] == "0,1,2"
    low, high = (float(x) for x in init["τ, single init"].split(" – "))
    assert low == pytest.approx(min(single), abs=5e-4) and high == pytest.approx(max(single), abs=5e-4)
    assert interval(init["τ, init-averaged"])[0] == pytest.approx(expected_mean, abs=5e-4)
    spread = values.groupby("arch")["value"].std().median() / averaged.std()
    assert float(init["init spread"]) == pytest.approx(spread, abs=5e-3)
    assert (out / "init_seeds.csv") in result.files
    # --gt: every table says which key, and the correlations are against it
    section = readme[readme.index("## CIFAR-10"):readme.index("## Noise ceiling")]
    assert section.count("Ground truth: `cifar10_valid`") >= 3 and "cifar10_test" not in section
    table = parse_table(readme, "## CIFAR-10").set_index("proxy")
    assert interval(table.loc["noisy seed 0", "τ"])[0] == pytest.approx(single[0], abs=5e-4)
    assert table.loc["noisy seed 1", "cost measured with"] == "2 threads; cpu; load 1.50"
    assert "--gt cifar10_valid --scatter-axes value" in readme
    with pytest.raises(ValueError, match="--gt 'cifar100_valid': names none of the store's datasets"):
        render_report(path, out, ground_truth=gt, n_resamples=10, gt_key="cifar100_valid")
    with pytest.raises(ValueError, match="--gt 'nosuch': not a ground-truth key"):
        render_report(path, out, ground_truth=gt, n_resamples=10, gt_key="nosuch")
    with pytest.raises(ValueError, match="--scatter-axes"):
        render_report(path, out, ground_truth=gt, n_resamples=10, scatter_axes="log")


def test_rendered_text_cites_no_unpublished_document(tmp_path, gt) -> None:
    ours = pd.DataFrame([{"proxy": p, "label": p, "kendall_tau": 0.5, "spearman_rho": 0.7}
                         for p in ("params", "synflow", "zen", "naswot", "grad_norm", "flops", "tenas")])
    for dataset in ("cifar10", "cifar100", "imagenet16"):
        text = "\n".join(published_section(published_table(), ours, dataset))
        assert "REFERENCE" not in text


def test_report_marks_a_cut_off_run_as_incomplete(tmp_path, small_store, gt) -> None:
    """A column holding fewer architectures than its runs' ``--sample`` is flagged; how depends on dedupe."""
    complete = render_report(small_store, tmp_path / "complete", ground_truth=gt, n_resamples=10)
    assert "Incomplete" not in complete.readme.read_text()
    for dedupe in (False, True):
        path = tmp_path / f"cut_{dedupe}.db"
        run_benchmark(path, PROBES, dataset="cifar10", sample=30, seed=0, device="cpu", ground_truth=gt,
                      data_source="noise", batch_per_arch=True, progress=False, dedupe=dedupe)
        with ResultStore(path, create=False) as store:
            keep = list(store.scores("cifar10").query("proxy == 'test_runner_images'")["arch"])[:18]
        with sqlite3.connect(path) as db:  # as if the run were cut off: the images probe lacks 12 architectures
            db.execute(f"DELETE FROM scores WHERE proxy = 'test_runner_images' AND arch NOT IN "
                       f"({','.join('?' * len(keep))})", keep)
        readme = render_report(path, tmp_path / f"report_{dedupe}", ground_truth=gt, n_resamples=10).readme
        flagged = [line for line in readme.read_text().splitlines() if line.startswith("**Incomplete:**")]
        assert len(flagged) == 1 and "test_runner_images 18 of 30 architectures" in flagged[0]
        assert "test_runner_weights" not in flagged[0]
        assert ("not a uniform sample" in flagged[0]) == dedupe


def test_a_figure_is_saved_as_a_palette_png_that_looks_the_same(tmp_path) -> None:
    import matplotlib.pyplot as plt
    from PIL import Image

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.scatter(rng.random(3000), rng.random(3000), s=3, alpha=0.4)  # translucent overlaps: many shades
    fig.savefig(tmp_path / "full.png", dpi=110)
    save_png(fig, tmp_path / "palette.png")
    full, palette = Image.open(tmp_path / "full.png"), Image.open(tmp_path / "palette.png")
    assert palette.mode == "P" and palette.size == full.size and not plt.fignum_exists(fig.number)
    difference = np.abs(np.asarray(full.convert("RGB"), int) - np.asarray(palette.convert("RGB"), int))
    assert difference.max() <= 32 and difference.mean() < 0.5
    assert (tmp_path / "palette.png").stat().st_size < (tmp_path / "full.png").stat().st_size
