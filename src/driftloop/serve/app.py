"""The ASGI app: predict, infer, feedback, health, metrics and admin reload over HTTP.

Endpoints (DESIGN.md): ``POST /v1/models/{name}/predict``, ``POST /v2/models/{name}/infer``
(KServe V2), ``POST /v1/feedback``, ``GET /v2/health/live``, ``GET /v2/health/ready``,
``GET /metrics``, ``POST /v1/admin/reload``, OpenAPI at ``/docs``.

Request bodies are read as bytes (limited to ``max_body_bytes``), parsed once with ``json``
and validated column by column (:mod:`driftloop.serve.validation`), so a request costs the
same whether it carries 1 or 1000 instances. Errors are ``{"error": {"code", "message",
"fields"}}``: 400 malformed, 401/403 auth, 404 unknown model, 413 too large, 422 against the
schema (or a feedback label that is none of the model's classes, see
:mod:`driftloop.serve.feedback`), 503 overloaded (with ``Retry-After``), not ready, or
deactivated (code ``deactivated``: the alias was removed; promote a version to restore it).
Bad input never gives a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from driftloop.config import OutputPolicy, ServeSettings
from driftloop.errors import DriftloopError, NotFoundError
from driftloop.features.online import OnlineStore, RedisOnlineStore, online_store
from driftloop.features.spec import FeatureUse
from driftloop.http import ERROR_SCHEMA, KeyChecker, Refused, error_response
from driftloop.http.errors import logged_error
from driftloop.http.exposure import is_loopback
from driftloop.http.keys import PresentedKey, key_source
from driftloop.registry import Registry
from driftloop.serve.batcher import QueueFull, rows_len
from driftloop.serve.entity_features import FeatureLookup, Filled
from driftloop.serve.feedback import Owner, RecentRequests, coerce_feedback
from driftloop.serve.metrics import ServeMetrics
from driftloop.serve.output_policy import shown
from driftloop.serve.prediction_log import PredictionLog, row_ids
from driftloop.serve.quota import QueryBudget
from driftloop.serve.rollout import RolloutDriver, RolloutLog
from driftloop.serve.swap import ModelSlot, ServedModel
from driftloop.serve.validation import MAX_ID_CHARS, RequestInvalid, subject_ids
from driftloop.store.secrets import pii_key

logger = logging.getLogger("driftloop.serve")
_INSTANCE = {"type": "object", "additionalProperties": {
    "anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}, {"type": "null"}]}}
Mount = Callable[[FastAPI, Registry], object]
_SUBJECT_ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID_CHARS},
                        {"type": "integer"}, {"type": "null"}]}
_PREDICT_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["instances"],
    "properties": {"instances": {"type": "array", "items": _INSTANCE},
                   "ids": {"description": "the data subject of each instance (one per "
                                          "instance, null: none); logged as a keyed hash, "
                                          "never fed to the model",
                           "anyOf": [{"type": "array", "items": _SUBJECT_ID},
                                     {"type": "null"}]}}}}}}
_TENSOR = {"type": "object", "required": ["name", "data"], "properties": {
    "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
    "datatype": {"type": "string"}, "data": {"type": "array"}}}
_INFER_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["inputs"],
    "properties": {"id": {"type": "string"}, "inputs": {"type": "array", "items": _TENSOR}}}}}}
_FEEDBACK_ITEM = {"type": "object", "required": ["request_id", "label"], "properties": {
    "request_id": {"type": "string", "maxLength": 64},
    "label": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "boolean"}]}}}
_FEEDBACK_BODY = {"required": True, "content": {"application/json": {"schema": {
    "anyOf": [_FEEDBACK_ITEM, {"type": "array", "items": _FEEDBACK_ITEM}]}}}}

# documented answers (tests/serve/test_openapi_schemathesis.py checks responses against them)
# (every error body is driftloop.http.ERROR_SCHEMA, which the dashboard's API documents too)
_WHY = {400: "The body is not valid JSON.", 401: "No API key, or an unknown or revoked one.",
        403: "The key's role may not call this endpoint.", 404: "No such model is served here.",
        413: "The body, or the number of instances, is over the limit.",
        422: "The body does not match the model's schema (the fields at fault are named), or "
             "an entity key has no value within its TTL in the online feature store (code "
             "feature_missing or feature_stale; the message names the entity and the view).",
        429: "The API key is over its rate limit or row budget (serve.rate_limit, "
             "serve.row_budget); retry after Retry-After seconds.",
        503: "Overloaded (Retry-After), still loading, deactivated, or the store is down."}
_FEEDBACK_WHY = {
    404: "A request id that no prediction returned (code unknown_request; the message names "
         "it). Nothing of the request is recorded.",
    422: "An item is not {request_id, label}, or a label is not one of the classes of the model "
         "that answered its request (code unknown_label; the message names the allowed "
         "classes) or, for a regression model, not a finite number. Nothing of the request is "
         "recorded.",
    503: "The store is down: nothing was recorded; retry after Retry-After seconds."}


def _answers(ok: int, schema: dict[str, Any], *errors: int,
             why: dict[int, str] | None = None) -> dict[int | str, Any]:
    """The ``responses`` of a route: its success body and the error answers it can give
    (``why``: descriptions of this route's own that replace the common ones)."""
    out: dict[int | str, Any] = {ok: {"content": {"application/json": {"schema": schema}}}}
    for status in errors:
        out[status] = {"description": (why or {}).get(status, _WHY[status]),
                       "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return out


_PREDICTED = {"type": "object", "required": ["model", "version", "predictions", "request_id"],
              "properties": {
                  "model": {"type": "string"}, "version": {"type": "integer"},
                  "predictions": {"type": "array"},
                  "probabilities": {"type": "array",
                                    "items": {"type": "array", "items": {"type": "number"}}},
                  "top_k": {"type": "array", "items": {"type": "array", "items": {
                      "type": "object", "properties": {"class": {},
                                                       "probability": {"type": "number"}}}}},
                  "request_id": {"type": "string"},
                  "request_ids": {"type": "array", "items": {"type": "string"}}}}
_INFERRED = {"type": "object", "required": ["model_name", "model_version", "id", "outputs"],
             "properties": {
                 "model_name": {"type": "string"}, "model_version": {"type": "string"},
                 "id": {"type": "string"}, "outputs": {"type": "array", "items": _TENSOR}}}
_RECORDED = {"type": "object", "required": ["recorded", "conflicts"], "properties": {
    "recorded": {"type": "integer"},
    "conflicts": {"type": "array", "items": {"type": "string"},
                  "description": "request ids that now have two different labels: both kept, "
                                 "held out of monitoring and retraining"}}}
_READY = {"type": "object", "required": ["ready", "models"], "properties": {
    "ready": {"type": "boolean"},
    "models": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
    "errors": {"type": "object", "additionalProperties": {"type": "string"}},
    "runtimes": {"type": "object", "additionalProperties": {"type": "string"},
                 "description": "the runtime each served model runs on (torch, int8, onnx, "
                                "onnx_int8)"},
    "notes": {"type": "object", "additionalProperties": {
        "type": "array", "items": {"type": "string"}}}}}
_RELOADED = {"type": "object", "required": ["models", "replicas", "replica"], "properties": {
    "replicas": {"type": "string"}, "replica": {"type": "string"},
    "models": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "version": {"type": ["integer", "null"]}, "swapped": {"type": "boolean"},
        "generation": {"type": ["integer", "null"]}, "error": {"type": ["string", "null"]}}}}}}
_PREDICT_ANSWERS = _answers(200, _PREDICTED, 400, 401, 403, 404, 413, 422, 429, 503)


def replica_name(instance: str = "") -> str:
    """The name of this serving process in the prediction log: ``instance`` when set, else
    ``host:pid`` (so every replica and uvicorn worker has its own), at most 64 characters.

    Examples
    --------
    >>> replica_name("eu-1")
    'eu-1'
    >>> import os
    >>> replica_name().endswith(f":{os.getpid()}")
    True
    """
    return (instance or f"{socket.gethostname()[:40]}:{os.getpid()}")[:64]


def key_actor(secret: str | None) -> str:
    """The audit actor of a request's API key: ``api_key:<prefix>`` (the prefix is not secret:
    ``driftloop keys list`` shows it), never the key itself.

    Examples
    --------
    >>> key_actor("dl_0a1b2c3d_s3cr3t"), key_actor("not-a-driftloop-key"), key_actor(None)
    ('api_key:0a1b2c3d', 'api_key:unknown', 'api_key:unknown')
    """
    parts = (secret or "").split("_", 2)
    ok = len(parts) == 3 and parts[0] == "dl" and re.fullmatch(r"[0-9a-f]{1,16}", parts[1])
    return f"api_key:{parts[1] if ok else 'unknown'}"


async def _on_batcher(served: ServedModel, rows: Any) -> Any:
    return await served.batcher(rows)


def _owner(model: str, version: int, task: str, classes: Sequence[Any]) -> Owner:
    return Owner(model, version, None if task == "regression" else list(classes))


def _error(status: int, code: str, message: str, fields: Sequence[str] = (),
           headers: dict[str, str] | None = None) -> JSONResponse:
    return error_response(Refused(status, code, message, headers, fields))


def _endpoint(path: str) -> str:
    """The route template of a path, for metric labels (bounded cardinality)."""
    if path.startswith("/v1/models/") and path.endswith("/predict"):
        return "/v1/models/{name}/predict"
    if path.startswith("/v2/models/") and path.endswith("/infer"):
        return "/v2/models/{name}/infer"
    known = ("/v1/feedback", "/v2/health/live", "/v2/health/ready", "/metrics",
             "/v1/admin/reload", "/docs", "/openapi.json")
    return path if path in known else "other"


class _MetricsMiddleware:
    """Count requests and time them by endpoint and status (pure ASGI, no body buffering)."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint, code = _endpoint(scope["path"]), str(status[0])
            self.metrics.requests.labels(endpoint, code).inc()
            self.metrics.latency.labels(endpoint, code).observe(time.perf_counter() - started)


def create_app(
    registry: Registry,
    models: Sequence[str],
    settings: ServeSettings | None = None,
    *,
    versions: dict[str, int] | None = None,
    metrics: ServeMetrics | None = None,
    mount: Sequence[Mount] = (),
    load_first: bool = False,
) -> FastAPI:
    """Build the app serving ``models`` (each at its alias's version, or ``versions[name]``).

    ``mount``: callables ``(app, registry)`` that add more routes to the same app — the CLI's
    ``driftloop serve`` adds the dashboard (:func:`driftloop.ui.mount_dashboard`) this way, so
    serving never imports the dashboard.

    The models load and warm in the background after start-up; ``/v2/health/ready`` answers
    200 once every model is served. ``load_first``: start-up waits for the first load (or
    its failure) instead, so the server accepts no connection before it can answer — for
    uvicorn workers sharing one port, where a worker still loading would answer 503 to the
    requests the kernel hands it while another worker already reports ready.
    """
    cfg = settings or registry.settings.serve
    metrics = metrics or ServeMetrics()
    slots = {name: ModelSlot(name, registry, cfg, metrics, version=(versions or {}).get(name))
             for name in models}
    # open without keys only on loopback, and only until the first key is created
    keys = KeyChecker(registry.store, cache_s=cfg.key_cache_s,
                      open_without_keys=is_loopback(cfg.host) or cfg.insecure,
                      predict_may_feedback=cfg.feedback_from_predict_keys)
    # the requests answered lately, for feedback that comes before the log's write; the log
    # holds at most log_buffer unwritten rows, so older requests are in the store (or dropped)
    recent = RecentRequests(cfg.log_buffer)
    bundles: dict[tuple[str, int], Owner] = {}  # classes of versions no longer served here
    replica = replica_name(cfg.instance)
    log = (PredictionLog(registry.store, metrics=metrics, max_rows=cfg.log_buffer,
                         flush_ms=cfg.log_flush_ms, replica=replica,
                         key=pii_key(cfg.pii_hash_key, registry.artifacts))
           if cfg.log_predictions else None)

    budget = QueryBudget(cfg.rate_limit, cfg.row_budget)
    audited_over: set[tuple[str, str, int]] = set()  # (key, limit, window): audited once

    # a model served at its alias follows that alias's rollouts (a pinned version does not)
    rollout_log = RolloutLog(registry.store, metrics=metrics, max_rows=cfg.log_buffer,
                             flush_ms=cfg.log_flush_ms, replica=replica)
    drivers = {name: RolloutDriver(slot, registry, cfg, rollout_log, metrics, replica)
               for name, slot in slots.items() if slot.pinned is None}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if log is not None:
            log.start()
        rollout_log.start()
        tasks = [asyncio.create_task(slot.start()) for slot in slots.values()]
        if load_first:
            await asyncio.gather(*tasks, return_exceptions=True)
        pollers = [asyncio.create_task(slot.poll()) for slot in slots.values()]
        pollers += [asyncio.create_task(driver.run()) for driver in drivers.values()]
        try:
            yield
        finally:
            for task in pollers + tasks:
                task.cancel()
            await asyncio.gather(*pollers, *tasks, return_exceptions=True)
            for driver in drivers.values():
                await driver.close()
            for slot in slots.values():
                await slot.close()
            if log is not None:
                await asyncio.to_thread(log.stop)
            await asyncio.to_thread(rollout_log.stop)
            for store in online:
                if isinstance(store, RedisOnlineStore):
                    store.close()

    app = FastAPI(title="driftloop model server", version="1", lifespan=lifespan,
                  description="Predictions from registered driftloop models.")
    app.state.slots, app.state.metrics, app.state.log = slots, metrics, log
    app.state.rollouts = drivers
    app.state.keys = keys  # the dashboard mounted beside it checks keys the same way
    app.state.replica = replica
    metrics.replica.labels(replica).set(1)

    @app.exception_handler(RequestInvalid)
    async def _invalid(request: Request, exc: RequestInvalid) -> JSONResponse:
        return _error(exc.status, exc.code, str(exc), exc.fields)

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(QueueFull)
    async def _full(request: Request, exc: QueueFull) -> JSONResponse:
        model = request.path_params.get("name", "")
        metrics.rejected.labels(model).inc()
        return _error(503, "overloaded", str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    async def require(secret: str | None, role: str) -> None:
        allowed = keys.decide(secret, role)  # from the cache: no I/O on the event loop
        if allowed is None:
            allowed = await asyncio.to_thread(keys.allows, secret, role)
        if allowed:
            return
        if secret is None:
            hint = ("admin endpoints need an admin key" if role == "admin"
                    else "API keys exist, so predictions need one")
            raise Refused(401, "unauthorized", f"{hint}: send it as 'Authorization: Bearer "
                           "KEY' (create one with `driftloop keys create NAME --role "
                           f"{role}`).", {"WWW-Authenticate": "Bearer"})
        if await asyncio.to_thread(keys.role_of, secret) is None:  # cached by allows
            raise Refused(401, "unauthorized", "the API key is unknown or revoked.",
                           {"WWW-Authenticate": "Bearer"})
        raise Refused(403, "forbidden", f"this API key's role may not call an endpoint that "
                       f"needs role '{role}'.")

    async def spend(secret: str | None, name: str, instances: Any) -> None:
        """Count the request against its key's rate limit and row budget; 429 past them (the
        first refusal of a key in a window is audited)."""
        if not budget.active:
            return
        who = key_source(secret)
        over = budget.check(who, len(instances) if isinstance(instances, list) else 1)
        if over is None:
            return
        metrics.rate_limited.labels(name, over.kind).inc()
        mark = (who, over.limit, over.window_reset)
        if mark not in audited_over:
            now = time.time()  # windows already over need no mark: the set stays small
            audited_over.difference_update([m for m in audited_over if m[2] < now])
            audited_over.add(mark)
            await asyncio.to_thread(registry.audit.append, f"api_key:{who}",
                                    "query_budget_exceeded", f"model:{name}",
                                    {"kind": over.kind, "limit": over.limit})
        what = "requests" if over.kind == "requests" else "instances predicted"
        setting = "serve.rate_limit" if over.kind == "requests" else "serve.row_budget"
        raise Refused(429, "rate_limited", f"this API key is over its limit of {over.limit} "
                      f"{what} ({setting}); retry after {over.retry_after_s} s.",
                      {"Retry-After": str(over.retry_after_s)})

    def policy_of(name: str) -> OutputPolicy:
        return cfg.output_by_model.get(name, cfg.output)

    async def read_json(request: Request) -> Any:
        length = request.headers.get("content-length")
        limit = cfg.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise Refused(413, "too_large", f"the body is over the limit of {limit} bytes; "
                           "send fewer instances per request.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, "too_large", f"the body is over the limit of {limit} bytes; "
                               "send fewer instances per request.")
        try:
            return json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise Refused(400, "bad_json", f"the body is not valid JSON: {exc}.") from None

    def slot_of(name: str) -> ModelSlot:
        slot = slots.get(name)
        if slot is None:
            raise Refused(404, "unknown_model", f"no model '{name}' is served here. Served: "
                           f"{', '.join(slots) or 'none'}.")
        return slot

    def served_of(slot: ModelSlot) -> ServedModel:
        served = slot.current
        if served is None and slot.deactivated:  # taken out of service: retrying will not help
            raise Refused(503, "deactivated", slot.error or f"{slot.name} was deactivated.")
        if served is None:
            raise Refused(503, "not_ready", slot.error or f"{slot.name} is still loading.",
                           {"Retry-After": str(cfg.retry_after_s)})
        return served

    def field(body: Any, key: str) -> Any:
        if not isinstance(body, dict) or key not in body:
            raise RequestInvalid(f"the body must be a JSON object with '{key}'.",
                                 code="bad_shape", fields=[key])
        return body[key]

    async def run(served: ServedModel, columns: dict[str, list[Any]] | None, instances: Any,
                  rid: str, key: str | None = None) -> tuple[dict[str, list[Any]], int,
                                                             ServedModel]:
        """The answer of one request, how many rows it had, and the version that answered
        (during a rollout the candidate may; ``key``: the subject id its canary bucket is
        drawn from, the request id when None)."""
        # no await between reading the version and enqueueing on its batcher: a swap cannot
        # come in between, so the request finishes on the version it started with
        rows: Any = columns if served.validator is not None else (
            served.arrays_from_instances(instances))
        driver = drivers.get(served.name)
        try:
            if driver is not None and driver.rollout is not None and columns is not None:
                outputs, used = await driver.answer(served, rows, key or rid, rid,
                                                    rows_len(rows), _on_batcher)
            else:
                outputs, used = await served.batcher(rows), served
        except QueueFull:
            raise
        except DriftloopError as exc:  # the preprocessor refused a value validation let by
            raise RequestInvalid(str(exc), code="invalid_input") from None
        return used.answer(outputs), len(outputs), used

    lookups: dict[tuple[str, int], FeatureLookup] = {}
    online: list[OnlineStore] = []  # made for the first version trained with feature views

    def lookup_of(served: ServedModel) -> FeatureLookup:
        """The feature lookup of a served version (built once per version; reads the key)."""
        key = (served.name, served.version)
        if key not in lookups:
            if not online:
                online.append(online_store(registry.settings, registry.store))
            if len(lookups) >= 64:  # one per version served here: a bound for safety only
                lookups.clear()
            assert served.validator is not None  # only table models have feature views
            lookups[key] = FeatureLookup(
                [FeatureUse.from_json(u) for u in served.loaded.bundle.feature_views or []],
                served.validator.names, online[0],
                key=pii_key(cfg.pii_hash_key, registry.artifacts),
                missing=registry.settings.features.missing)
        return lookups[key]

    async def with_features(served: ServedModel, instances: Any) -> Filled:
        """The instances with the features they leave out looked up by entity key (422 for
        a missing or stale entity under ``features.missing: refuse``); 503 when the online
        store cannot be read."""
        def fill() -> Filled:
            lookup = lookup_of(served)
            return lookup.fill(instances) if lookup.needed(instances) else Filled(
                instances, None, {})
        try:
            return await asyncio.to_thread(fill)
        except RequestInvalid:
            raise
        except Exception as exc:  # noqa: BLE001 - online store down: tell the client to retry
            what = logged_error(logger, "the online feature store could not be read", exc)
            raise Refused(503, "store_unavailable", f"{what}; send the features themselves, "
                          "or retry later.", {"Retry-After": str(cfg.retry_after_s)}) from None

    def log_rows(served: ServedModel, rid: str, columns: dict[str, list[Any]] | None,
                 answer: dict[str, list[Any]], n: int, client_ref: str | None = None,
                 subjects: list[str | None] | None = None) -> list[str]:
        ids = row_ids(rid, n)
        recent.add(rid, n, served.name, served.version)
        if log is not None and columns is not None:
            log.submit(served.name, served.version, ids, columns, answer, served.pii,
                       client_ref=client_ref, subjects=subjects)
        return ids

    @app.post("/v1/models/{name}/predict", openapi_extra={"requestBody": _PREDICT_BODY},
              tags=["predict"], responses=_PREDICT_ANSWERS)
    async def predict(name: str, request: Request, secret: PresentedKey) -> Response:
        """Predict for ``{"instances": [{feature: value, ...}, ...], "ids": [...]}`` (``ids``
        optional: each instance's subject id, logged keyed-hashed, never fed to the model)."""
        await require(secret, "predict")
        slot = slot_of(name)
        body = await read_json(request)
        instances = field(body, "instances")
        await spend(secret, name, instances)
        served = served_of(slot)
        subjects = subject_ids(body.get("ids"), instances)
        views: dict[str, int] = {}
        if served.loaded.bundle.feature_views and served.validator is not None:
            filled = await with_features(served, instances)
            instances, views = filled.instances, filled.views
            subjects = subjects if subjects is not None else filled.subjects
        columns = (served.validator.columns_from_instances(instances)
                   if served.validator is not None else None)
        rid = uuid.uuid4().hex
        key = next((s for s in subjects or () if s is not None), None)
        answer, n, used = await run(served, columns, instances, rid, key)
        # the log keeps which view versions the looked-up values came from, beside the output
        logged = {**answer, "feature_views": [views] * n} if views else answer
        ids = log_rows(used, rid, columns, logged, n, subjects=subjects)
        out: dict[str, Any] = {"model": name, "version": used.version,
                               **shown(answer, used.loaded.bundle.classes, policy_of(name)),
                               "request_id": rid}
        if len(ids) > 1:
            out["request_ids"] = ids
        return Response(json.dumps(out), media_type="application/json")

    @app.post("/v2/models/{name}/infer", openapi_extra={"requestBody": _INFER_BODY},
              tags=["predict"], responses=_answers(200, _INFERRED, 400, 401, 403, 404, 413,
                                                   422, 429, 503))
    async def infer(name: str, request: Request, secret: PresentedKey) -> Response:
        """Predict in the KServe/Triton V2 JSON shape: one input tensor per feature."""
        await require(secret, "predict")
        slot = slot_of(name)
        body = await read_json(request)
        inputs = field(body, "inputs")
        served = served_of(slot)
        if served.validator is None:
            raise RequestInvalid("this model takes arrays; use /v1/models/{name}/predict.",
                                 code="unsupported", fields=["inputs"])
        columns = served.validator.columns_from_v2(inputs)
        await spend(secret, name, next(iter(columns.values()), []))
        # the request id is the server's, so two clients can never collide; the client's own
        # id is echoed (the V2 protocol) and kept in the log as its reference, under its key
        rid = uuid.uuid4().hex
        answer, n, served = await run(served, columns, None, rid)
        client_id = body.get("id") if isinstance(body.get("id"), str) else None
        ref = None if client_id is None else f"{key_source(secret)}:{client_id[:64]}"
        log_rows(served, rid, columns, answer, n, client_ref=ref)
        answer = shown(answer, served.loaded.bundle.classes, policy_of(name))
        preds = answer["predictions"]
        kind = "BYTES" if preds and isinstance(preds[0], str) else "FP64"
        outputs = [{"name": "predictions", "shape": [len(preds)], "datatype": kind,
                    "data": preds}]
        if "probabilities" in answer:
            probs = answer["probabilities"]
            outputs.append({"name": "probabilities", "shape": [len(probs), len(probs[0])],
                            "datatype": "FP64", "data": [p for row in probs for p in row]})
        if "top_k" in answer:  # two [N, k] tensors: the classes and their probabilities
            top = answer["top_k"]
            k = len(top[0]) if top else 0
            outputs += [{"name": "top_k_classes", "shape": [len(top), k], "datatype": "BYTES",
                         "data": [str(c["class"]) for row in top for c in row]},
                        {"name": "top_k_probabilities", "shape": [len(top), k],
                         "datatype": "FP64", "data": [c["probability"] for row in top
                                                      for c in row]}]
        out = {"model_name": name, "model_version": str(served.version),
               "id": rid if client_id is None else client_id,
               "parameters": {"request_id": rid}, "outputs": outputs}
        return Response(json.dumps(out), media_type="application/json")

    def owner_of(model: str, version: int) -> Owner | None:
        """A version's classes from its bundle (None: not registered); reads the registry."""
        key = (model, version)
        if key not in bundles:
            try:
                bundle = registry.bundle(registry.get(model, version))
            except NotFoundError:
                return None
            if len(bundles) >= 256:  # one entry per version: a bound for safety only
                bundles.clear()
            bundles[key] = _owner(model, version, bundle.task, bundle.classes)
        return bundles[key]

    async def owners_of(rids: Sequence[str]) -> dict[str, Owner]:
        """The model version (with its classes) that answered each request id this server
        answered lately or the prediction log holds; ids found in neither are left out."""
        unique = list(dict.fromkeys(rids))
        answered = {rid: hit for rid in unique if (hit := recent.get(rid)) is not None}
        missing = [rid for rid in unique if rid not in answered]
        if missing:
            answered.update(await asyncio.to_thread(registry.store.models_of_requests, missing))
        owners: dict[tuple[str, int], Owner | None] = {}
        for model, version in set(answered.values()):
            slot = slots.get(model)
            served = None if slot is None else slot.current
            if served is not None and served.version == version:  # no I/O: the served bundle
                bundle = served.loaded.bundle
                owners[model, version] = _owner(model, version, bundle.task, bundle.classes)
            else:  # an older version, or a model another replica serves
                owners[model, version] = await asyncio.to_thread(owner_of, model, version)
        return {rid: owner for rid, key in answered.items()
                if (owner := owners[key]) is not None}

    @app.post("/v1/feedback", status_code=202, openapi_extra={"requestBody": _FEEDBACK_BODY},
              tags=["monitor"], responses=_answers(202, _RECORDED, 400, 401, 403, 404, 413,
                                                   422, 503, why=_FEEDBACK_WHY))
    async def feedback(request: Request, secret: PresentedKey) -> Response:
        """Record ground truth: ``{"request_id", "label"}`` or a list of them.

        Each label is stored as one of the classes of the model version that answered its
        request (``1``, ``1.0`` and ``"1"`` are one integer class); a label that is none of
        them (or not a finite number, for a regression model) refuses the whole request with
        422, naming the classes, and nothing of it is stored. A request id that neither this
        server nor the prediction log knows (after waiting one log flush, for a replica's
        fresh answer) refuses the whole request with 404. Each label records its sender (the
        key's prefix); a second, different label for a request is a conflict: stored,
        counted, named in ``conflicts`` and held out of monitoring and retraining."""
        await require(secret, "feedback")
        body = await read_json(request)
        items = body if isinstance(body, list) else [body]
        pairs = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or set(item) != {"request_id", "label"}:
                raise RequestInvalid(f"feedback item {i} must be an object with exactly "
                                     "'request_id' and 'label'.", code="bad_shape",
                                     fields=["request_id", "label"])
            rid, label = item["request_id"], item["label"]
            if not isinstance(rid, str) or not 0 < len(rid) <= 64:
                raise RequestInvalid(f"feedback item {i}: 'request_id' must be the text a "
                                     "prediction returned (1 to 64 characters).",
                                     code="wrong_type", fields=["request_id"])
            if not isinstance(label, (str, int, float)) or (
                    isinstance(label, float) and label != label) or label in (
                    float("inf"), float("-inf")):
                raise RequestInvalid(f"feedback item {i}: 'label' must be text, a number or a "
                                     "boolean (finite).", code="wrong_type", fields=["label"])
            pairs.append((rid, label))
        if not pairs:
            raise RequestInvalid("no feedback items; send at least one.", code="empty",
                                 fields=["request_id"])
        ids = [rid for rid, _ in pairs]
        try:
            owners = await known_owners(ids)
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001 - store down: tell the client to retry
            what = logged_error(logger, "feedback could not be checked", exc)
            raise Refused(503, "store_unavailable", f"{what}; nothing was recorded, retry "
                           "later.", {"Retry-After": str(cfg.retry_after_s)}) from None
        pairs = coerce_feedback(pairs, owners)  # all or nothing: 422 before anything is stored
        source = key_source(secret)
        try:
            n = await asyncio.to_thread(registry.store.add_feedback, pairs, source=source)
            conflicts = await asyncio.to_thread(registry.store.conflicting, ids)
        except Exception as exc:  # noqa: BLE001 - store down: tell the client to retry
            what = logged_error(logger, "feedback could not be stored", exc)
            raise Refused(503, "store_unavailable", f"{what}; retry later.",
                           {"Retry-After": str(cfg.retry_after_s)}) from None
        if conflicts:
            metrics.feedback_conflicts.labels(source).inc(len(conflicts))
        return JSONResponse({"recorded": n, "conflicts": conflicts}, status_code=202)

    async def known_owners(ids: Sequence[str]) -> dict[str, Owner]:
        """The owner of every id, or 404 naming those no prediction returned. An id another
        replica answered a moment ago may not be in the log yet: unknown ids are looked up
        once more after one log flush."""
        owners = await owners_of(ids)
        unknown = [rid for rid in dict.fromkeys(ids) if rid not in owners]
        if unknown:
            await asyncio.sleep(min(2 * cfg.log_flush_ms / 1000.0, 2.0))
            owners.update(await owners_of(unknown))
            unknown = [rid for rid in unknown if rid not in owners]
        if unknown:
            shown = ", ".join(repr(r) for r in unknown[:3]) + (" …" if len(unknown) > 3 else "")
            raise Refused(404, "unknown_request", f"no prediction returned the request id(s) "
                          f"{shown}: send feedback only with a request_id a prediction "
                          "answered. Nothing was recorded.", fields=["request_id"])
        return owners

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> dict[str, bool]:
        """The process answers."""
        return {"live": True}

    @app.get("/v2/health/ready", tags=["health"], responses={
        200: {"content": {"application/json": {"schema": _READY}}},
        503: {"description": "A model is not served (yet).",
              "content": {"application/json": {"schema": _READY}}}})
    async def ready() -> JSONResponse:
        """Every served model is loaded and warmed up."""
        state = {name: (None if s.current is None else s.current.version)
                 for name, s in slots.items()}
        ok = bool(slots) and all(v is not None for v in state.values())
        body: dict[str, Any] = {"ready": ok, "models": state, "runtimes": {
            name: s.current.runtime.name for name, s in slots.items() if s.current is not None}}
        errors = {name: s.error for name, s in slots.items() if s.error}
        notes = {name: s.current.notes for name, s in slots.items()
                 if s.current is not None and s.current.notes}
        if errors:
            body["errors"] = errors
        if notes:
            body["notes"] = notes
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def metrics_endpoint() -> Response:
        """Prometheus text format."""
        return Response(metrics.render(), media_type=metrics.content_type)

    def signal(actor: str) -> dict[str, int]:
        """Bump every served model's reload generation in the store, audited."""
        def audit(session: Any, name: str, generation: int) -> object:
            return registry.audit.append_in(session, actor, "serve_reload", f"model:{name}", {
                "generation": generation, "alias": cfg.alias, "replica": replica})
        return registry.store.signal_reload(list(slots), actor=actor, audit=audit)

    @app.post("/v1/admin/reload", tags=["admin"], responses=_answers(200, _RELOADED, 401, 403))
    async def reload(secret: PresentedKey) -> dict[str, Any]:
        """Load every model's alias version again now, here, and signal every other replica
        (through the store) to do the same at its next poll."""
        await require(secret, "admin")
        try:
            generations = await asyncio.to_thread(signal, key_actor(secret))
            replicas = "signalled"
        except Exception as exc:  # noqa: BLE001 - store down: reload here all the same
            # clients see the error id only; the detail goes to the log
            generations = {}
            replicas = "not signalled: " + logged_error(
                logger, "the reload could not be written to the store", exc)
        before = {name: None if s.current is None else s.current.version
                  for name, s in slots.items()}
        for name, generation in generations.items():
            slots[name].generation = generation  # our own signal: our poll need not reload
            metrics.reloads.labels(name, "admin").inc()
        await asyncio.gather(*(s.reload(force=True) for s in slots.values()))
        return {"replicas": replicas, "replica": replica, "models": {
            name: {"version": None if s.current is None else s.current.version,
                   "swapped": s.current is not None and s.current.version != before[name],
                   "generation": generations.get(name), "error": s.error}
            for name, s in slots.items()}}

    for add in mount:  # e.g. the dashboard at / (driftloop.ui.mount_dashboard)
        add(app, registry)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)  # type: ignore[arg-type]
    return app

__all__ = ["ERROR_SCHEMA", "create_app", "key_actor", "replica_name"]
