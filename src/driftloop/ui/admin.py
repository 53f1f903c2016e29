"""The dashboard's admin actions: promote, roll back and deactivate an alias, and abort a
rollout, each with a reason.

An action needs an active API key with role ``admin`` (:func:`admin_actor`); it is audited as
``api_key:PREFIX`` (the key's prefix, which ``driftloop keys list`` maps to the key's name), with
the reason given. The work is done by the registry's own functions, so the dashboard promotes
exactly as ``driftloop models promote`` does: gates run, and failed gates refuse unless the
admin overrides them (``force``, audited); and aborts a rollout exactly as ``driftloop models
rollout NAME --abort`` does (:func:`driftloop.registry.rollouts.abort_rollout`: the holder keeps
the alias, the stage change is audited).

Examples
--------
>>> import tempfile
>>> from driftloop.config import Settings
>>> from driftloop.registry import Registry
>>> from driftloop.serve.auth import create_key
>>> home = tempfile.mkdtemp()
>>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> key = create_key(reg.store, reg.audit, "ops-dashboard", "admin", actor="ops").secret
>>> admin_actor(reg.store, None)
Traceback (most recent call last):
...
driftloop.http.errors.Refused: admin actions need an admin API key: paste one into the form (create one with `driftloop keys create NAME --role admin`).
>>> admin_actor(reg.store, key).startswith("api_key:")
True
>>> reason_of({"reason": "  "})
Traceback (most recent call last):
...
driftloop.http.errors.Refused: say why (a reason is required and audited; no personal data).
>>> reg.store.close()
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftloop.errors import UsageError
from driftloop.http import Refused, hash_key
from driftloop.registry import Registry, rollouts
from driftloop.registry.aliases import check_alias
from driftloop.store import Store

MAX_REASON = 500


def admin_actor(store: Store, secret: str | None) -> str:
    """The audit actor of an admin key, or :class:`Refused` (401 no/unknown key, 403 role)."""
    if not secret:
        raise Refused(401, "unauthorized", "admin actions need an admin API key: paste one "
                      "into the form (create one with `driftloop keys create NAME --role "
                      "admin`).")
    record = store.find_api_key(hash_key(secret))
    if record is None:
        raise Refused(401, "unauthorized", "the API key is unknown or revoked.")
    if record.role != "admin":
        raise Refused(403, "forbidden", f"this API key has role '{record.role}'; admin actions "
                      "need a key with role 'admin'.")
    return f"api_key:{record.prefix}"


def reason_of(body: Mapping[str, Any]) -> str:
    """The reason of a request body, stripped; :class:`Refused` (422) when blank or too long."""
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Refused(422, "reason_required", "say why (a reason is required and audited; no "
                      "personal data).")
    if len(reason) > MAX_REASON:
        raise Refused(422, "reason_too_long", f"the reason is {len(reason)} characters; keep "
                      f"it under {MAX_REASON}.")
    return reason.strip()


def promote(registry: Registry, name: str, body: Mapping[str, Any], actor: str
            ) -> dict[str, Any]:
    """Promote ``body["version"]`` of ``name`` to ``body["alias"]`` (gated; ``force`` audited)."""
    reason = reason_of(body)
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
        raise Refused(422, "bad_version", "'version' must be a version number (1, 2, ...).")
    alias = check_alias(_alias(body))
    force = body.get("force") is True
    done = registry.promote(name, version, to=alias, reason=reason, actor=actor, force=force)
    if done.move is None:
        return {"ok": True, "message": f"{name} v{version} already holds {alias}.",
                "audit_seq": None}
    forced = " past failed gates (override audited)" if done.forced else ""
    return {"ok": True, "audit_seq": done.move.audit_seq,
            "message": f"{name}@{alias} now points at v{version}{forced}."}


def rollback(registry: Registry, name: str, body: Mapping[str, Any], actor: str
             ) -> dict[str, Any]:
    """Point ``body["alias"]`` of ``name`` back at its previous holder."""
    reason = reason_of(body)
    move = registry.rollback(name, check_alias(_alias(body)), reason=reason, actor=actor)
    return {"ok": True, "audit_seq": move.audit_seq,
            "message": f"{name}@{move.alias} rolled back from v{move.from_version} to "
                       f"v{move.to_version}."}


def deactivate(registry: Registry, name: str, body: Mapping[str, Any], actor: str
               ) -> dict[str, Any]:
    """Stop ``body["alias"]`` of ``name`` pointing at any version
    (``driftloop.registry.aliases.deactivate``)."""
    reason = reason_of(body)
    alias = check_alias(_alias(body))
    try:
        from driftloop.registry.aliases import deactivate as deactivate_alias  # type: ignore
    except ImportError:
        raise Refused(501, "not_available", "deactivating an alias is not available in this "
                      "driftloop version.") from None
    result = deactivate_alias(registry, name, alias, actor=actor, reason=reason)
    seq = getattr(result, "audit_seq", None)
    return {"ok": True, "audit_seq": seq, "message": f"{name}@{alias} deactivated."}


def abort_rollout(registry: Registry, name: str, body: Mapping[str, Any], actor: str
                  ) -> dict[str, Any]:
    """Stop the rollout of ``name`` to ``body["alias"]`` under way, the holder kept (audited as
    a ``rollout_stage`` to ``aborted``). ``body["rollout"]``, when given, is the id of the
    rollout the admin saw: a different one under way now is refused (409), not aborted."""
    reason = reason_of(body)
    alias = check_alias(_alias(body))
    seen = body.get("rollout")
    if seen is not None and (not isinstance(seen, int) or isinstance(seen, bool)):
        raise Refused(422, "bad_rollout", "'rollout' must be a rollout id (1, 2, ...).")
    registry.store.get_version(name)  # an unknown model is named as such (404)
    current = registry.store.active_rollout(name, alias)
    if current is None:
        last = next((r for r in registry.store.list_rollouts(name, limit=50)
                     if r.alias == alias), None)
        ended = "" if last is None else (f"; its last rollout ({last.id}, v"
                                         f"{last.candidate_version}) ended {last.stage}")
        raise Refused(409, "no_rollout", f"{name}@{alias} has no rollout under way, so there "
                      f"is nothing to abort{ended}.")
    if seen is not None and seen != current.id:
        raise Refused(409, "rollout_changed", f"rollout {seen} of {name}@{alias} is no longer "
                      f"under way (rollout {current.id}, v{current.candidate_version}, is); "
                      "reload the page and look again before aborting.")
    try:
        record = rollouts.abort_rollout(registry, name, alias, reason=reason, actor=actor)
    except UsageError as exc:  # it ended (or kept moving) between the check and the abort
        raise Refused(409, "no_rollout", str(exc)) from None
    entry = next((e for e in reversed(registry.audit.entries(
        subject=f"model:{name}", action="rollout_stage", limit=20))
        if e.details.get("rollout") == record.id and e.details.get("to") == "aborted"), None)
    before = current.stage if entry is None else entry.details.get("from")
    return {"ok": True, "audit_seq": None if entry is None else entry.seq,
            "rollout": record.id, "stage": record.stage,
            "message": f"rollout {record.id} of {name} v{record.candidate_version} aborted in "
                       f"{before}; v{record.holder_version} keeps {alias}."}


ACTIONS = {"promote": promote, "rollback": rollback, "deactivate": deactivate,
           "abort_rollout": abort_rollout}
"""The admin actions by URL name."""


def _alias(body: Mapping[str, Any]) -> str:
    alias = body.get("alias")
    if not isinstance(alias, str) or not alias:
        raise Refused(422, "alias_required", "'alias' is required (e.g. production).")
    return alias


__all__ = ["ACTIONS", "MAX_REASON", "Refused", "abort_rollout", "admin_actor", "deactivate",
           "promote", "reason_of", "rollback"]
