"""The one place that knows which names pymodbus uses in the installed version (3.8 to 3.13).

- The exception a datastore raises for "no such unit" (the server then stays silent):
  `NoSuchSlaveException` up to 3.9, `NoSuchIdException` from 3.10.
- The server keyword that turns that silence on: `ignore_missing_slaves` up to 3.9,
  `ignore_missing_devices` from 3.10.

The datastore calling conventions that changed (a per-unit context up to 3.11, unit-addressed
`async_getValues` from 3.12) are both implemented by `server._SiteServerContext`, which
needs no version check.
"""

from __future__ import annotations

import inspect
from typing import Any

from pymodbus import exceptions
from pymodbus.server import ModbusTcpServer

NoSuchUnitError: type[Exception] = next(
    getattr(exceptions, name)
    for name in ("NoSuchIdException", "NoSuchSlaveException")
    if hasattr(exceptions, name)
)


def silent_on_missing_units() -> dict[str, Any]:
    """Keyword arguments for ModbusTcpServer that leave requests to unknown units unanswered."""
    parameters = inspect.signature(ModbusTcpServer.__init__).parameters
    for name in ("ignore_missing_devices", "ignore_missing_slaves"):
        if name in parameters:
            return {name: True}
    raise RuntimeError("this pymodbus version cannot ignore requests to missing units")
