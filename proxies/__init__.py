"""Zero-shot proxies behind one interface.

``proxies.get(name, **options)`` returns a proxy; ``proxies.names()`` lists them. External proxies
plug in through the entry-point group ``zenbench.proxies`` or a ``package.module:ClassName`` spec.
"""

from proxies.base import Batch, NetworkFactory, Proxy, ProxyError, ProxyResult, SimpleFactory, pre_gap
from proxies.registry import UnknownProxyError, get, get_class, load_class, names, register

__all__ = [
    "Batch", "NetworkFactory", "Proxy", "ProxyError", "ProxyResult", "SimpleFactory", "pre_gap",
    "UnknownProxyError", "get", "get_class", "load_class", "names", "register",
]
