"""Reading and checking nginx configurations: `read` builds the directive tree, `validate` runs
nginx's generic directive checks on it, `check` does both in the order `nginx -t` does."""

from nginxsim.conf.directive import Directive
from nginxsim.conf.reader import ConfTree, ReadError, read
from nginxsim.conf.stock import STOCK_SPECS
from nginxsim.conf.validate import Specs, check, validate

__all__ = ["STOCK_SPECS", "ConfTree", "Directive", "ReadError", "Specs", "check", "read", "validate"]
