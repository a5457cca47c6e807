"""Property-based robustness: generated and mutated inputs reach the parsers, which either accept them or
raise their one-line error type, never a traceback of another kind and never a hang (hypothesis deadline).
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from search import zennets
from search.spaces.nb201 import EDGES, OPS, ArchStringError, Nb201Arch
from search.spaces.zennet import Structure, StructureError

FUZZ = settings(max_examples=2500, deadline=500, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

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
