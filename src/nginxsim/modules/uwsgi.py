"""`ngx_http_uwsgi_module`: `uwsgi_pass` and the parameters the backend receives.

The pass shares the proxy module's machinery (`proxy.PassHandler`); what is specific is the
parameter list (`uwsgi_param`, inherited all-or-nothing) and `uwsgi_pass_request_headers`, which
passes client headers as `HTTP_*` parameters.
"""

from __future__ import annotations

from collections.abc import Iterable

from .proxy import params_module

MODULE = params_module("uwsgi", "ngx_http_uwsgi_module")


def wsgi_environ(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The WSGI environ a Python app (Django's `request.META`) gets from uWSGI for these params,
    as uWSGI's python plugin builds it (`uwsgi_request_subhandler_wsgi`): every param in order,
    a later one replacing an earlier one of the same name, bytes read as Latin-1; then
    `wsgi.url_scheme` from UWSGI_SCHEME, else from HTTPS ("on" or starting with "1": https),
    else http. The non-text entries (`wsgi.input`, `wsgi.errors`...) are left out."""
    environ: dict[str, str] = {}
    scheme = https = ""
    for name, value in params:
        key, text = _latin1(name), _latin1(value)
        environ[key] = text
        if key == "UWSGI_SCHEME":
            scheme = text
        elif key == "HTTPS":
            https = text
    if scheme:
        environ["wsgi.url_scheme"] = scheme
    elif https:
        environ["wsgi.url_scheme"] = "https" if https[:2].lower() == "on" or https[0] == "1" else "http"
    else:
        environ["wsgi.url_scheme"] = "http"
    return environ


def _latin1(text: str) -> str:
    """The bytes nginx sent (params are kept as UTF-8 text with surrogate escapes), as Latin-1."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")
