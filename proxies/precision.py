"""IEEE float32 on every device: :meth:`proxies.base.Proxy.score` runs each proxy inside :func:`full_precision`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def full_precision() -> Iterator[None]:
    """IEEE float32 on CUDA inside the block: no TF32 in cuDNN convolutions or matmuls (cuDNN convs
    default to TF32, whose 10-bit mantissa would swamp Zen-Score's 1% perturbation), so CPU and CUDA
    runs agree. The previous settings are restored; on the CPU this changes nothing."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9; mixing in the legacy flags errors
        flags = [(torch.backends.cudnn.conv, "fp32_precision", "ieee"),
                 (torch.backends.cuda.matmul, "fp32_precision", "ieee")]
    else:
        flags = [(torch.backends.cudnn, "allow_tf32", False), (torch.backends.cuda.matmul, "allow_tf32", False)]
    saved = [getattr(owner, attr) for owner, attr, _ in flags]
    for owner, attr, value in flags:
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for (owner, attr, _), value in zip(flags, saved, strict=True):
            setattr(owner, attr, value)
