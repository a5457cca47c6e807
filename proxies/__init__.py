"""Zero-shot proxies behind one interface.

``proxies.get(name, **options)`` returns a proxy; ``proxies.names()`` lists them. External proxies
plug in through the entry-point group ``zenbench.proxies`` or a ``package.module:ClassName`` spec.
"""

from proxies.base import (
    Batch,
    NanPolicy,
    NetworkFactory,
    Proxy,
    ProxyError,
    ProxyResult,
    Reference,
    SimpleFactory,
    pre_gap,
)
from proxies.registry import UnknownProxyError, get, get_class, load_class, names, register

__all__ = [
    "Batch", "NanPolicy", "NetworkFactory", "Proxy", "ProxyError", "ProxyResult", "Reference", "SimpleFactory",
    "pre_gap",
    "UnknownProxyError", "get", "get_class", "load_class", "names", "register",
]

# Built-in proxy modules: importing one registers its proxies. A new built-in is one file plus a name here.
_BUILTIN_MODULES: list[str] = ["zen", "grad_norm", "synflow", "naswot", "cost", "tenas", "az_nas",
                              "snip", "grasp", "fisher", "plain", "jacob_cov", "epe_nas", "l2_norm",
                              "zico", "meco", "swap", "ensemble"]

import importlib as _importlib  # noqa: E402

for _module in _BUILTIN_MODULES:
    _importlib.import_module(f"proxies.{_module}")
