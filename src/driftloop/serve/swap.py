"""Which version of a model is served, and swapping it when its alias moves.

A :class:`ModelSlot` holds one model's :class:`ServedModel` (version, runtime, validator,
batcher). :meth:`ModelSlot.reload` asks the registry which version the alias points at; when it
moved, the new version is loaded, its runtime built and warmed in a thread (the event loop keeps
serving the old one), and then the slot's ``current`` is replaced in one assignment. A request
reads ``current`` once and enqueues on that version's batcher without yielding to the event
loop in between, so it finishes on the version it started with; the old batcher answers what
it holds, then stops.

Polling (:meth:`ModelSlot.check`, every ``poll_s`` seconds) is one store query per model
(:meth:`~driftloop.store.Store.serving_state`): the version the alias points at and the model's
reload generation. A moved alias swaps as above. ``POST /v1/admin/reload`` on any replica (or
uvicorn worker) bumps the generation in the store and reloads there at once; every other
replica sees the new generation at its next poll and reloads too (``force``: the version is
loaded, verified and warmed again even when the alias did not move), so an admin reload
through a load balancer reaches every replica within ``poll_s``.

When the alias is deactivated (``driftloop models deactivate``: its row is removed), the next
poll takes the served version down the same way: ``current`` becomes None, predictions answer
503 (code ``deactivated``) with a message naming the model and how to restore it, and
``/v2/health/ready`` is false. A later promotion comes back through the normal swap. An alias
that merely cannot be read (the store is down) keeps the served version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import ServeSettings
from driftloop.data.prepare import apply_preprocessing
from driftloop.data.preprocess import TargetEncoder
from driftloop.http.errors import logged_error
from driftloop.models.loaded import LoadedModel
from driftloop.registry import Registry
from driftloop.registry.aliases import deactivated_message, deactivation
from driftloop.registry.evidence import logged_pii_columns
from driftloop.registry.runtime_choice import applied_runtime
from driftloop.serve.batcher import Batcher
from driftloop.serve.features import ColumnTransform
from driftloop.serve.metrics import ServeMetrics
from driftloop.serve.runtimes import Runtime, build_runtime, finish
from driftloop.serve.validation import RequestInvalid, RequestValidator
from driftloop.store import VersionRecord
from driftloop.store.serving import ServingState

logger = logging.getLogger("driftloop.serve")


@dataclass
class ServedModel:
    """One loaded version with everything a request needs."""

    name: str
    version: int
    loaded: LoadedModel
    runtime: Runtime
    validator: RequestValidator | None  # None: an image/sequence model (arrays, no schema)
    batcher: Batcher
    pii: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)
    on_unknown: Callable[[str, int], object] = lambda feature, count: None

    @property
    def columns(self) -> ColumnTransform:
        """The preprocessing of request columns (numpy, same arithmetic as training's)."""
        if self._columns is None:
            self._columns = ColumnTransform(self.loaded.bundle.preprocessor or {})
        return self._columns

    _columns: ColumnTransform | None = None
    _encoder: TargetEncoder | None = None

    @property
    def task(self) -> str:
        return self.loaded.task

    def infer(self, parts: list[Any]) -> np.ndarray:
        """The batcher's ``infer``: each request's rows (feature columns of a table model, an
        array otherwise) -> calibrated probabilities (or standardised values), one row each.

        The columns of the whole batch are joined and preprocessed once (numpy, see
        :mod:`driftloop.serve.features`), here in the inference thread, not per request on the
        event loop."""
        if self.validator is not None:
            merged = {name: [v for part in parts for v in part[name]]
                      for name in self.validator.names}
            x, x_cat, unknown = self.columns.transform(merged)
            for feature, count in unknown.items():
                self.on_unknown(feature, count)
        else:  # image / sequence arrays: the fitted scaler
            x, x_cat = self.preprocess(np.concatenate(parts) if len(parts) > 1 else parts[0])
        return self.compute(x, x_cat)

    def preprocess(self, frame: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, Any]:
        preprocessor = self.loaded.bundle.preprocessor
        if preprocessor is None:
            return np.asarray(frame, np.float32), None
        return apply_preprocessing(preprocessor, frame)

    def compute(self, x: np.ndarray, x_cat: np.ndarray | None) -> np.ndarray:
        """Preprocessed arrays -> outputs."""
        return finish(self.task, self.runtime.logits(x, x_cat), self.loaded.temperature)

    def arrays_from_instances(self, instances: Any) -> np.ndarray:
        """Instances of an array model: nested lists of numbers of the trained shape."""
        shape = list(self.loaded.bundle.model_inputs.get("shape", []))
        try:
            x = np.asarray(instances, dtype=np.float32)
        except (TypeError, ValueError):
            raise RequestInvalid(f"'instances' must be arrays of numbers of shape {shape}.",
                                 code="wrong_type", fields=["instances"]) from None
        if x.ndim != len(shape) + 1 or list(x.shape[1:]) != shape:
            raise RequestInvalid(f"each instance must have shape {shape}, got "
                                 f"{list(x.shape[1:])}.", code="bad_shape", fields=["instances"])
        if not np.isfinite(x).all():
            raise RequestInvalid("instances hold NaN or infinite values; send finite numbers.",
                                 code="not_finite", fields=["instances"])
        return x

    def answer(self, outputs: np.ndarray) -> dict[str, list[Any]]:
        """``predictions`` (labels or values) and, for classification, ``probabilities``."""
        if self.task == "regression":
            return {"predictions": self.loaded.to_original_scale(outputs).tolist()}
        if self._encoder is None:
            self._encoder = TargetEncoder.from_json(self.loaded.bundle.target_encoder)
        labels = self._encoder.inverse_transform(outputs.argmax(axis=1))
        return {"predictions": np.asarray(labels).tolist(), "probabilities": outputs.tolist()}


class ModelSlot:
    """The served version of model ``name`` under ``alias``, swapped when the alias moves."""

    def __init__(self, name: str, registry: Registry, settings: ServeSettings,
                 metrics: ServeMetrics, *, version: int | None = None) -> None:
        self.name = name
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.pinned = version
        self.current: ServedModel | None = None
        self.error: str | None = None
        self.deactivated = False  # the alias was removed (`driftloop models deactivate`)
        self.generation: int | None = None  # the reload generation seen last (None: not polled)
        self._lock = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()

    def target(self) -> VersionRecord | None:
        """The version that should be served now (the alias holder, or the pinned version)."""
        if self.pinned is not None:
            return self.registry.get(self.name, self.pinned)
        return self.registry.holder(self.name, self.settings.alias)

    def absent(self) -> tuple[str, bool]:
        """Why no version holds the alias, and whether it was deactivated (not yet promoted)."""
        stopped = deactivation(self.registry.moves(self.name, self.settings.alias))
        if stopped is not None:
            return deactivated_message(stopped), True
        return (f"no version of {self.name} holds alias {self.settings.alias!r}; promote one "
                f"with `driftloop models promote {self.name} VERSION --to "
                f"{self.settings.alias}`"), False

    async def start(self) -> bool:
        """The first load: note the reload generation first (a reload signalled from now on
        reloads again at the next poll), then :meth:`reload`."""
        try:
            state = await asyncio.to_thread(self.registry.store.serving_state, self.name,
                                            self.settings.alias)
            self.generation = state.generation
        except Exception:  # noqa: BLE001 - the store may be down: the first poll notes it
            pass
        return await self.reload()

    async def check(self) -> bool:
        """One poll: one store query; reload when the alias moved, or force a reload when
        another replica signalled one (a new generation). True when something was reloaded."""
        try:
            state = await asyncio.to_thread(self.registry.store.serving_state, self.name,
                                            self.settings.alias)
        except Exception as exc:  # noqa: BLE001 - the store may be down; keep serving
            self.error = logged_error(  # clients see the error id only
                logger, f"cannot read alias {self.settings.alias!r} of {self.name}", exc)
            return False
        seen, self.generation = self.generation, state.generation
        if seen is not None and state.generation > seen:
            self.metrics.reloads.labels(self.name, "signal").inc()
            await self.reload(force=True)
            return True
        if self._settled(state):
            return False
        await self.reload()
        return True

    def _settled(self, state: ServingState) -> bool:
        """Whether a poll that read ``state`` has nothing to do."""
        if self.current is None:  # nothing served: retry, unless the alias is known removed
            return state.version is None and self.deactivated
        if self.pinned is None and state.version != self.current.version:
            return False
        self.error = None  # serving what we should: an earlier read error is over
        return True

    async def reload(self, *, force: bool = False) -> bool:
        """Serve the alias's version if it moved (``force``: load it again even if it did not);
        True when the served version changed (a new one swapped in, or the served one taken
        down because its alias was deactivated) or, with ``force``, was loaded again."""
        async with self._lock:
            try:
                record = await asyncio.to_thread(self.target)
                if record is None:
                    self.error, self.deactivated = await asyncio.to_thread(self.absent)
            except Exception as exc:  # noqa: BLE001 - the store may be down; keep serving
                # clients see the error id only; the detail goes to the log
                self.error = logged_error(
                    logger, f"cannot read alias {self.settings.alias!r} of {self.name}", exc)
                return False
            if record is None:
                return self._take_down()
            self.deactivated = False
            if (not force and self.current is not None
                    and self.current.version == record.version):
                return False
            try:
                served = await asyncio.to_thread(self.build, record)
            except Exception as exc:  # noqa: BLE001 - a bad version must not stop the old one
                self.error = logged_error(logger, f"cannot load {self.name} v{record.version}",
                                          exc)
                return False
            old, self.current = self.current, served  # the swap: one assignment
            self.error = None
            self.metrics.version.labels(self.name).set(served.version)
            if old is not None:
                if old.version != served.version:
                    self.metrics.swaps.labels(self.name).inc()
                self.retire(old)
            return True

    def _take_down(self) -> bool:
        """Stop serving when the alias was removed (a deactivation): new requests get 503 with
        :attr:`error`; requests already queued finish on the old version."""
        if self.current is None:
            return False
        old, self.current = self.current, None  # one assignment, like a swap
        self.metrics.version.labels(self.name).set(0)
        logger.warning(self.error)
        self.retire(old)
        return True

    def retire(self, old: ServedModel) -> None:
        """Close ``old``'s batcher in the background (it answers what it holds first)."""
        task = asyncio.get_running_loop().create_task(old.batcher.close())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    async def poll(self) -> None:
        """:meth:`check` every ``poll_s`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.settings.poll_s)
            await self.check()

    async def close(self) -> None:
        if self.current is not None:
            await self.current.batcher.close()
        for task in list(self._retired):
            await task

    def runtime_for(self, record: VersionRecord) -> str:
        """``serve.runtime`` when set to a runtime; with ``auto`` (the default) the runtime
        ``driftloop models optimize --apply`` recorded for ``record``, else ``torch``."""
        if self.settings.runtime != "auto":
            return self.settings.runtime
        return applied_runtime(self.registry.audit, record) or "torch"

    def build(self, record: VersionRecord) -> ServedModel:
        """Load ``record``, build its runtime, validator and batcher, and warm it (blocking)."""
        loaded = self.registry.load(self.name, record.version)
        bundle = loaded.bundle
        runtime = build_runtime(self.runtime_for(record), loaded.module, bundle.input_kind,
                                bundle.model_inputs)
        validator = None
        if bundle.schema is not None:
            validator = RequestValidator(bundle.schema, bundle.preprocessor,
                                         max_instances=self.settings.max_instances)
        pii, notes = logged_pii_columns(self.registry.store, self.registry.artifacts, record)
        s = self.settings

        def observe(size: int, reason: str, waits: list[float]) -> None:
            self.metrics.batch(self.name, size, reason, waits)

        def on_unknown(feature: str, count: int) -> None:
            self.metrics.unknown_categories.labels(self.name, feature).inc(count)

        batcher = Batcher(lambda parts: served.infer(parts), max_batch_size=s.max_batch_size,
                          max_latency_ms=s.max_latency_ms, max_queue=s.max_queue,
                          retry_after_s=s.retry_after_s, observe=observe)
        served = ServedModel(self.name, record.version, loaded, runtime, validator, batcher,
                             pii, notes, on_unknown)
        _warm(served)
        return served


def _warm(served: ServedModel) -> None:
    """Run the runtime once on a full batch so the first request pays no one-off cost."""
    inputs = served.loaded.bundle.model_inputs
    n = served.batcher.max_batch_size
    if served.loaded.bundle.input_kind == "table":
        x = np.zeros((n, int(inputs.get("n_numeric", 0))), np.float32)
        x_cat = np.zeros((n, len(inputs.get("cardinalities", []))), np.int64)
        served.compute(x, x_cat)
    else:
        served.compute(np.zeros((n, *inputs.get("shape", [])), np.float32), None)


__all__ = ["ModelSlot", "ServedModel"]
