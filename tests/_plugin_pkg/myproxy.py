"""An external proxy: NASLib's ``l2_norm`` (Σ over conv and linear layers of ‖W‖₂ at init).

Deliberately not ``@register``-ed: zenbench must find it through the entry-point group
``zenbench.proxies`` or a ``tests._plugin_pkg.myproxy:MyProxy`` spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from proxies import Batch, NetworkFactory, Proxy
from proxies.mechanics import weight_layers


@dataclass
class MyProxy(Proxy):
    name: ClassVar[str] = "plugin_l2_norm"
    nan_policy: ClassVar[str] = "always finite"

    scale: float = 1.0

    def compute(self, factory: NetworkFactory, batch: Batch | None, device: torch.device) -> float:
        return self.scale * sum(float(m.weight.detach().norm()) for m in weight_layers(factory()))
