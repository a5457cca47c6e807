"""Property-based robustness: generated and mutated inputs reach the parsers, which either accept them or
raise their one-line error type, never a traceback of another kind and never a hang (hypothesis deadline).

Parsers: NB201 architecture strings, ZenNet structure strings (2,500 each), NAS-Bench-Macro and NB101 spec
strings, and the command-line values ``--proxy-option``, ``--shard``, ``--sample``, ``--init-seeds``,
``--threads``, ``--gt`` (ground-truth key): 11,400 generated inputs in all (2 x 2,500 + 1,000 + 800
+ 5 x 900 + 100).
"""

from __future__ import annotations

import functools
import string

import pytest
import torch
from conftest import require_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import benchmarks
from bench.benchmarks.base import ArchSpecError, BenchmarkError
from bench.cli_bench import parse_sample
from bench.cli_options import OptionError, apply_threads, parse_init_seeds, parse_proxy_options
from bench.runner import RunConfigError, Shard
from search import zennets
from search.spaces.nb201 import EDGES, OPS, ArchStringError, Nb201Arch
from search.spaces.zennet import Structure, StructureError

FUZZ = settings(max_examples=2500, deadline=500, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
OPTIONS = settings(FUZZ, max_examples=900)
SPEC_EXAMPLES = {"macro": 1000, "nb101": 800}

_ALPHABET = string.ascii_letters + string.digits + "|~+_(),.- \t\n:;=/\\'\"" + "\u00e9\u2013\x00"


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[str]) -> str:
    """A valid input with up to 4 random edits (insert, delete, replace, swap of two slices)."""
    text = draw(seeds)
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap", "truncate"]))
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(_ALPHABET))
        if kind == "insert":
            text = text[:at] + char + text[at:]
        elif kind == "delete" and at < len(text):
            text = text[:at] + text[at + 1:]
        elif kind == "replace" and at < len(text):
            text = text[:at] + char + text[at + 1:]
        elif kind == "swap":
            other = draw(st.integers(0, len(text)))
            lo, hi = sorted((at, other))
            text = text[hi:] + text[lo:hi] + text[:lo]
        elif kind == "truncate":
            text = text[:at]
    return text


def _nb201_strings() -> st.SearchStrategy[str]:
    return st.lists(st.integers(0, len(OPS) - 1), min_size=len(EDGES), max_size=len(EDGES)).map(
        lambda ops: Nb201Arch.from_indices(ops).to_string())


def _zennet_strings() -> st.SearchStrategy[str]:
    return st.sampled_from([zennets.get_structure(name) for name in zennets.list_names()]).map(str)


def _assert_one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message.strip(), repr(message)


@FUZZ
@given(st.one_of(mutated(_nb201_strings()), st.text(_ALPHABET, max_size=120)))
def test_nb201_parser_only_raises_its_error(text: str) -> None:
    try:
        arch = Nb201Arch.from_string(text)
    except ArchStringError as exc:
        _assert_one_line(exc)
    else:
        assert Nb201Arch.from_string(arch.to_string()) == arch


@FUZZ
@given(st.one_of(mutated(_zennet_strings()), st.text(_ALPHABET, max_size=200)))
def test_zennet_parser_only_raises_its_error(text: str) -> None:
    try:
        structure = Structure.parse(text)
    except StructureError as exc:
        _assert_one_line(exc)
    else:
        assert Structure.parse(str(structure)) == structure


@pytest.mark.parametrize("text", ["", " ", "|", "||", "|+|", "(", ")", "SuperResK3K3(", "\x00"])
def test_edge_cases_are_clean_errors(text: str) -> None:
    with pytest.raises(ArchStringError):
        Nb201Arch.from_string(text)
    with pytest.raises(StructureError):
        Structure.parse(text)


def _macro_specs() -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from("012"), min_size=8, max_size=8).map("".join)


@st.composite
def _nb101_specs(draw: st.DrawFn) -> str:
    """Syntactically valid NB101 cells (upper-triangular rows, ops); many are not valid graphs."""
    n = draw(st.integers(2, 7))
    rows = ["".join("0" * (i + 1) + "".join(draw(st.sampled_from("01")) for _ in range(n - i - 1)))
            for i in range(n)]
    middle = [draw(st.sampled_from(["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"])) for _ in range(n - 2)]
    return ".".join(rows) + "|" + ",".join(["input", *middle, "output"])


@pytest.mark.parametrize("name, seeds", [("macro", _macro_specs()), ("nb101", _nb101_specs())])
def test_benchmark_spec_parsers_only_raise_their_error(name: str, seeds: st.SearchStrategy[str]) -> None:
    benchmark = benchmarks.get(name)

    @settings(FUZZ, max_examples=SPEC_EXAMPLES[name])
    @given(st.one_of(mutated(seeds), st.text(_ALPHABET, max_size=80)))
    def check(text: str) -> None:
        try:
            arch = benchmark.parse(text)
        except ArchSpecError as exc:
            _assert_one_line(exc)
        else:
            assert benchmark.format(benchmark.parse(benchmark.format(arch))) == benchmark.format(arch)

    check()


_OPTION_SEEDS = st.sampled_from(["zen.bn_stat=batch", "synflow.bn=True", "naswot.batch_size=16",
                                 "my.pkg:Proxy.repeat=(1, 2)", "tenas.parts='ntk'", "zen.mixup_gamma=1e-2"])


@OPTIONS
@given(st.lists(st.one_of(mutated(_OPTION_SEEDS), st.text(_ALPHABET, max_size=40)), min_size=1, max_size=3))
def test_proxy_option_parser_only_raises_its_error(words: list[str]) -> None:
    try:
        parsed = parse_proxy_options(words)
    except OptionError as exc:
        _assert_one_line(exc)
    else:
        assert all(key.isidentifier() for sets in parsed.values() for options in sets for key in options)
        assert sum(len(sets[0]) for sets in parsed.values()) <= len(words)


@OPTIONS
@given(st.one_of(mutated(st.sampled_from(["0/1", "3/8", "12/16"])), st.text(_ALPHABET, max_size=12)))
def test_shard_parser_only_raises_its_error(text: str) -> None:
    try:
        shard = Shard.parse(text)
    except RunConfigError as exc:
        _assert_one_line(exc)
    else:
        assert 0 <= shard.index < shard.count and Shard.parse(str(shard)) == shard


@OPTIONS
@given(st.one_of(mutated(st.sampled_from(["100", "all", "15625"])), st.text(_ALPHABET, max_size=12)))
def test_sample_parser_only_raises_its_error(text: str) -> None:
    try:
        value = parse_sample(text)
    except RunConfigError as exc:
        _assert_one_line(exc)
    else:
        assert value is None or value >= 1


@OPTIONS
@given(st.one_of(mutated(st.sampled_from(["0,1,2", "7", "0, 10,20"])), st.text(_ALPHABET, max_size=16)))
def test_init_seed_parser_only_raises_its_error(text: str) -> None:
    try:
        seeds = parse_init_seeds(text)
    except OptionError as exc:
        _assert_one_line(exc)
    else:
        assert seeds and len(set(seeds)) == len(seeds) and all(s >= 0 for s in seeds)


@settings(FUZZ, max_examples=100)
@given(st.one_of(st.integers(-10**20, 8), st.none(), st.booleans(), st.floats(), st.text(max_size=4)))
def test_thread_count_is_checked(value: object) -> None:
    before = torch.get_num_threads()
    try:
        in_effect = apply_threads(value)  # type: ignore[arg-type]
    except OptionError as exc:
        _assert_one_line(exc)
        assert torch.get_num_threads() == before
    else:
        assert in_effect == torch.get_num_threads() and (value is None or in_effect == value)
    finally:
        torch.set_num_threads(before)


@functools.cache
def _nb201_table():
    return benchmarks.get("nb201").ground_truth(require_data("nb201/nb201.csv"))


@OPTIONS
@given(st.one_of(mutated(st.sampled_from(["cifar10_test", "cifar100_valid", "hp12_imagenet16_valid"])),
                 st.text(_ALPHABET, max_size=24)))
def test_ground_truth_key_only_raises_its_error(text: str) -> None:
    table = _nb201_table()
    try:
        key = table.key("cifar10", text)
    except BenchmarkError as exc:
        _assert_one_line(exc)
    else:
        assert key == text and key in table.table.columns
