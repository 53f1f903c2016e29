"""The HTTP pieces the model server and the dashboard share.

- :mod:`~driftloop.http.errors`: the one error body (``{"error": {"code", "message",
  "fields"}}``), its OpenAPI schema and :class:`Refused`, the exception a route raises to
  answer with it;
- :mod:`~driftloop.http.keys`: the one parser of a presented API key (``Authorization: Bearer``
  or ``X-API-Key``), key hashing, and :class:`KeyChecker`, the cached key lookup;
- :mod:`~driftloop.http.exposure`: the warning printed when a server binds beyond loopback.

Both :mod:`driftloop.serve` and :mod:`driftloop.ui` build on this package and neither imports
the other.

Examples
--------
>>> from driftloop.http import ERROR_SCHEMA, error_body
>>> error_body("not_found", "no model 'x'")["error"]["code"], ERROR_SCHEMA["required"]
('not_found', ['error'])
"""

from driftloop.http.errors import ERROR_SCHEMA, Refused, error_body, error_response
from driftloop.http.exposure import LOOPBACK, exposure_warning, is_loopback
from driftloop.http.keys import KeyChecker, hash_key, presented_key

__all__ = [
    "ERROR_SCHEMA",
    "LOOPBACK",
    "KeyChecker",
    "Refused",
    "error_body",
    "error_response",
    "exposure_warning",
    "hash_key",
    "is_loopback",
    "presented_key",
]
