"""``driftloop demo``: the whole closed loop on a credit-approval stream, in a few minutes.

1. **Data.** Loan applications from river's Agrawal generator (a standard drift benchmark,
   generated locally and seeded). Before the change the bank approves by Agrawal's function 2;
   after it by function 6 (a concept change: the two agree on about half of the applicants),
   and the applicants shift towards higher salaries (a covariate shift, made by selecting rows
   so every label still follows its function).
2. **Train** data-parallel with 2 workers on pre-change data; the data check, evaluation and
   gates run as usual; the version is promoted to ``production``.
3. **Serve** it on a free loopback port and send the stream as traffic, with the true labels
   sent as feedback one batch late; **monitor** after each batch.
4. **Loop**: one ``run-once`` finds the trigger, retrains on the newest labelled rows, compares
   champion and challenger on the same holdout and runs the gates; the challenger then **rolls
   out** on live traffic (shadow, canary 25 % and 50 %, sticky per applicant id): the server
   compares both versions on the same rows as labels arrive and promotes it by itself (or rolls
   it back); the server swaps by itself; more traffic shows the realised accuracy afterwards; a
   second ``run-once`` is held by the cooldown.
5. **Report**: ``<folder>/report.html`` and a short story with the numbers.

The demo keeps its own store in ``<folder>/.driftloop`` (look around afterwards with
``DRIFTLOOP_HOME=<folder>/.driftloop driftloop models list``); a second run moves the first
run's store aside to ``.driftloop.previous-<time>`` rather than retraining into it, so its
cooldown and history do not change the story.

Examples
--------
>>> frame = credit_frame(rows=5, seed=1)
>>> list(frame.columns)[:4], len(frame)
(['salary', 'commission', 'age', 'elevel'], 5)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data.check import DataReport, check_data
from driftloop.errors import DriftloopError
from driftloop.loop.demo_report import write_report
from driftloop.train.launcher import TrainResult, train

TARGET = "approved"
MODEL = "credit"
PRE_FUNCTION, POST_FUNCTION = 2, 6
_CARD = {
    "owners": "credit-risk analytics team", "license": "internal use",
    "contact": "credit-risk channel",
    "intended_use": "Pre-screening loan applications in the driftloop demo.",
    "intended_users": "Loan officers, who make the final decision.",
    "out_of_scope_uses": "Automated final credit decisions; any real applicant.",
    "factors": "Age, salary and education level bands (sliced in evaluation).",
    "ethical_considerations": "Synthetic data only; no personal data.",
    "caveats": "The demo's data is synthetic (river's Agrawal generator).",
}


def credit_frame(
    rows: int, seed: int, classification_function: int = PRE_FUNCTION,
    *, salary_shift: bool = False,
) -> pd.DataFrame:
    """``rows`` loan applications from river's Agrawal generator, with an ``approved`` label.

    ``salary_shift`` keeps applicants earning over 75,000 with probability 0.9 and the rest with
    0.25: a covariate shift by selection, so labels still follow the function.
    """
    from river.datasets import synth

    stream = synth.Agrawal(
        classification_function=classification_function, seed=seed, perturbation=0.05
    )
    rng = np.random.default_rng(seed)
    records = []
    for x, y in stream:
        if salary_shift and rng.uniform() > (0.9 if x["salary"] > 75_000 else 0.25):
            continue
        records.append({**x, TARGET: "yes" if y else "no"})
        if len(records) == rows:
            break
    frame = pd.DataFrame.from_records(records)
    frame["elevel"] = frame["elevel"].map(lambda v: f"level-{v}")  # education level: a category
    return frame


@dataclass
class DemoResult:
    """What the demo did, with the numbers of its story."""

    folder: str
    data_path: str
    check: DataReport
    training: TrainResult
    store_url: str
    artifacts_url: str
    server_url: str = ""
    trigger: dict[str, Any] | None = None
    retrained_version: int | None = None
    promoted: bool = False
    accuracy_before: float | None = None
    accuracy_after: float | None = None
    holdout: dict[str, Any] = field(default_factory=dict)
    windows: list[dict[str, Any]] = field(default_factory=list)
    second_run: str | None = None
    served_version_after: int | None = None
    rollout: dict[str, Any] | None = None  # the challenger's rollout: stages, evidence, decision
    report_path: str = ""
    seconds: float = 0.0
    story: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder, "data": self.data_path, "check": self.check.to_json(),
            "training": self.training.to_json(), "store_url": self.store_url,
            "artifacts_url": self.artifacts_url, "server_url": self.server_url,
            "trigger": self.trigger, "retrained_version": self.retrained_version,
            "promoted": self.promoted, "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after, "holdout_comparison": self.holdout,
            "served_version_after": self.served_version_after, "rollout": self.rollout,
            "second_run_outcome": self.second_run, "windows": self.windows,
            "report": self.report_path, "seconds": self.seconds, "story": self.story,
        }


def demo_settings(settings: Settings, folder: Path) -> Settings:
    """The demo's settings: its store inside ``folder``, card text, a quick loop and monitor."""
    card = {k: v for k, v in _CARD.items() if not getattr(settings.card, k)}
    return settings.updated({
        "home": str(folder / ".driftloop"), "store_url": "", "artifacts_url": "",
        "card": card,
        # small demo data: slices of ~100 rows swing by several points, so the demo's slice
        # gate allows 0.1 (the default 0.05 suits production-sized evaluation sets)
        "gates": {"slice_tolerance": max(settings.gates.slice_tolerance, 0.1)},
        "monitor": {"window": "500"},
        "loop": {"drift_windows": 2, "window_rows": 5000, "holdout_fraction": 0.3,
                 "data_window": "sliding", "cooldown_s": 3600, "max_per_day": 4,
                 # the challenger goes shadow -> canary 25 % -> 50 % -> production, live
                 "rollout": {"enabled": True, "shadow_rows": 300, "shares": [0.25, 0.5],
                             "step_rows": 300, "min_labels": 150, "check_s": 0.5,
                             "max_duration_s": 300}},
        "serve": {"poll_s": 0.5, "log_flush_ms": 100, "port": 0},
    })


def keep_previous_store(folder: Path) -> Path | None:
    """Move an earlier demo's store aside, so every demo starts clean and nothing is lost.

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> keep_previous_store(root) is None
    True
    >>> (root / ".driftloop").mkdir()
    >>> keep_previous_store(root).name.startswith(".driftloop.previous-")
    True
    """
    home = folder / ".driftloop"
    if not home.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = folder / f".driftloop.previous-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = folder / f".driftloop.previous-{stamp}-{n}"
    home.rename(target)
    return target


def run_demo(
    folder: str | Path = "driftloop-demo",
    *,
    rows: int = 6000,
    traffic_rows: int = 4000,
    workers: int = 2,
    epochs: int = 15,
    settings: Settings | None = None,
    progress: bool = True,
    on_step: Callable[[str, Any], None] | None = None,
) -> DemoResult:
    """Run the closed loop end to end in ``folder`` (see the module docstring)."""
    started = time.perf_counter()
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    say = on_step or (lambda *_: None)
    kept = keep_previous_store(folder)
    if kept is not None:
        say("store", f"the previous demo's store was moved to {kept} (kept, not deleted)")
    settings = demo_settings(settings or Settings.load(), folder)
    data_path = folder / "credit.csv"
    say("data", f"writing {rows} pre-change loan applications (river Agrawal, function "
        f"{PRE_FUNCTION}) to {data_path}")
    credit_frame(rows, seed=42).to_csv(data_path, index=False)
    say("check", "checking the data")
    report = check_data(data_path, target=TARGET, settings=settings)
    say("check-done", report)
    say("train", f"training data-parallel with {workers} workers")
    trained = train(data_path, TARGET, workers=workers, epochs=epochs, name=MODEL,
                    settings=settings, progress=progress)
    result = DemoResult(folder=str(folder), data_path=str(data_path), check=report,
                        training=trained, store_url=settings.store_url,
                        artifacts_url=settings.artifacts_url)
    _run_loop(result, settings, traffic_rows, say)
    result.seconds = time.perf_counter() - started
    result.story = story(result)
    result.report_path = str(write_report(result, settings, folder / "report.html", model=MODEL))
    return result


def _run_loop(result: DemoResult, settings: Settings, traffic_rows: int,
              say: Callable[[str, Any], None]) -> None:
    from driftloop.loop.runner import run_once
    from driftloop.monitor.windows import monitor, window_json
    from driftloop.registry import Registry
    from driftloop.serve.app import create_app
    from driftloop.serve.server import BackgroundServer

    registry = Registry.open(settings)
    version = result.training.version
    say("promote", f"promoting {MODEL} v{version} to production (gates run)")
    registry.promote(MODEL, version, to="production", reason="demo: first model",
                     actor="driftloop demo")
    pre = credit_frame(traffic_rows // 4, seed=7)
    post = credit_frame(traffic_rows, seed=8, classification_function=POST_FUNCTION,
                        salary_shift=True)
    fresh = credit_frame(2000, seed=9, classification_function=POST_FUNCTION, salary_shift=True)
    app = create_app(registry, [MODEL], settings.serve)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        result.server_url = server.url
        server.wait_ready()
        say("serve", f"serving {MODEL} v{version} on {server.url}")
        traffic = _Traffic(http)
        say("traffic", f"sending {len(pre)} pre-change applications, then {len(post)} after "
            f"the change (function {PRE_FUNCTION} → {POST_FUNCTION}, salaries shifted)")
        for part in (pre, post):
            for chunk in _chunks(part, 250):
                traffic.send(chunk)
                if traffic.sent % 500 == 0:
                    traffic.flush_feedback(keep_last=True)
                    time.sleep(settings.serve.log_flush_ms / 1000 * 3)
                    monitor(MODEL, settings=settings, registry=registry)
        traffic.flush_feedback(keep_last=False)
        time.sleep(settings.serve.log_flush_ms / 1000 * 3)
        say("loop", "running the loop once: monitor → trigger → retrain → compare → gates")
        outcome = run_once(MODEL, settings=settings, registry=registry,
                           say=lambda step, msg: say(f"loop:{step}", msg))
        result.trigger = None if outcome.trigger is None else outcome.trigger.to_json()
        result.retrained_version = outcome.challenger_version
        result.promoted = outcome.promoted
        result.holdout = outcome.comparison
        if outcome.rollout_id is not None:
            say("rollout", f"rollout {outcome.rollout_id}: the server shadows, then canaries "
                f"v{outcome.challenger_version} on live traffic (labels one batch late)")
            result.rollout = _follow_rollout(registry, outcome.rollout_id, traffic, say)
            result.promoted = result.rollout["stage"] == "promoted"
        if result.promoted:
            result.served_version_after = _wait_for_version(http, outcome.challenger_version)
            say("swap", f"the server now answers with v{result.served_version_after} "
                "(hot swap, no restart)")
        after = credit_frame(1000, seed=10, classification_function=POST_FUNCTION,
                             salary_shift=True)
        for chunk in _chunks(after, 250):
            traffic.send(chunk)
        traffic.flush_feedback(keep_last=False)
        time.sleep(settings.serve.log_flush_ms / 1000 * 3)
        second = run_once(MODEL, settings=settings, registry=registry)
        result.second_run = second.outcome
        say("loop", f"a second run-once: {second.outcome}"
            + (f" ({second.steps[-1]['message']})" if second.steps else ""))
    result.accuracy_before = _accuracy(registry, version, fresh)
    if result.retrained_version is not None:
        result.accuracy_after = _accuracy(registry, result.retrained_version, fresh)
    result.windows = [window_json(w) for w in registry.store.list_windows(MODEL)]


class _Traffic:
    """Sends applications to the server; their labels go out as feedback one batch later."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http
        self.sent = 0
        self._pending: list[list[dict[str, Any]]] = []

    def send(self, chunk: pd.DataFrame) -> None:
        features = chunk.drop(columns=[TARGET])
        # each application's id (the canary's sticky key is a request's first id)
        body = {"instances": features.to_dict("records"),
                "ids": [f"applicant-{self.sent + i}" for i in range(len(chunk))]}
        response = self.http.post(f"/v1/models/{MODEL}/predict", json=body)
        if response.status_code != 200:
            raise DriftloopError(f"the demo server answered {response.status_code}: "
                                 f"{response.text[:300]}")
        ids = response.json().get("request_ids") or [response.json()["request_id"]]
        self._pending.append([{"request_id": rid, "label": label}
                              for rid, label in zip(ids, chunk[TARGET], strict=True)])
        self.sent += len(chunk)

    def flush_feedback(self, *, keep_last: bool) -> None:
        """Send the labels of every batch but (with ``keep_last``) the newest: labels lag."""
        ready = self._pending[:-1] if keep_last else self._pending
        for items in ready:
            response = self.http.post("/v1/feedback", json=items)
            if not response.is_success:
                raise DriftloopError(f"feedback refused ({response.status_code}): "
                                     f"{response.text[:300]}")
        self._pending = self._pending[-1:] if keep_last and self._pending else []


def _follow_rollout(registry: Any, rollout_id: int, traffic: _Traffic,
                    say: Callable[[str, Any], None], max_rows: int = 6000) -> dict[str, Any]:
    """Send post-change traffic in small requests (labels one batch late) until the server
    decides the rollout; its stages (from the audit log), evidence and decision."""
    stream = credit_frame(max_rows, seed=12, classification_function=POST_FUNCTION,
                          salary_shift=True)
    seen = None
    record = registry.store.get_rollout(rollout_id)
    for chunk in _chunks(stream, 25):
        record = registry.store.get_rollout(rollout_id)
        if (record.stage, record.share) != seen:
            seen = (record.stage, record.share)
            say("rollout", f"now {record.stage}"
                + (f": {record.share:.0%} of requests answered by the challenger"
                   if record.stage == "canary" else ""))
        if not record.active:
            break
        traffic.send(chunk)
        traffic.flush_feedback(keep_last=True)
    stages = [(e.details["from"], e.details["to"], e.details["share"])
              for e in registry.audit.entries(subject=f"model:{MODEL}", action="rollout_stage")
              if e.details.get("rollout") == rollout_id]
    if record.active:
        say("rollout", f"rollout {rollout_id} still undecided after {max_rows} rows: "
            f"{record.evidence.get('reason')}")
    return {"id": rollout_id, "stage": record.stage, "decision": record.decision,
            "stages": stages, "evidence": record.evidence}


def _chunks(frame: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), size):
        yield frame.iloc[start:start + size]


def _wait_for_version(http: httpx.Client, version: int | None,
                      timeout_s: float = 60.0) -> int:
    probe = {"instances": [credit_frame(1, seed=11).drop(columns=[TARGET]).iloc[0].to_dict()]}
    deadline = time.monotonic() + timeout_s
    served = -1
    while time.monotonic() < deadline:
        served = int(http.post(f"/v1/models/{MODEL}/predict", json=probe).json()["version"])
        if served == version:
            return served
        time.sleep(0.2)
    raise DriftloopError(f"the server still answers with v{served} a minute after v{version} "
                         "was promoted.")


def _accuracy(registry: Any, version: int, frame: pd.DataFrame) -> float:
    loaded = registry.load(MODEL, version)
    predicted = loaded.predict(frame.drop(columns=[TARGET]))
    return float(np.mean(np.asarray(predicted) == frame[TARGET].to_numpy()))


def _decision_line(result: DemoResult) -> str:
    rollout = result.rollout
    if rollout is None:
        return ("Every gate passed and it was promoted; the server swapped to it without a "
                "restart." if result.promoted else
                "A gate refused it, so the champion kept serving.")
    path = " → ".join(["shadow"] + [f"canary {share:.0%}" if to == "canary" else to
                                    for _, to, share in rollout["stages"]])
    ev = rollout["evidence"] or {}
    diff = ev.get("accuracy_difference") or {}
    numbers = (f" On {ev.get('labelled', 0)} labelled live rows its accuracy was "
               f"{diff['mean']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}] against the "
               "champion's (paired, confidence sequence)." if diff.get("rows") else "")
    return (f"Every gate passed on the holdout, so it was rolled out on live traffic: {path}."
            f"{numbers} Decision: {rollout['decision'] or rollout['stage']}.")


def story(result: DemoResult) -> list[str]:
    """A few sentences of what happened, with the numbers."""
    t = result.training
    lines = [
        f"Trained {MODEL} v{t.version} data-parallel on {t.world_size} workers in "
        f"{t.duration_s:.0f} s: test accuracy {t.metrics.get('accuracy', float('nan')):.3f}.",
    ]
    drifting = [w for w in result.windows if w["drift_detected"]]
    if drifting:
        first = drifting[0]
        lines.append(
            f"After the change the monitor flagged drift from window {first['id']} on "
            f"(share of drifted features {first['share_drifted']:.2f}); "
            f"{len(drifting)} of {len(result.windows)} windows drifted.")
    if result.trigger:
        lines.append(f"The loop fired on '{result.trigger['kind']}': {result.trigger['message']}.")
    if result.retrained_version is not None:
        cmp = result.holdout
        lines.append(
            f"It retrained v{result.retrained_version} and compared both on the same "
            f"{cmp.get('rows', 0)}-row holdout: {cmp.get('metric', 'accuracy')} "
            f"{cmp.get('champion', float('nan')):.3f} (v{t.version}) → "
            f"{cmp.get('challenger', float('nan')):.3f} (v{result.retrained_version}).")
        lines.append(_decision_line(result))
    if result.accuracy_before is not None and result.accuracy_after is not None:
        lines.append(
            f"On 2,000 fresh post-change applications: v{t.version} {result.accuracy_before:.3f}"
            f", v{result.retrained_version} {result.accuracy_after:.3f}.")
    if result.second_run:
        lines.append(f"A second loop run right after: {result.second_run}.")
    lines.append(f"Whole demo: {result.seconds:.0f} s.")
    return lines


__all__ = ["DemoResult", "credit_frame", "demo_settings", "keep_previous_store", "run_demo",
           "story"]
