"""`ngx_http_uwsgi_module`: `uwsgi_pass` and the parameters the backend receives.

The pass shares the proxy module's machinery (`proxy.PassHandler`); what is specific is the
parameter list (`uwsgi_param`, inherited all-or-nothing) and `uwsgi_pass_request_headers`, which
passes client headers as `HTTP_*` parameters.
"""

from __future__ import annotations

from .proxy import params_module

MODULE = params_module("uwsgi", "ngx_http_uwsgi_module")
