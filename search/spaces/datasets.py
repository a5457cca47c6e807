"""What every benchmark object tied to one dataset shares: the dataset checked against the space's table of
(classes, input resolution), and the network's ``num_classes`` and ``input_shape`` read from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class OnDataset:
    """Mixin for a frozen dataclass with a ``dataset`` field: :meth:`_check_dataset` (call it from
    ``__post_init__``), :attr:`num_classes`, :attr:`input_shape` (3 channels)."""

    dataset: str
    title: ClassVar[str]
    """How errors name the space (``NB201``, ``NAS-Bench-Macro``...)."""
    datasets: ClassVar[Mapping[str, tuple[int, int]]]
    """Dataset → (classes, input resolution)."""

    def _check_dataset(self) -> None:
        if self.dataset not in self.datasets:
            raise ValueError(f"unknown {self.title} dataset {self.dataset!r}; expected one of "
                             f"{', '.join(self.datasets)}")

    @property
    def num_classes(self) -> int:
        return self.datasets[self.dataset][0]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        resolution = self.datasets[self.dataset][1]
        return (3, resolution, resolution)
