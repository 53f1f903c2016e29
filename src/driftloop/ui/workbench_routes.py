"""The workbench's HTTP routes: upload a table, look at it, start and follow jobs.

Reads (preview, target, job) need what every dashboard read needs; state changes (upload, start
a job, cancel) need an admin key in the ``Authorization`` header once any key exists (or beyond
loopback), and are audited as that key (``api_key:PREFIX``), or as ``dashboard`` on an open
loopback server::

    POST /ui/api/uploads?filename=NAME        the file as the body (streamed; size limit)
    GET  /ui/api/uploads/{sha}                first rows, columns, suggested targets
    GET  /ui/api/uploads/{sha}/target?column= the task the column implies, in words
    GET  /ui/api/uploads/{sha}/rows?rows=1,2  rows of the upload as CSV (a finding's rows)
    POST /ui/api/jobs                         {"kind": "check"|"train", "model", "upload",
                                               "target", "exclude": [...]}
    GET  /ui/api/jobs?model=NAME              the model's newest job (a reloaded page's)
    GET  /ui/api/jobs/{id}
    POST /ui/api/jobs/{id}/cancel
    GET  /ui/api/workbench/models/{name}/versions/{v}   the evaluation in words
    POST /ui/api/workbench/models/{name}/promote        {"version", "alias", "reason"}
    POST /ui/api/workbench/models/{name}/versions/{v}/score?filename=  a table -> scored CSV
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from driftloop.http import KeyChecker, Refused
from driftloop.http.keys import PresentedKey
from driftloop.registry import Registry
from driftloop.registry.names import check_model_name
from driftloop.ui.admin import admin_actor, promote
from driftloop.ui.answers import _answer, _body, _documented, _error
from driftloop.ui.explain import explain
from driftloop.ui.jobs import cancel_job, job_view, start_job
from driftloop.ui.scoring import score_frame, to_csv
from driftloop.ui.workbench import (
    describe_target,
    preview,
    read_upload,
    save_upload,
    upload_path,
)

# a version or job number: beyond any stored id and within every database's integer
_MAX_NUMBER = 2**31 - 1
Number = Annotated[int, PathParam(ge=1, le=_MAX_NUMBER)]

_MAX_JOB_BODY = 65_536


def add_workbench_routes(router: APIRouter, login: APIRouter, registry: Registry,
                         keys: KeyChecker) -> None:
    """Add the workbench's reads to ``router`` (read key) and its actions to ``login``."""
    settings = registry.settings
    uploads = Path(settings.home) / "uploads"

    def actor(secret: str | None) -> str:
        if secret is None and keys.is_open():
            return "dashboard"
        return admin_actor(registry.store, secret)

    add_use_routes(router, login, registry, actor)

    @router.get("/ui/api/workbench", responses=_documented())
    def api_workbench() -> Response:
        """The workbench's limits, shown on the page."""
        return _answer(lambda: {"upload_limit_bytes": settings.ui.upload_limit_bytes,
                                "epochs": settings.ui.train_epochs,
                                "open": keys.is_open()})

    @login.post("/ui/api/uploads", responses=_documented(413, 422))
    async def api_upload(request: Request, secret: PresentedKey,
                         filename: str = "upload.csv") -> Response:
        """Store the body as an upload (by its sha256), refused when it is no table."""
        def check() -> str:
            return actor(secret)
        try:
            who = await run_in_threadpool(check)
            declared = request.headers.get("content-length", "")
            limit = settings.ui.upload_limit_bytes
            if declared.isdigit() and int(declared) > limit:
                raise Refused(413, "too_large", f"the file is over the upload limit of {limit} "
                              "bytes (ui.upload_limit_bytes); upload a smaller file or raise "
                              "the limit.")
            sha = await save_upload(request.stream(), uploads, filename, limit=limit)
        except Refused as exc:
            return _error(exc.status, exc.code, str(exc))
        registry.audit.append(who, "upload", f"upload:{sha}", {"bytes": _size(uploads, sha)})
        return await run_in_threadpool(_answer, lambda: preview(uploads, sha))

    @router.get("/ui/api/uploads/{sha}", responses=_documented(404))
    def api_preview(sha: str) -> Response:
        """The first rows, columns and suggested targets of an upload."""
        return _answer(lambda: preview(uploads, sha))

    @router.get("/ui/api/uploads/{sha}/target", responses=_documented(404, 422))
    def api_target(sha: str, column: str = "") -> Response:
        """The task ``column`` implies, in words (422: it cannot be predicted)."""
        return _answer(lambda: describe_target(uploads, sha, column))

    @router.get("/ui/api/uploads/{sha}/rows", responses=_documented(404, 422))
    def api_rows(sha: str, rows: str = "") -> Response:
        """Rows of the upload (0-based data-row positions) as a CSV download."""
        def work() -> Response:
            frame = read_upload(uploads, sha)
            try:
                wanted = sorted({int(r) for r in rows.split(",") if r.strip()})
            except ValueError:
                raise Refused(422, "bad_rows",
                              "'rows' must be row numbers such as 0,5,9.") from None
            picked = frame.iloc[[r for r in wanted if 0 <= r < len(frame)]]
            out = io.StringIO()
            picked.insert(0, "row", picked.index)
            picked.to_csv(out, index=False)
            return Response(out.getvalue(), media_type="text/csv", headers={
                "Content-Disposition": 'attachment; filename="rows.csv"'})
        return _answer(work)

    @login.post("/ui/api/jobs", responses=_documented(400, 409, 413, 422))
    async def api_start(request: Request, secret: PresentedKey) -> Response:
        """Start a data check or a training in a background worker process."""
        raw = await request.body()
        if len(raw) > _MAX_JOB_BODY:
            return _error(413, "too_large", "the body is too large.")

        def work() -> Any:
            who = actor(secret)
            body = _body(raw)
            kind = body.get("kind")
            if kind not in ("check", "train", "loop"):
                raise Refused(422, "bad_kind", "'kind' must be check, train or loop.")
            model = check_model_name(str(body.get("model") or ""))
            if kind == "loop":
                registry.store.get_version(model)  # an unknown model is named as such (404)
                return job_view(start_job(registry, settings, kind, model, {}, who))
            sha, target = str(body.get("upload") or ""), str(body.get("target") or "")
            described = describe_target(uploads, sha, target)  # 404 / 422 before any job
            exclude = body.get("exclude") or []
            columns = [c["name"] for c in preview(uploads, sha)["columns"]]
            if not isinstance(exclude, list) or any(c not in columns or c == target
                                                    for c in exclude):
                raise Refused(422, "bad_exclude", "'exclude' must list columns of the table "
                              "other than the target.")
            params = {"upload": sha, "target": target, "exclude": exclude,
                      "task": described["task"], "epochs": settings.ui.train_epochs,
                      "allow_pii": [c for c in body.get("allow_pii") or [] if c in columns]}
            return job_view(start_job(registry, settings, kind, model, params, who))
        return await run_in_threadpool(_answer, work)

    @router.get("/ui/api/jobs", responses=_documented(404))
    def api_latest(model: str) -> Response:
        """The newest job of ``model`` (null: none), so a reloaded page finds its job."""
        return _answer(lambda: {"job": job_view(registry.store.latest_job(model))})

    @router.get("/ui/api/jobs/{job_id}", responses=_documented(404))
    def api_job(job_id: Number) -> Response:
        """One job: status, progress, result or error."""
        return _answer(lambda: job_view(registry.store.get_job(job_id)))

    @login.post("/ui/api/jobs/{job_id}/cancel", responses=_documented(404, 409))
    def api_cancel(job_id: Number, secret: PresentedKey) -> Response:
        """Stop an unfinished job (audited)."""
        return _answer(lambda: job_view(cancel_job(registry, job_id, actor(secret))))


def add_use_routes(router: APIRouter, login: APIRouter, registry: Registry,
                   actor: Any) -> None:
    """Flows 2 and 3: the evaluation in words, promote with a reason, score a file."""
    settings = registry.settings

    @router.get("/ui/api/workbench/models/{name}/versions/{version}", responses=_documented(404))
    def api_explained(name: str, version: Number) -> Response:
        """The version's evaluation as sentences, with its baselines when a job trained it."""
        def work() -> Any:
            body = explain(registry, name, version)
            job = registry.store.latest_job(name)
            found = job is not None and (job.result or {}).get("version") == version
            body["baselines"] = job.result.get("baselines", []) if found else []
            return body
        return _answer(work)

    @login.post("/ui/api/workbench/models/{name}/promote", responses=_documented(409, 422))
    async def api_promote(name: str, request: Request, secret: PresentedKey) -> Response:
        """Promote with a reason, through the registry's gates (audited as the dashboard)."""
        raw = await request.body()
        return await run_in_threadpool(
            _answer, lambda: promote(registry, name, _body(raw), actor(secret)))

    @login.post("/ui/api/workbench/models/{name}/versions/{version}/score",
                responses=_documented(404, 413, 422))
    async def api_score(name: str, version: str, request: Request, secret: PresentedKey,
                        filename: str = "rows.csv") -> Response:
        """Score an uploaded table: the same CSV with prediction and probability columns."""
        # parsed here so that a bad number is answered in the documented error shape
        number = int(version) if version.isascii() and version.isdigit() else 0
        if not 1 <= number <= _MAX_NUMBER:
            return _error(404, "not_found", "no such version: the version is a whole number "
                          f"from 1 to {_MAX_NUMBER}.")
        version = number  # type: ignore[assignment]
        try:
            await run_in_threadpool(actor, secret)
            sha = await save_upload(request.stream(), uploads_of(settings), filename,
                                    limit=settings.ui.upload_limit_bytes)
        except Refused as exc:
            return _error(exc.status, exc.code, str(exc))

        def work() -> Response:
            scored = score_frame(registry, name, version, read_upload(uploads_of(settings), sha))
            return Response(to_csv(scored), media_type="text/csv", headers={
                "Content-Disposition": f'attachment; filename="{name}-v{version}-scored.csv"'})
        return await run_in_threadpool(_answer, work)


def uploads_of(settings: Any) -> Path:
    """Where uploads are kept."""
    return Path(settings.home) / "uploads"


def _size(folder: Path, sha: str) -> int:
    return upload_path(folder, sha).stat().st_size


__all__ = ["add_workbench_routes"]
