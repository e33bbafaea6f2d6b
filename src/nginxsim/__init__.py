"""nginxsim: what will nginx do with this request?

    cfg = nginxsim.load("nginx.conf")
    d = cfg.route("128.32.1.5", "http://shop.example.com/cart?id=3")
    d.status, d.upstream, d.location, d.variables
    print(d.explain())
"""

from __future__ import annotations

from .config import Config, load
from .decision import Decision, Headers, Place, Upstream
from .diagnostics import Finding, lint
from .errors import ConfigError, RequestError, UndefinedBehavior

__all__ = [
    "Config", "ConfigError", "Decision", "Finding", "Headers", "Place", "RequestError", "UndefinedBehavior", "Upstream",
    "lint", "load",
]
__version__ = "0.1.0"
