"""The error answer of every driftloop HTTP route, and the exception that produces it.

Every 4xx/5xx body is ``{"error": {"code": ..., "message": ..., "fields": [...]}}``: ``code``
is a stable machine word, ``message`` says what was wrong and what to do, ``fields`` names the
request fields concerned (may be empty).

What went wrong inside (a store error, an exception while loading a version) is never sent
to a client: :func:`logged_error` writes the detail to the server's log under a fresh error id
and gives the client the id, which the operator finds in the log.

Examples
--------
>>> response = error_response(Refused(413, "too_large", "the body is over 10 bytes."))
>>> response.status_code, bytes(response.body)
(413, b'{"error":{"code":"too_large","message":"the body is over 10 bytes.","fields":[]}}')
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

from fastapi.responses import JSONResponse

from driftloop.errors import DriftloopError

ERROR_SCHEMA: dict[str, Any] = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message", "fields"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"},
        "fields": {"type": "array", "items": {"type": "string"}}}}}}


class Refused(DriftloopError):
    """A request refused before (or instead of) its work: answer ``status`` with ``code``.

    ``headers`` go with the answer (``WWW-Authenticate``, ``Retry-After``); ``fields`` name
    the request fields concerned.
    """

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status, self.code = status, code
        self.headers = headers or {}
        self.fields = list(fields)


def error_body(code: str, message: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"code": code, "message": message, "fields": list(fields)}}


def error_response(refused: Refused) -> JSONResponse:
    """The answer to a :class:`Refused`."""
    return JSONResponse(error_body(refused.code, str(refused), refused.fields),
                        status_code=refused.status, headers=refused.headers or None)


def logged_error(logger: logging.Logger, what: str, exc: BaseException) -> str:
    """Log ``what`` with the detail of ``exc`` under a fresh error id; return the text a
    client may see: ``what`` and the id, not the detail.

    >>> text = logged_error(logging.getLogger("doc"), "cannot read the store",
    ...                     RuntimeError("password authentication failed for user 'dl'"))
    >>> text.startswith("cannot read the store (error "), "password" in text
    (True, False)
    """
    error_id = secrets.token_hex(6)
    logger.warning("%s (error %s): %s: %s", what, error_id, type(exc).__name__, exc)
    return f"{what} (error {error_id}; the detail is in the server's log)"


__all__ = ["ERROR_SCHEMA", "Refused", "error_body", "error_response", "logged_error"]
