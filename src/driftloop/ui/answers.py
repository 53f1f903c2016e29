"""How the dashboard's JSON routes answer: the body or the error as ``{"error": ...}``, and
the documented error answers of each route (shared by the dashboard's and the workbench's).

>>> _answer(lambda: {"ok": True}).body
b'{"ok": true}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse, Response

from driftloop.errors import CheckFailed, DriftloopError, NotFoundError, UsageError
from driftloop.http import ERROR_SCHEMA, Refused, error_response

_MAX_BODY = 16_384


_WHY = {400: "The body is not a JSON object.", 401: "No API key, or an unknown or revoked one.",
        403: "The key's role does not allow this (read needs read or admin; actions admin).",
        404: "No such model, version, window or action.",
        409: "Refused (a gate failed, or no rollout is under way).",
        413: "The body is over the limit.", 422: "Bad input (e.g. no reason given)."}


def _documented(*statuses: int, png: bool = False) -> dict[int | str, Any]:
    """The ``responses=`` of a dashboard route: its success body and its error answers."""
    media = "image/png" if png else "application/json"
    schema = {"type": "string", "format": "binary"} if png else {"type": "object"}
    out: dict[int | str, Any] = {200: {"content": {media: {"schema": schema}}}}
    for status in sorted({401, 403, *statuses}):  # every route may need a key
        out[status] = {"description": _WHY[status],
                       "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return out


def _error(status: int, code: str, message: str) -> JSONResponse:
    return error_response(Refused(status, code, message))


def _answer(work: Callable[[], Any]) -> Response:
    """Run ``work`` and answer its JSON, or the error it raised as a 4xx."""
    try:
        body = work()
    except Refused as exc:
        return _error(exc.status, exc.code, str(exc))
    except NotFoundError as exc:
        return _error(404, "not_found", str(exc))
    except CheckFailed as exc:
        return _error(409, "refused", str(exc))
    except UsageError as exc:
        return _error(422, "invalid", str(exc))
    except DriftloopError as exc:
        return _error(409, "conflict", str(exc))
    if isinstance(body, Response):
        return body
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")


def _body(raw: bytes) -> dict[str, Any]:
    if len(raw) > _MAX_BODY:
        raise Refused(413, "too_large", f"the body is over {_MAX_BODY} bytes.")
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise Refused(400, "bad_json", "the body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused(400, "bad_shape", "the body must be a JSON object.")
    return body


__all__ = ["_MAX_BODY", "_answer", "_body", "_documented", "_error"]
