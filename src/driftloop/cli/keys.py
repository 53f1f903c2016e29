"""``driftloop keys create|list|revoke``: API keys of the model server."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from driftloop.cli.output import JsonFlag, Typer, emit_json, open_registry, out, plain

app = Typer(help="Create, list and revoke API keys of the model server.", no_args_is_help=True)


class KeyRole(str, Enum):
    predict = "predict"
    feedback = "feedback"
    read = "read"
    admin = "admin"


@app.command("create")
def keys_create_cmd(
    name: Annotated[str, typer.Argument(help="What the key is for (a service, not a person).")],
    role: Annotated[KeyRole, typer.Option(
        help="predict (predict, infer, feedback), feedback (labels only), read (the dashboard) "
        "or admin (everything).")] = KeyRole.predict,
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Create an API key; its secret is printed once and stored only hashed."""
    from driftloop.serve.auth import create_key

    with open_registry() as registry:
        created = create_key(registry.store, registry.audit, name, role.value,
                             actor=actor or registry.actor)
    if json_out:
        emit_json({"name": name, "role": role.value, "prefix": created.record.prefix,
                   "key": created.secret})
        return
    out.print(f"created {role.value} key [bold]{name}[/] ({created.record.prefix}); "
              "it is shown only now:")
    plain(created.secret)


@app.command("list")
def keys_list_cmd(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """List API keys (names, prefixes and roles; never secrets)."""
    from driftloop.serve.auth import list_keys

    with open_registry() as registry:
        keys = list_keys(registry.store, include_revoked=all_keys)
    if json_out:
        emit_json([k.__dict__ for k in keys])
        return
    if not keys:
        out.print("no API keys: on loopback, predictions and the dashboard need none until the "
                  "first key is created (admin endpoints are closed).")
    for k in keys:
        state = "active" if k.active else f"revoked {k.revoked_at:%Y-%m-%d %H:%M}"
        out.print(f"{k.prefix}  {k.role:7s}  {k.name}  created {k.created_at:%Y-%m-%d %H:%M}"
                  f"  {state}")


@app.command("revoke")
def keys_revoke_cmd(
    key: Annotated[str, typer.Argument(help="Name or prefix of the key.")],
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Revoke an API key (audited); servers stop accepting it within seconds."""
    from driftloop.serve.auth import revoke_key

    with open_registry() as registry:
        record = revoke_key(registry.store, registry.audit, key, actor=actor or registry.actor)
    if json_out:
        emit_json(record.__dict__)
        return
    out.print(f"revoked {record.role} key {record.name} ({record.prefix})")
