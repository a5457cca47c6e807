"""``zenbench gt info`` / ``gt export``: in-process through bench.cli.main, and once as a real process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _gt_official import write_miniature

from bench.cli import main
from bench.ground_truth import OFFICIAL_FILES, TRIALS_NAME, GroundTruth


def _zenbench_command() -> list[str]:
    script = Path(sys.executable).with_name("zenbench")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "bench.cli"]


def _error_line(capsys: pytest.CaptureFixture, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("zenbench: error: "), err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_help_lists_the_gt_command(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "gt" in capsys.readouterr().out


def test_info_prints_the_summary(nb201_csv: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["gt", "info", "--ground-truth", str(nb201_csv)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(nb201_csv)
    disconnected = int((table["cifar10_test"] == 10.0).sum())
    for needle in ["15,625 architectures", str(nb201_csv.absolute()), "6,466", f"{disconnected:,}", "36,986 trials"]:
        assert needle in out, (needle, out)
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip().startswith(("cifar", "imagenet"))}
    assert "94.37" in rows["cifar10"] and "91.61" in rows["cifar10"]
    assert "73.51" in rows["cifar100"] and "47.31" in rows["imagenet16"]


def test_info_follows_zenbench_data(nb201_csv: Path, capsys: pytest.CaptureFixture,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZENBENCH_DATA", str(nb201_csv.parent.parent))
    assert main(["gt", "info"]) == 0
    assert f"source: {(nb201_csv.parent.parent / 'nb201' / 'nb201.csv').absolute()}" in capsys.readouterr().out


def test_info_errors_are_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "absent.csv"
    assert main(["gt", "info", "--ground-truth", str(missing)]) == 2
    _error_line(capsys, str(missing))
    corrupt = tmp_path / "corrupt.csv"
    corrupt.write_text("index,arch_str\n0,|nor_conv_3x3~0|\n")
    assert main(["gt", "info", "--ground-truth", str(corrupt)]) == 2
    _error_line(capsys, str(corrupt))
    monkeypatch.delenv("ZENBENCH_DATA", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["gt", "info"]) == 2
    _error_line(capsys, OFFICIAL_FILES[0], str(tmp_path))


def test_export_then_info(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    mini = write_miniature(tmp_path / OFFICIAL_FILES[1])
    target = tmp_path / "out" / "table.csv"
    target.parent.mkdir()
    assert main(["gt", "export", "--from", str(mini.path), "--to", str(target), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"wrote 3 evaluated of 15,625 architectures to {target}" in out and "6 CIFAR-10 trials" in out
    assert (target.parent / TRIALS_NAME).is_file()
    gt = GroundTruth.load(target)
    assert gt.accuracy(6, "cifar10", "test") == pytest.approx(mini.expected[6]["cifar10_test"], abs=1e-6)
    assert main(["gt", "info", "--ground-truth", str(target)]) == 0
    assert "(3 evaluated)" in capsys.readouterr().out
    assert main(["gt", "export", "--from", str(tmp_path / "absent.pth"), "--to", str(target)]) == 2
    _error_line(capsys, "absent.pth")


def test_console_script_runs_in_a_real_process(nb201_csv: Path, tmp_path: Path) -> None:
    ok = subprocess.run([*_zenbench_command(), "gt", "info", "--ground-truth", str(nb201_csv)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "15,625 architectures" in ok.stdout and "94.37" in ok.stdout
    missing = tmp_path / "absent.csv"
    bad = subprocess.run([*_zenbench_command(), "gt", "info", "--ground-truth", str(missing)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and str(missing) in bad.stderr


def test_benchmark_option_and_its_space_alias(nb201_csv: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["gt", "info", "--ground-truth", str(nb201_csv)]) == 0
    default = capsys.readouterr().out
    for flag in ("--benchmark", "--space"):
        assert main(["gt", "info", flag, "nb201", "--ground-truth", str(nb201_csv)]) == 0
        assert capsys.readouterr().out == default  # what `gt info` printed before there were other benchmarks


@pytest.mark.parametrize("argv", [
    ["gt", "info"], ["score", "--arch", "x", "--proxies", "params"], ["bench", "--proxies", "params", "--sample", "2",
                                                                       "--store", "{tmp}/s.db"],
    ["report", "--store", "{tmp}/s.db", "--out", "{tmp}/r"], ["search", "--proxy", "params"],
])
def test_every_command_names_the_benchmarks_on_a_wrong_one(argv: list[str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    if argv[0] == "report":
        from bench.store import ResultStore

        ResultStore(tmp_path / "s.db").close()
    assert main([a.format(tmp=tmp_path) for a in argv] + ["--benchmark", "nb999"]) == 2
    _error_line(capsys, "unknown benchmark 'nb999'", "macro, nb101, nb201")
