"""What `nginx -t` says of a config, parsed, next to what nginxsim says: shared by the oracle
tests that compare config errors and warnings."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import pytest

import nginxsim
from nginxsim.oracle import Nginx

LOGGED = re.compile(r"\[(warn|emerg)\] \d+#\d+: (.*?)(?: in (\S+):(\d+))?$", re.M)


def nginx_t(conf: str, files: Mapping[str, str] | None = None) -> tuple[bool, list[tuple[str, str, int | None]]]:
    """Whether `nginx -t` accepts the config, and its log lines as (level, message, line)."""
    ok, stderr = Nginx.test_config(text=conf, files=files)
    return ok, [(m[1], m[2], int(m[4]) if m[4] else None) for m in LOGGED.finditer(stderr)]


def nginx_warnings(conf: str, files: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """The located warnings of a config nginx accepts."""
    ok, lines = nginx_t(conf, files)
    assert ok, lines
    return [(message, line) for level, message, line in lines if level == "warn" and line is not None]


def nginx_emerg(conf: str, files: Mapping[str, str] | None = None) -> tuple[str, int | None]:
    """The error of a config nginx refuses."""
    ok, lines = nginx_t(conf, files)
    assert not ok, lines
    return next((message, line) for level, message, line in lines if level == "emerg")


def nginxsim_warnings(cfg: nginxsim.Config) -> list[tuple[str, int]]:
    """`Config.warnings` ("message in file:line") as (message, line)."""
    return [(w.rsplit(" in ", 1)[0], int(w.rsplit(":", 1)[1])) for w in cfg.warnings]


def assert_same_verdict(conf: str, files: Mapping[str, str] | None = None,
                        normalize: Callable[[str], str] = lambda message: message) -> None:
    """nginxsim accepts what `nginx -t` accepts, with the same warnings, and refuses what it
    refuses with the same first error and line (`normalize` both messages first)."""
    ok, lines = nginx_t(conf, files)
    if ok:
        expected = [(message, line) for level, message, line in lines if level == "warn" and line is not None]
        assert nginxsim_warnings(nginxsim.load(text=conf, files=files)) == expected
        return
    with pytest.raises(nginxsim.ConfigError) as e:
        nginxsim.load(text=conf, files=files)
    message, line = next((message, line) for level, message, line in lines if level == "emerg")
    assert (normalize(e.value.message), e.value.line) == (normalize(message), line)
