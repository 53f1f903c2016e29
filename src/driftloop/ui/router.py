"""The dashboard over HTTP: six pages, the JSON they draw from, and the admin actions.

Pages (one HTML shell each; the page's script fetches JSON and draws it with the vendored
Chart.js, so nothing is loaded from the internet)::

    GET  /                                         models: aliases, versions, health badges
    GET  /ui/models/{name}/versions/{version}      card, lineage, calibration, slices, curve
    GET  /ui/models/{name}/monitoring              drift timeline, performance, alerts
    GET  /ui/loop                                  retrain events: triggers and gates
    GET  /ui/rollouts                              rollouts: stage, share, live comparison
    GET  /ui/audit                                 the audit log and its verification

JSON (read-only; a key with role ``read`` or ``admin`` once any key was ever created, or
always when the server is bound beyond loopback — sent as a header, or kept by the browser
in an HttpOnly session cookie after ``POST /ui/api/login``)::

    GET  /ui/api/models
    GET  /ui/api/models/{name}/versions/{version}
    GET  /ui/api/models/{name}/versions/{version}/reliability.png
    GET  /ui/api/models/{name}/monitoring?limit=1000
    GET  /ui/api/windows/{id}
    GET  /ui/api/loop?model=NAME&limit=200
    GET  /ui/api/rollouts?model=NAME&limit=50
    GET  /ui/api/audit?limit=200&action=promote&subject=churn:v3
    POST /ui/api/audit/verify
    POST /ui/api/login      {"key": "dl_…"}: sets the session cookie (never put in a URL)
    POST /ui/api/logout

Admin actions (``Authorization: Bearer KEY`` of a key with role ``admin``; body
``{"alias", "reason", "version"?, "force"?, "rollout"?}``)::

    POST /ui/api/models/{name}/promote | rollback | deactivate | abort_rollout

Errors answer ``{"error": {"code", "message", "fields"}}`` like the model server: 401/403
auth, 404 unknown model or window, 409 refused (gates failed, no rollout under way to abort),
422 bad body (no reason), 501 not available.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path as FilePath
from string import Template
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from driftloop.http import KeyChecker, Refused, error_response
from driftloop.http.exposure import is_loopback
from driftloop.http.keys import SESSION_COOKIE, PresentedKey, grants
from driftloop.registry import Registry
from driftloop.ui import views
from driftloop.ui.admin import ACTIONS, admin_actor
from driftloop.ui.answers import _MAX_BODY, _answer, _body, _documented, _error
from driftloop.ui.workbench_routes import add_workbench_routes

STATIC = FilePath(__file__).with_name("static")
PAGES = {
    "models": "Models",
    "version": "Model version",
    "monitoring": "Monitoring",
    "loop": "Loop",
    "rollouts": "Rollouts",
    "audit": "Audit log",
    "new": "New model",
}
_SESSION_S = 8 * 3600  # the session cookie's lifetime; the key's revocation ends it sooner
_MAX_ID = 2**31 - 1  # beyond any stored id, and within every database's integer
Number = Annotated[int, Path(ge=1, le=_MAX_ID)]


def page_html(page: str) -> str:
    """The HTML shell of one page (its script draws the rest).

    >>> "/ui/static/monitoring.js" in page_html("monitoring")
    True
    """
    shell = Template((STATIC / "page.html").read_text(encoding="utf-8"))
    return shell.substitute(page=page, title=PAGES[page])


def create_router(registry: Registry, keys: KeyChecker | None = None) -> APIRouter:
    """The dashboard's routes, reading and acting through ``registry``; ``keys`` decides who
    may read (None: a checker that is open only on a loopback ``serve.host``)."""
    cfg = registry.settings.serve
    keys = keys or KeyChecker(registry.store, cache_s=cfg.key_cache_s,
                              open_without_keys=is_loopback(cfg.host))
    router = APIRouter(tags=["dashboard"])  # pages' data: a read key unless open
    login = APIRouter(tags=["dashboard"])  # page shells (no data), login, admin (own check)
    shells = {page: page_html(page) for page in PAGES}

    def page(name: str) -> Callable[..., HTMLResponse]:
        def handler() -> HTMLResponse:
            return HTMLResponse(shells[name], headers={"Cache-Control": "no-cache"})
        return handler

    login.add_api_route("/", page("models"), methods=["GET"], include_in_schema=False)
    login.add_api_route("/ui/models/{name}/versions/{version}", page("version"),
                         methods=["GET"], include_in_schema=False)
    login.add_api_route("/ui/models/{name}/monitoring", page("monitoring"), methods=["GET"],
                         include_in_schema=False)
    login.add_api_route("/ui/loop", page("loop"), methods=["GET"], include_in_schema=False)
    login.add_api_route("/ui/rollouts", page("rollouts"), methods=["GET"],
                         include_in_schema=False)
    login.add_api_route("/ui/audit", page("audit"), methods=["GET"], include_in_schema=False)
    login.add_api_route("/ui/new", page("new"), methods=["GET"], include_in_schema=False)
    add_workbench_routes(router, login, registry, keys)

    @router.get("/ui/api/models", responses=_documented())
    def api_models() -> Response:
        """Every model with aliases, versions, key metrics and health badge."""
        return _answer(lambda: views.models_view(registry))

    @router.get("/ui/api/models/{name}/versions/{version}", responses=_documented(404))
    def api_version(name: str, version: Number) -> Response:
        """One version: card, lineage, evaluation, training curve, data checks."""
        return _answer(lambda: views.version_view(registry, name, version))

    @router.get("/ui/api/models/{name}/versions/{version}/reliability.png",
                responses=_documented(404, png=True), response_class=Response)
    def api_reliability(name: str, version: Number) -> Response:
        """The reliability diagram of the version's newest evaluation."""
        return _answer(lambda: Response(views.reliability_png(registry, name, version),
                                        media_type="image/png"))

    @router.get("/ui/api/models/{name}/monitoring", responses=_documented(404))
    def api_monitoring(
        name: str, limit: Annotated[int, Query(ge=1, le=views.MAX_WINDOWS)] = 1000,
    ) -> Response:
        """Windows (drift share, estimated and realised metric), alerts, latest window."""
        return _answer(lambda: views.monitoring_view(registry, name, limit=limit))

    @router.get("/ui/api/windows/{window_id}", responses=_documented(404))
    def api_window(window_id: Number) -> Response:
        """One window: feature tests, prediction drift, histograms."""
        return _answer(lambda: views.window_view(registry, window_id))

    @router.get("/ui/api/loop", responses=_documented(404))
    def api_loop(model: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=views.MAX_ROWS)] = 200) -> Response:
        """Loop iterations, newest first."""
        return _answer(lambda: views.loop_view(registry, model or None, limit=limit))

    @router.get("/ui/api/rollouts", responses=_documented(404))
    def api_rollouts(model: str | None = None,
                     limit: Annotated[int, Query(ge=1, le=views.MAX_ROLLOUTS)] = 50) -> Response:
        """Rollouts, those under way first: stage, share, live comparison, decision."""
        return _answer(lambda: views.rollouts_view(registry, model or None, limit=limit))

    @router.get("/ui/api/audit", responses=_documented())
    def api_audit(limit: Annotated[int, Query(ge=1, le=views.MAX_ROWS)] = 200,
                  action: str | None = None, subject: str | None = None) -> Response:
        """The newest audit entries, newest first."""
        return _answer(lambda: views.audit_view(registry, limit=limit, action=action,
                                                subject=subject))

    @router.post("/ui/api/audit/verify", responses=_documented())
    def api_verify() -> Response:
        """Recompute the audit chain and say whether it holds."""
        return _answer(lambda: views.verify_view(registry))

    @login.post("/ui/api/login", responses=_documented(400, 413, 422))
    async def api_login(request: Request) -> Response:
        """Check a key (role read or admin) and keep it in an HttpOnly session cookie."""
        raw = await _read_body(request)

        def work() -> Any:
            secret = _body(raw).get("key")
            if not isinstance(secret, str) or not secret.strip():
                raise Refused(422, "key_required", "paste an API key with role read or admin.")
            role = keys.role_of(secret.strip())
            _require_role(role, "read")
            response = JSONResponse({"role": role})
            response.set_cookie(SESSION_COOKIE, secret.strip(), max_age=_SESSION_S,
                                httponly=True, samesite="strict", path="/",
                                secure=request.url.scheme == "https")
            return response

        return await run_in_threadpool(_answer, work)

    @login.post("/ui/api/logout", responses=_documented())
    def api_logout() -> Response:
        """Forget the session cookie."""
        response = JSONResponse({"logged_out": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @login.post("/ui/api/models/{name}/{action}",
                responses=_documented(400, 404, 409, 413, 422))
    async def api_admin(name: str, action: str, request: Request,
                        secret: PresentedKey) -> Response:
        """Promote, roll back, deactivate or abort a rollout (admin key, reason required;
        audited)."""
        if action not in ACTIONS:
            return _error(404, "not_found", f"no admin action '{action}'; actions: "
                          f"{', '.join(ACTIONS)}.")
        raw = await _read_body(request)  # secret: a header only, the session cookie cannot act

        def work() -> Any:
            actor = admin_actor(registry.store, secret)
            return ACTIONS[action](registry, name, _body(raw), actor)

        # the registry blocks (database, gates): run it off the event loop
        return await run_in_threadpool(_answer, work)

    outer = APIRouter()
    outer.include_router(router, dependencies=[Depends(_reader(keys))])
    outer.include_router(login)
    return outer


def mount_dashboard(app: FastAPI, registry: Registry) -> FastAPI:
    """Add the dashboard's pages, JSON and static files to ``app`` (``/`` and ``/ui/...``),
    checking keys with the model server's checker when ``app`` is one."""
    app.include_router(create_router(registry, getattr(app.state, "keys", None)))
    if Refused not in app.exception_handlers:  # the dashboard alone (`driftloop ui`)
        app.add_exception_handler(Refused, _refused)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="dashboard-static")
    return app


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    return error_response(exc)


def _reader(keys: KeyChecker) -> Callable[[Request], Any]:
    """The dependency of every read route: a read (or admin) key unless the server is open.

    The check may query the store, so it runs in FastAPI's thread pool (a sync dependency),
    not on the event loop."""
    def require_read(request: Request, presented: PresentedKey) -> None:
        secret = presented or request.cookies.get(SESSION_COOKIE) or None
        if keys.allows(secret, "read"):
            return
        if secret is None:
            raise Refused(401, "unauthorized", "the dashboard needs an API key with role read "
                          "or admin: log in with one (create it with `driftloop keys create "
                          "NAME --role read`).", {"WWW-Authenticate": "Bearer"})
        _require_role(keys.role_of(secret), "read")
    return require_read


def _require_role(role: str | None, needed: str) -> None:
    if role is None:
        raise Refused(401, "unauthorized", "the API key is unknown or revoked.",
                      {"WWW-Authenticate": "Bearer"})
    if not grants(role, needed):
        raise Refused(403, "forbidden", f"this API key has role '{role}'; the dashboard needs "
                      "a key with role read or admin.")


async def _read_body(request: Request) -> bytes:
    """The body, refused (413) as soon as it passes the limit — before it is all read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_BODY:
        raise Refused(413, "too_large", f"the body is over {_MAX_BODY} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            raise Refused(413, "too_large", f"the body is over {_MAX_BODY} bytes.")
    return bytes(body)


__all__ = ["PAGES", "STATIC", "create_router", "mount_dashboard", "page_html"]
