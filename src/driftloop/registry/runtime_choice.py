"""The runtime choice of a version: what ``driftloop models optimize`` measured, what was applied.

An optimisation report (the table of runtimes and the recommendation, see
:mod:`driftloop.loop.optimize`) is a JSON artifact, content-addressed like every report; it is
linked to its version by an audit entry ``runtime_optimize`` (subject ``NAME:vN``, details: the
report's sha256, the recommendation and the bound). ``--apply`` appends ``runtime_apply``
(details: the runtime, the report it rests on, the reason), and ``driftloop serve`` with
``serve.runtime: auto`` serves the version with the newest applied runtime. The audit chain is
the link because the reports table's kinds are fixed by a check constraint that would need a
migration; the chain also answers "who chose this runtime, when, on what evidence".

Examples
--------
>>> from driftloop.store import ArtifactStore, AuditLog, Store
>>> import types
>>> store = Store.open("sqlite://")
>>> audit, artifacts = AuditLog(store), ArtifactStore("memory://runtime-choice-doc")
>>> v = types.SimpleNamespace(model_name="churn", version=2)
>>> body = {"recommended": "onnx", "metric": "accuracy", "max_drop": 0.01, "runtimes": []}
>>> sha = record_optimization(audit, artifacts, v, body, actor="ci")
>>> latest_optimization(audit, artifacts, v).body["recommended"]
'onnx'
>>> applied_runtime(audit, v) is None
True
>>> _ = apply_runtime(audit, v, "onnx", sha, actor="ci", reason="measured faster")
>>> applied_runtime(audit, v)
'onnx'
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from driftloop.errors import UsageError
from driftloop.store import ArtifactStore, AuditLog

OPTIMIZE_ACTION = "runtime_optimize"
APPLY_ACTION = "runtime_apply"


class _Version(Protocol):
    model_name: str
    version: int


def version_subject(version: _Version) -> str:
    """The audit subject of a version, ``NAME:vN`` (as register and promote write it)."""
    return f"{version.model_name}:v{version.version}"


@dataclass(frozen=True)
class Optimization:
    """A stored optimisation report: its body, artifact, who measured it and when."""

    body: dict[str, Any]
    report_sha256: str
    actor: str
    at: datetime


def record_optimization(audit: AuditLog, artifacts: ArtifactStore, version: _Version,
                        body: dict[str, Any], *, actor: str) -> str:
    """Store ``body`` as an artifact and link it to ``version`` (audited); its sha256."""
    sha = artifacts.put_json(body)
    audit.append(actor, OPTIMIZE_ACTION, version_subject(version), {
        "report_sha256": sha, "recommended": body.get("recommended"),
        "metric": body.get("metric"), "max_drop": body.get("max_drop"),
    })
    return sha


def latest_optimization(audit: AuditLog, artifacts: ArtifactStore,
                        version: _Version) -> Optimization | None:
    """The newest optimisation report of ``version`` (verified against its sha256), or None."""
    found = audit.entries(subject=version_subject(version), action=OPTIMIZE_ACTION, limit=1)
    if not found:
        return None
    entry = found[0]
    sha = str(entry.details["report_sha256"])
    return Optimization(artifacts.get_json(sha), sha, entry.actor, entry.at)


def apply_runtime(audit: AuditLog, version: _Version, runtime: str, report_sha256: str, *,
                  actor: str, reason: str) -> Any:
    """Record ``runtime`` as the one ``driftloop serve`` uses for ``version`` (audited)."""
    if not reason.strip():
        raise UsageError("applying a runtime needs a reason (it is audited).")
    return audit.append(actor, APPLY_ACTION, version_subject(version), {
        "runtime": runtime, "report_sha256": report_sha256, "reason": reason,
    })


def applied_runtime(audit: AuditLog, version: _Version) -> str | None:
    """The runtime last applied to ``version``, or None when none was."""
    found = audit.entries(subject=version_subject(version), action=APPLY_ACTION, limit=1)
    return str(found[0].details["runtime"]) if found else None


def card_items(audit: AuditLog, artifacts: ArtifactStore,
               version: _Version) -> list[tuple[str, str | None]]:
    """The model card's "Runtime" item: the measured recommendation and what is applied."""
    found = latest_optimization(audit, artifacts, version)
    applied = applied_runtime(audit, version)
    if found is None:
        return [("Runtime", f"{applied or 'torch'} (not measured: run `driftloop models "
                 f"optimize {version.model_name} {version.version}`)")]
    body = found.body
    rows = []
    for r in body.get("runtimes", []):
        latency = r["latency_b1_us"]
        rows.append(f"{r['name']} {latency['p50']:.0f} µs p50 "
                    f"(×{r['latency_ratio']['value']:.2f} of fp32), "
                    f"{r['metric']['value']:.4f} {body['metric']}, {r['size_bytes']:,} bytes"
                    f"{'' if r['eligible'] else ' — refused: ' + '; '.join(r['refused'])}")
    return [("Runtime", f"recommended {body['recommended']} (measured {found.at:%Y-%m-%d} "
             f"on {body.get('machine', {}).get('processor') or 'this machine'}, max drop "
             f"{body['max_drop']:g}); applied: {applied or 'none (serve uses torch)'}. "
             + " · ".join(rows))]


__all__ = [
    "APPLY_ACTION", "OPTIMIZE_ACTION", "Optimization", "applied_runtime", "apply_runtime",
    "card_items", "latest_optimization", "record_optimization", "version_subject",
]
