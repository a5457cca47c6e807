"""Helpers the executor tests hand to worker processes (a spawned worker imports them by module name)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from proxies import Batch, NetworkFactory, Proxy, register


def square(task: int) -> int:
    return task * task


def make_square(device: str) -> object:
    return square


def dies_on_three(task: int) -> int:
    """Kills its own process on task 3 unless the marker file exists (written just before dying, so the retry
    succeeds) ; ``ZENBENCH_TEST_ALWAYS_DIE`` set: dies on task 3 every time."""
    marker = Path(os.environ["ZENBENCH_TEST_MARKER"])
    if task == 3 and (os.environ.get("ZENBENCH_TEST_ALWAYS_DIE") or not marker.exists()):
        marker.touch()
        os._exit(9)
    return task * task


def make_dies_on_three(device: str) -> object:
    return dies_on_three


@register
@dataclass
class KillingProbe(Proxy):
    """Summed |weights| of a small NB201 variant; its process dies (``os._exit``) the first time it scores the
    architecture named by ``ZENBENCH_TEST_KILL_ARCH`` (a marker file next to ``ZENBENCH_TEST_MARKER`` says it
    did), as a worker killed by the operating system would."""

    name: ClassVar[str] = "test_executor_killing"

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        marker = Path(os.environ.get("ZENBENCH_TEST_MARKER", "/nonexistent/marker"))
        if factory.arch.to_string() == os.environ.get("ZENBENCH_TEST_KILL_ARCH") and not marker.exists():
            marker.touch()
            os._exit(9)
        net = factory(channels=4, cells_per_stage=1)
        return sum(float(p.detach().abs().sum()) for p in net.parameters())
