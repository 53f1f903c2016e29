"""Settings: ``driftloop.yaml`` in the working folder, then ``DRIFTLOOP_*`` variables, then flags.

This is the one place where defaults live. Later layers override earlier ones (nested settings
merge, so one variable changes one field):

1. the defaults below;
2. ``driftloop.yaml`` (or the file named by ``DRIFTLOOP_CONFIG``) in the working folder;
3. environment variables ``DRIFTLOOP_<FIELD>`` (``DRIFTLOOP_HOME``, ``DRIFTLOOP_STORE_URL``,
   ``DRIFTLOOP_ARTIFACTS_URL``; nested fields use a double underscore:
   ``DRIFTLOOP_TRAIN__EPOCHS=5``; lists and mappings are JSON:
   ``DRIFTLOOP_MONITOR__WEBHOOKS='["https://hooks.example/a"]'``);
4. keyword overrides passed by the CLI or the Python API.

The layers are pydantic-settings sources (YAML, environment, init keywords) merged by
pydantic-settings; :meth:`Settings.load` only chooses which environment and folder they read.
``Settings()`` alone is the defaults (plus keywords), never the environment.

Examples
--------
>>> s = Settings.load(overrides={"home": "/tmp/dl"}, environ={}, cwd="/nonexistent")
>>> s.store_url
'sqlite:////tmp/dl/driftloop.db'
>>> s.artifacts_url
'/tmp/dl/artifacts'
>>> Settings.load(environ={"DRIFTLOOP_TRAIN__EPOCHS": "7"}, cwd="/nonexistent").train.epochs
7
>>> Settings.load(environ={"DRIFTLOOP_MONITOR__WEBHOOKS": '["http://127.0.0.1:9/a"]'},
...               cwd="/nonexistent").monitor.webhooks
['http://127.0.0.1:9/a']
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from driftloop.errors import ConfigError

CONFIG_FILE = "driftloop.yaml"
FEATURES_FILE = "features.yaml"
ENV_PREFIX = "DRIFTLOOP_"


class DPSettings(BaseModel):
    """DP-SGD (``train.dp``): off unless ``epsilon`` is set; see docs/scaling-out.md.

    ``delta`` defaults to ``min(1e-5, 1 / (10 × training rows))``: always well below one over
    the number of rows (a δ near 1/n allows leaking a whole row), never looser than 1e-5.
    """

    model_config = ConfigDict(extra="forbid")

    # above ~100 a guarantee means nothing, and the PRV accountant's search for σ stalls
    epsilon: float | None = Field(
        None, gt=0, le=100, description="target ε of the whole run (at most 100); None: off")
    delta: float | None = Field(None, gt=0, lt=1, description="δ; None: min(1e-5, 1/(10·rows))")
    max_grad_norm: float = Field(1.0, gt=0, description="per-sample gradient clipping bound C")
    accountant: Literal["prv", "rdp"] = Field("prv", description="opacus privacy accountant")
    secure_mode: bool = Field(
        False, description="OS-seeded noise robust to floating-point attacks; not reproducible")


class TrainSettings(BaseModel):
    """Defaults for ``driftloop train`` / :func:`driftloop.train`."""

    model_config = ConfigDict(extra="forbid")

    model: str = "auto"
    workers: int = Field(2, ge=1)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1, description="per worker")
    lr: float = Field(1e-3, gt=0, description="learning rate at the reference batch")
    reference_batch: int = Field(64, ge=1, description="global batch at which `lr` applies")
    warmup_epochs: float = Field(1.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(5, ge=1, description="epochs without validation improvement")
    seed: int = 0
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)
    accumulate: int = Field(1, ge=1, description="micro-batches per optimiser step")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    checkpoint_every: int = Field(0, ge=0, description="optimiser steps; 0: each epoch end only")
    consistency_every: int = Field(0, ge=0, description="optimiser steps; 0: each epoch end")
    collective_timeout: float = Field(60.0, gt=0, description="seconds")
    max_restarts: int = Field(0, ge=0, description="restarts of the worker group on failure")
    dp: DPSettings = Field(
        default_factory=DPSettings,
        description="differential privacy (DP-SGD with Opacus); off unless dp.epsilon is set")


class EvaluateSettings(BaseModel):
    """Defaults for ``driftloop evaluate`` / :func:`driftloop.evaluate` and the test split."""

    model_config = ConfigDict(extra="forbid")

    resamples: int = Field(1000, ge=10, description="bootstrap resamples per interval")
    confidence: float = Field(0.95, gt=0, lt=1, description="coverage of the intervals")
    seed: int = 0
    calibration_bins: int = Field(15, ge=2, description="bins of ECE and the reliability diagram")
    slice_bins: int = Field(5, ge=2, description="quantile bins of a numeric slice column")
    slice_min_count: int = Field(30, ge=1, description="rows below which a slice is too small")
    slice_tolerance: float = Field(
        0.05, ge=0, description="gap to overall (absolute for [0, 1] metrics, else relative)"
    )
    max_slice_columns: int = Field(20, ge=0, description="feature columns sliced at training")
    robustness: bool = Field(
        True, description="measure accuracy under bounded perturbations of the numeric "
        "features (classification tables; at training and by `driftloop evaluate`)"
    )
    robustness_epsilon: list[float] = Field(
        default_factory=lambda: [0.1], min_length=1, description="L-infinity radius of the "
        "perturbations in standardised units (epsilon x std in raw units); one or a list"
    )
    robustness_steps: int = Field(10, ge=1, le=1000, description="PGD steps (step size 2.5 "
                                  "epsilon / steps)")
    robustness_max_rows: int = Field(
        10_000, ge=100, description="rows attacked at most (a seeded sample of larger sets): "
        "the 95% interval of an accuracy on 10,000 rows is at most +-0.0098 wide"
    )

    @field_validator("robustness_epsilon", mode="before")
    @classmethod
    def _epsilons(cls, value: Any) -> Any:
        values = [value] if isinstance(value, (int, float)) else value
        if isinstance(values, list):
            bad = [v for v in values if isinstance(v, (int, float)) and not 0 <= v < float("inf")]
            if bad:
                raise ValueError(f"epsilon {bad[0]!r} is not a finite number >= 0 (a radius in "
                                 "standardised units, e.g. 0.1)")
        return values

    privacy_reference_models: int = Field(
        4, ge=2, le=8, description="privacy audit (--privacy): reference models trained for "
        "offline LiRA, each on as many rows as the target, disjoint from the audited ones",
    )
    privacy_workers: int = Field(1, ge=1, le=2, description="privacy audit: workers per "
                                 "reference model")
    privacy_max_rows: int = Field(1000, ge=20, description="privacy audit: most members (and as "
                                  "many non-members) audited")
    privacy_min_rows: int = Field(50, ge=10, description="privacy audit: fewest members (and "
                                  "non-members) an audit needs")


class CheckSettings(BaseModel):
    """Defaults for ``driftloop data check`` / :func:`driftloop.check_data`."""

    model_config = ConfigDict(extra="forbid")

    max_rows_listed: int = Field(20, ge=1, description="row indices listed per finding")
    missing_warning: float = Field(0.2, ge=0, le=1, description="missing share -> warning")
    duplicate_warning: float = Field(0.01, ge=0, le=1, description="duplicate share -> warning")
    minority_warning: float = Field(
        0.1, ge=0, le=1, description="minority share -> warning (two classes; × 2/k for k)"
    )
    leakage_auc: float = Field(0.99, gt=0.5, le=1, description="single-feature AUC -> leakage")
    leakage_max_rows: int = Field(200_000, ge=100, description="rows sampled for feature AUCs")
    round_decimals: int = Field(2, ge=0, description="rounding of the near-duplicate row check")
    label_error_max_rows: int = Field(20_000, ge=100, description="rows sampled for label errors")
    label_error_folds: int = Field(5, ge=2)
    label_error_warning: float = Field(0.01, ge=0, le=1, description="label-issue rate -> warning")
    pii_sample: int = Field(2000, ge=10, description="non-missing cells sampled per text column")
    pii_min_rate: float = Field(0.05, gt=0, le=1, description="hit rate that marks a PII column")
    seed: int = 0
    # --deep: a first-pass MLP's penultimate layer screened for a backdoor cluster per class
    deep_epochs: int = Field(30, ge=1, description="epochs of the --deep first-pass model")
    deep_max_rows: int = Field(20_000, ge=100, description="rows sampled for --deep")
    backdoor_dims: int = Field(10, ge=1, description="ICA components per class")
    backdoor_max_k: int = Field(4, ge=2, description="finest k-means split of a class")
    backdoor_max_cluster_share: float = Field(
        0.35, gt=0, lt=0.5, description="largest share of a class a backdoor cluster may hold"
    )
    backdoor_min_cluster_rows: int = Field(5, ge=2, description="smallest cluster that counts")
    backdoor_min_silhouette: float = Field(
        0.05, ge=-1, le=1, description="mean silhouette of a candidate cluster's rows"
    )
    backdoor_min_reclassified: float = Field(
        0.3, gt=0, le=1,
        description="share of a cluster a model without it puts in another class",
    )
    backdoor_trigger_share: float = Field(
        0.8, gt=0, le=1, description="share of a cluster holding one value on a trigger feature"
    )
    backdoor_trigger_rest_share: float = Field(
        0.01, ge=0, lt=1, description="largest share of the other rows holding that value"
    )


CARD_FIELDS: tuple[str, ...] = (
    "owners", "license", "contact", "intended_use", "intended_users", "out_of_scope_uses",
    "factors", "ethical_considerations", "caveats",
)
"""The human parts of a model card, by key (``card:`` in driftloop.yaml, ``--set KEY=TEXT``)."""


class CardText(BaseModel):
    """The human parts of a model card (Mitchell et al. 2019); None: shown as missing."""

    model_config = ConfigDict(extra="forbid")

    owners: str | None = Field(None, description="team or role that owns the model (no names)")
    license: str | None = None
    contact: str | None = Field(None, description="a team address or channel, not a person")
    intended_use: str | None = None
    intended_users: str | None = None
    out_of_scope_uses: str | None = None
    factors: str | None = Field(None, description="groups and conditions that matter")
    ethical_considerations: str | None = None
    caveats: str | None = Field(None, description="caveats and recommendations")


class CardSettings(CardText):
    """``card:``: the human parts of every model's card, and per-model text in ``models:``."""

    models: dict[str, CardText] = Field(
        default_factory=dict, description="per model name; overrides the text above"
    )


class GateSettings(BaseModel):
    """``gates:``: the promotion policy checked on every ``driftloop models promote``."""

    model_config = ConfigDict(extra="forbid")

    metric_bounds: dict[str, float] = Field(
        default_factory=lambda: {"roc_auc": 0.5, "r2": 0.0},
        description="worst acceptable value per metric (a minimum for accuracy-like metrics, "
        "a maximum for error metrics); metrics the task does not have are ignored",
    )
    max_ece: float = Field(0.1, ge=0, le=1, description="expected calibration error, calibrated")
    slice_tolerance: float = Field(
        0.05, ge=0, description="largest gap of a flagged slice (absolute for [0, 1] metrics, "
        "else relative), as the evaluation measures it",
    )
    allow_pii: list[str] = Field(
        default_factory=list, description="feature columns allowed to hold personal data"
    )
    card_required: list[str] = Field(
        default_factory=lambda: ["intended_use", "ethical_considerations", "caveats"],
        description="model card text that must be present (keys of `card:`)",
    )
    holder_policy: Literal["superior", "non_inferior"] = Field(
        "superior", description="holder gate: superior — the candidate must be better than the "
        "alias's holder (the paired interval of the difference lies above 0); non_inferior — it "
        "may be worse by at most `margin` (the interval lies above -margin)",
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="holder gate: coverage of the two-sided paired interval "
        "of candidate - holder on the same rows",
    )
    min_holdout_rows: int = Field(
        200, ge=1, description="holder gate: fewest rows both versions must have been evaluated "
        "on; below it the gate fails",
    )
    resamples: int = Field(
        2000, ge=100, description="holder gate: paired bootstrap resamples (seeded)"
    )
    margin: float = Field(
        0.01, ge=0, description="holder gate, non_inferior policy: how much worse than the "
        "holder a candidate may be at the interval's bound (absolute for [0, 1] metrics, else "
        "relative to the holder's value)",
    )
    compare_metric: str | None = Field(
        None, description="metric compared with the holder, row by row: accuracy "
        "(classification), rmse or mae (regression); None: accuracy, or rmse (regression)"
    )
    max_robust_drop: float | None = Field(
        None, ge=0, le=1, description="robustness gate (off when None): largest accepted upper "
        "bound of the paired interval of clean - PGD accuracy"
    )
    robust_epsilon: float | None = Field(
        None, ge=0, description="robustness gate: the evaluated epsilon it reads; None: the "
        "largest one evaluated"
    )
    privacy_auc_max: float | None = Field(
        None, ge=0.5, le=1, description="privacy gate (off when None): the upper bound of the "
        "strongest membership-inference attack's AUC interval must be at most this",
    )
    # student gate (driftloop distill): off unless one of these is set
    student_max_drop: float | None = Field(
        None, ge=0, description="student gate: largest accepted upper bound of the paired "
        "interval of teacher - student in compare_metric on the same test rows (absolute for "
        "[0, 1] metrics, else relative to the teacher's value); None: not checked",
    )
    student_min_shrink: float | None = Field(
        None, ge=1, description="student gate: fewest times fewer parameters the student must "
        "have than its teacher (teacher params / student params); None: not checked",
    )
    skip: list[str] = Field(default_factory=list, description="gates not run (still reported)")

    @model_validator(mode="after")
    def _known_card_fields(self) -> GateSettings:
        unknown = [key for key in self.card_required if key not in CARD_FIELDS]
        if unknown:
            raise ValueError(
                f"card_required names {unknown[0]!r}, which is not one of {', '.join(CARD_FIELDS)}"
            )
        return self


class OutputPolicy(BaseModel):
    """What a classification answer shows the client (the prediction log keeps it all).

    ``full``: every class's probability; ``rounded``: rounded to ``decimals``; ``top_k``: the
    ``k`` most probable classes with their probabilities (rounded), no full vector; ``label``:
    the predicted class only. Less output costs clients information and buys resistance to
    model extraction and membership inference, which feed on exact probabilities."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["full", "rounded", "top_k", "label"] = Field(
        "full", description="full, rounded, top_k or label")
    k: int = Field(1, ge=1, le=100, description="classes shown by top_k")
    decimals: int = Field(2, ge=0, le=6, description="decimals of rounded and top_k")


class ServeSettings(BaseModel):
    """``serve:``: defaults of ``driftloop serve`` (the HTTP model server)."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field("127.0.0.1", description="loopback by default; elsewhere needs API keys")
    insecure: bool = Field(
        False, description="serve beyond loopback with no API key, open to anyone who reaches "
        "the port (only behind a proxy that authenticates); off, such a server refuses to start",
    )
    port: int = Field(8000, ge=0, le=65535)
    alias: str = Field("production", description="alias whose holder is served")
    runtime: Literal["auto", "torch", "int8", "onnx", "onnx_int8"] = Field(
        "auto", description="auto: the runtime `driftloop models optimize --apply` recorded "
        "for the served version, else torch; any other value is used for every version")
    optimize_max_drop: float = Field(
        0.01, ge=0, description="`models optimize`: the largest drop of the metric (paired "
        "interval's upper bound, metric units) a faster runtime may cost")
    max_batch_size: int = Field(32, ge=1, description="samples per batch (1: batching off)")
    max_latency_ms: float = Field(5.0, ge=0, description="wait after a batch's first request")
    max_queue: int = Field(2048, ge=1, description="queued samples per model; past it: 503")
    retry_after_s: int = Field(1, ge=1, description="Retry-After of a 503")
    max_instances: int = Field(1000, ge=1, description="instances in one request")
    max_body_bytes: int = Field(4_000_000, ge=1024, description="request body size limit")
    poll_s: float = Field(5.0, gt=0, description="how often the alias is checked for a move")
    log_predictions: bool = True
    log_buffer: int = Field(100_000, ge=1, description="rows buffered; past it rows are dropped")
    log_flush_ms: float = Field(500.0, gt=0, description="prediction-log write interval")
    pii_hash_key: str = Field(
        "", description="key of the HMAC-SHA256 that hashes PII columns and subject ids in "
        "the log; empty: the store's own generated key (secrets/pii.key in the artifact store)"
    )
    previous_pii_hash_keys: list[str] = Field(
        default_factory=list, description="keys used before a rotation: erasure still finds "
        "rows hashed under them",
    )
    key_cache_s: float = Field(2.0, ge=0, description="how long a checked API key is trusted")
    feedback_from_predict_keys: bool = Field(
        False, description="let keys of role predict send feedback too (by default labels "
        "need a key of role feedback or admin, so a client that predicts cannot label)",
    )
    instance: str = Field(
        "", max_length=64, description="this replica's name in the prediction log (empty: "
        "host:pid, distinct per process)"
    )
    rate_limit: str | None = Field(
        None, description="requests each API key (or the open loopback client) may send to "
        "the predict endpoints, e.g. '20/second;1000/hour' (per replica; over it: 429)")
    row_budget: str | None = Field(
        None, description="instances each API key may have predicted, e.g. '100000/day' (a "
        "query budget against model extraction; per replica; over it: 429, audited)")
    output: OutputPolicy = Field(
        default_factory=lambda: OutputPolicy(), description="what a classification answer "
        "shows: full probabilities, rounded ones, the top k classes, or the label only")
    output_by_model: dict[str, OutputPolicy] = Field(
        default_factory=dict, description="the output policy of named models (others: output)")

    @field_validator("rate_limit", "row_budget")
    @classmethod
    def _limits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a limit such as '20/second' or "
                             "'100000/day;2000/minute'") from None
        return value


class DriftSettings(BaseModel):
    """``drift:``: how ``driftloop drift`` and the monitor decide that data moved."""

    model_config = ConfigDict(extra="forbid")
    alpha: float = Field(0.05, gt=0, lt=1, description="significance after correction")
    correction: Literal["bh", "bonferroni", "none"] = Field(
        "bh", description="multiple-testing correction over all tests of one report"
    )
    bins: int = Field(100, ge=2, le=1000, description="quantile bins of a numeric reference")
    max_categories: int = Field(
        50, ge=1, description="categories kept in a reference; the rest pool into 'other'"
    )
    exact_max_rows: int = Field(
        5000, ge=0, description="raw samples kept per side for exact tests (KS) when small"
    )
    share_threshold: float = Field(
        0.5, gt=0, le=1, description="share of drifting features that makes dataset drift"
    )
    effect_floors: dict[str, float] = Field(
        default_factory=lambda: {
            "psi": 0.1, "wasserstein": 0.1, "jensen_shannon": 0.1, "missing_rate": 0.05,
        },
        description="smallest effect that can count as drift, by effect metric",
    )
    tests: dict[str, Literal["ks", "psi", "wasserstein", "chi2", "jensen_shannon"]] = Field(
        default_factory=dict,
        description="test per feature name, overriding the default by kind (ks, psi, "
        "wasserstein, chi2, jensen_shannon)",
    )


class MonitorSettings(BaseModel):
    """``monitor:``: windows of the prediction log, alerts and their webhooks."""

    model_config = ConfigDict(extra="forbid")
    window: str = Field("1000", description="rows per window (e.g. 1000) or a duration (1h, 15m)")
    min_rows: int = Field(30, ge=1, description="rows below which a window is not tested")
    webhooks: list[str] = Field(default_factory=list, description="URLs that alerts are POSTed to")
    webhook_retries: int = Field(3, ge=0)
    webhook_backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles")
    webhook_timeout_s: float = Field(5.0, gt=0)
    webhook_wait_s: float = Field(
        10.0, ge=0, description="seconds a monitoring run waits for all its webhook deliveries "
        "together; a delivery still retrying then is recorded as pending and finishes on its own")
    lock_wait_s: float = Field(
        60.0, ge=0, description="seconds a monitor or loop iteration waits for another process "
        "working on the same model (one at a time per model) before it gives up")
    performance_metric: str | None = Field(
        None, description="metric compared with the version's test value (realised, or "
        "estimated without labels); null: by the model's task, accuracy for classification "
        "and rmse for regression"
    )
    alert_detectors: list[Literal["adwin", "page_hinkley", "ddm"]] = Field(
        default_factory=lambda: ["adwin", "page_hinkley"],
        description="error-stream detectors whose change points raise a concept_drift alert "
        "(all of adwin, page_hinkley, ddm are run and reported; ddm false-alarms on stable "
        "low error rates, see benchmarks/RESULTS.md)",
    )
    performance_drop: float = Field(
        0.05, ge=0, le=1, description="how much worse than the version's test value the metric "
        "may get before it alerts: absolute for metrics in [0, 1] (accuracy), relative to the "
        "test value for unbounded ones (rmse: 0.05 = 5 % higher)"
    )
    # the detectors read the error stream: 0/1 for classification, and for regression the
    # absolute error divided by the version's test RMSE, so these are scale-free
    adwin_delta: float = Field(
        0.002, gt=0, lt=1, description="ADWIN's confidence: smaller finds fewer, surer changes"
    )
    page_hinkley_delta: float = Field(
        0.005, ge=0, description="Page-Hinkley: rise of the error (in test-RMSE units for "
        "regression) tolerated before it counts towards a change"
    )
    page_hinkley_threshold: float = Field(
        50.0, gt=0, description="Page-Hinkley: cumulative rise that signals a change"
    )
    page_hinkley_min_instances: int = Field(
        30, ge=1, description="Page-Hinkley: errors read before a change can be signalled"
    )
    ddm_warm_start: int = Field(30, ge=1, description="DDM: errors read before it can signal")
    ddm_warning_threshold: float = Field(2.0, gt=0, description="DDM: warning level (std devs)")
    ddm_drift_threshold: float = Field(3.0, gt=0, description="DDM: drift level (std devs)")
    skew_max_share: float = Field(
        0.01, ge=0, lt=1, description="training-serving skew: a feature is flagged when the "
        "lower confidence bound of the share of served rows whose value differs from the "
        "offline (point-in-time) value is above this")


class RolloutSettings(BaseModel):
    """``loop.rollout:``: how a candidate goes shadow -> canary -> the alias (or back).

    The same fields are the policy of ``driftloop models rollout`` (its options override them);
    the policy is stored with the rollout, so every serving replica follows the same one."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = Field(
        False, description="the loop (and the demo) roll a promoted challenger out through "
        "shadow and canary instead of moving the alias at once")
    shadow_rows: int | None = Field(
        500, ge=0, description="served rows the shadow stage lasts (with shadow_s: whichever "
        "comes first; 0 and shadow_s null: no shadow)")
    shadow_s: float | None = Field(None, gt=0, description="seconds the shadow stage lasts")
    shares: list[float] = Field(
        default_factory=lambda: [0.1, 0.5], description="canary shares of traffic, in order; "
        "[] goes from shadow to the decision")
    step_rows: int | None = Field(500, ge=1, description="served rows each canary share lasts")
    step_s: float | None = Field(None, gt=0, description="seconds each canary share lasts")
    policy: Literal["non_inferior", "better"] = Field(
        "non_inferior", description="promote when the candidate is at most `margin` worse "
        "(non_inferior) or better than the holder, at `confidence`")
    margin: float = Field(0.01, ge=0, lt=1, description="of accuracy (a share of rows)")
    confidence: float = Field(
        0.95, gt=0.5, lt=1, description="that every decision of the rollout is right, "
        "whenever it is taken (confidence sequences, split over the checks)")
    min_labels: int = Field(
        200, ge=1, description="labelled rows from which labels, not the label-free estimate, "
        "decide")
    use_estimate: bool = Field(
        True, description="decide on the label-free estimate and the agreement while fewer "
        "than min_labels rows are labelled (false: wait for labels)")
    max_error_rate: float = Field(
        0.01, ge=0, lt=1, description="roll back when the candidate's error rate (exceptions, "
        "timeouts) is above this with the rollout's confidence")
    max_p99_ms: float = Field(
        1000.0, gt=0, description="roll back when the candidate's p99 latency is above this "
        "with the rollout's confidence")
    timeout_ms: float = Field(
        1000.0, gt=0, description="a candidate that takes longer fails the row (in canary the "
        "holder answers it)")
    max_duration_s: float = Field(
        86400.0, gt=0, description="an undecided rollout ends after this, the holder kept")
    check_s: float = Field(2.0, gt=0, description="how often a replica judges the evidence")
    shadow_batch_ms: float = Field(
        50.0, ge=0, description="in shadow, how long the candidate's batches wait to fill: "
        "fewer, larger batches cost the holder's requests less CPU (the candidate's shadow "
        "latency includes this wait; canary batches wait serve.max_latency_ms)")


class LoopSettings(BaseModel):
    """``loop:``: when the closed loop retrains, on what data, and how often at most."""

    model_config = ConfigDict(extra="forbid")
    drift_windows: int = Field(
        2, ge=1, description="consecutive windows with dataset drift that trigger a retrain"
    )
    metric: str | None = Field(
        None, description="metric the performance triggers watch; null: by the model's task, "
        "accuracy for classification and rmse for regression"
    )
    metric_min: float | None = Field(
        None, description="worst acceptable value of the metric: retrain when it is worse "
        "(below it for accuracy, above it for rmse)"
    )
    metric_drop: float | None = Field(
        0.05, description="retrain when the metric is worse than the champion's test value "
        "by more than this: absolute for metrics in [0, 1], relative for unbounded ones (rmse)"
    )
    trigger_on: Literal["interval", "consecutive"] = Field(
        "interval", description="interval: the newest window's whole confidence interval (or "
        "label-free band) is past the bound; consecutive: the last loop.consecutive_windows "
        "windows' values are all past it"
    )
    consecutive_windows: int = Field(
        3, ge=1, description="windows in a row past the bound (loop.trigger_on = consecutive)"
    )
    schedule_s: float | None = Field(
        None, gt=0, description="retrain at least this often (seconds); None: never by schedule"
    )
    min_new_labels: int | None = Field(
        None, ge=1, description="retrain when this many new labelled rows arrived"
    )
    data_window: Literal["sliding", "expanding"] = "sliding"
    window_rows: int = Field(
        20_000, ge=1, description="labelled rows of a sliding training window"
    )
    holdout_fraction: float = Field(
        0.3, gt=0, lt=1, description="newest labelled rows kept out to compare the two versions"
    )
    cooldown_s: float = Field(3600.0, ge=0, description="no retrain sooner after the last one")
    max_per_day: int = Field(4, ge=0, description="retrains in any 24 hours")
    alias: str = Field("production", description="alias the loop promotes")
    screen_feedback: bool = Field(
        True, description="before retraining, test each sender of labels (API key) for more "
        "disagreement with the champion than its calibration and the other senders explain; "
        "hold the retrain (alert, audit) when one passes loop.max_suspect_share",
    )
    max_suspect_share: float = Field(
        0.0025, ge=0, lt=1, description="hold when the lower confidence bound of one sender's "
        "excess disagreements exceeds this share of the window's labelled rows",
    )
    screen_confidence: float = Field(0.99, gt=0.5, lt=1, description="of that lower bound")
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)


class GovernanceSettings(BaseModel):
    """``governance:``: how ``driftloop erase`` finds a data subject's rows."""

    model_config = ConfigDict(extra="forbid")
    id_column: str = Field(
        "customer_id", min_length=1, description="feature column that holds the data subject's "
        "id in the prediction log and the loop's dataset snapshots (--id-column overrides it)",
    )


_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as ``"30d"``, ``"12h"``, ``"90m"`` or ``"45s"``.

    >>> duration_seconds("2d"), duration_seconds("90m")
    (172800, 5400)
    """
    value, unit = text[:-1].strip(), text[-1:].lower()
    if unit not in _DURATION_UNITS or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{text!r} is not a duration: write a whole number and a unit "
                         "(s, m, h, d or w), e.g. '30d'")
    return int(value) * _DURATION_UNITS[unit]


class EntitySettings(BaseModel):
    """One entity of ``features.entities``: what a feature value belongs to (a customer...)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME_PATTERN, description="the entity's name, e.g. customer")
    keys: list[str] = Field(
        min_length=1, description="the column(s) that identify one entity, e.g. [customer_id]; "
        "requests and training tables carry them, models never see them",
    )
    description: str = ""


class FeatureViewSettings(BaseModel):
    """One feature view of ``features.views``: columns of one source, keyed by an entity."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME_PATTERN, description="the view's name, e.g. customer_stats")
    entity: str = Field(description="the entity (features.entities) its rows belong to")
    source: str = Field(
        "", description="a CSV or Parquet file or folder (a path or any fsspec URL) holding the "
        "entity keys, the event time and the features (or give `table`)",
    )
    table: str | None = Field(
        None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$",
        description="instead of a file: a table (or view; `schema.table` allowed) of the SQL "
        "database at `database_url`, read column by column (never a query)",
    )
    database_url: str = Field(
        "", description="the SQLAlchemy URL `table` is read from; empty: the store's database",
    )
    event_time: str = Field(description="column: when each value became true in the world")
    created_time: str | None = Field(
        None, description="column: when each value was written (ingested); a value written "
        "after a training row's time never reaches that row (back-filled values do not leak)",
    )
    ttl: str | None = Field(
        None, description="how long a value stays valid after its event time, e.g. '30d'; "
        "older values are missing, never stale (empty: no expiry)",
    )
    features: list[str] = Field(min_length=1, description="the feature columns it serves")
    description: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> FeatureViewSettings:
        if bool(self.source) == bool(self.table):
            raise ValueError(f"features.views {self.name}: give either source (a file, folder "
                             "or URL) or table (a SQL table), exactly one")
        return self

    @field_validator("ttl")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value

    @property
    def ttl_seconds(self) -> int | None:
        """The TTL in seconds (None: values never expire)."""
        return None if self.ttl is None else duration_seconds(self.ttl)


class FeatureSettings(BaseModel):
    """``features:``: entities, feature views and where their latest values are served from."""

    model_config = ConfigDict(extra="forbid")
    entities: list[EntitySettings] = Field(default_factory=list)
    views: list[FeatureViewSettings] = Field(default_factory=list)
    online_url: str = Field(
        "", description="the online table: empty for the store's database, or a Redis URL "
        "(redis://host:port/db) when the redis extra is installed",
    )
    missing: Literal["refuse", "impute"] = Field(
        "refuse", description="a served request whose entity has no value (or only one older "
        "than the view's TTL): refuse it with a 4xx naming the entity, or impute as training did",
    )

    @model_validator(mode="after")
    def _consistent(self) -> FeatureSettings:
        entities = {e.name: e for e in self.entities}
        if len(entities) != len(self.entities):
            raise ValueError("features.entities: two entities have the same name")
        names = [v.name for v in self.views]
        if len(set(names)) != len(names):
            raise ValueError("features.views: two views have the same name")
        for view in self.views:
            entity = entities.get(view.entity)
            if entity is None:
                raise ValueError(f"features.views {view.name}: entity {view.entity!r} is not "
                                 "declared in features.entities")
            special = {*entity.keys, view.event_time, view.created_time}
            clash = sorted(special & set(view.features))
            if clash:
                raise ValueError(f"features.views {view.name}: {', '.join(clash)} is a key or "
                                 "time column, not a feature")
        return self

    def view(self, name: str) -> FeatureViewSettings:
        """The view called ``name`` (KeyError when none is declared)."""
        for view in self.views:
            if view.name == name:
                return view
        raise KeyError(name)

    def entity(self, name: str) -> EntitySettings:
        """The entity called ``name`` (KeyError when none is declared)."""
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(name)


class SecuritySettings(BaseModel):
    """``security:``: what this machine's operator allows a stored version to run."""

    model_config = ConfigDict(extra="forbid")
    model_factories: list[str] = Field(
        default_factory=list,
        description="module prefixes of model factories ('package.module:function') that a "
        "stored version may import when it loads (e.g. ['acme.models']); the built-in models "
        "are always allowed; anything else is refused, since importing runs its code",
    )


class UISettings(BaseModel):
    """``ui:``: the dashboard's workbench (uploads and the jobs it starts)."""

    model_config = ConfigDict(extra="forbid")
    upload_limit_bytes: int = Field(
        2 * 1024**3, ge=1, description="the largest file the workbench accepts (shown on the "
        "page); a larger upload is refused as soon as it passes the limit")
    train_epochs: int = Field(20, ge=1, description="epochs of a training the workbench starts")
    train_workers: int = Field(1, ge=1, description="training processes of a workbench job")


class Settings(BaseSettings):
    """All driftloop settings; build with :meth:`Settings.load`."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__",
        case_sensitive=False, validate_default=True,
    )

    home: str = ".driftloop"
    store_url: str = ""
    artifacts_url: str = ""
    train: TrainSettings = Field(default_factory=TrainSettings)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)
    check: CheckSettings = Field(default_factory=CheckSettings)
    gates: GateSettings = Field(default_factory=GateSettings)
    card: CardSettings = Field(default_factory=CardSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    governance: GovernanceSettings = Field(default_factory=GovernanceSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    ui: UISettings = Field(default_factory=UISettings)
    actor: str = Field(
        "", max_length=128, description="who the audit log records (a role or service id, not a "
        "name); empty: a pseudonymous id of the operating-system user",
    )

    @model_validator(mode="after")
    def _derive_locations(self) -> Settings:
        # store and artifacts default to places inside `home`, resolved here and only here
        if not self.store_url:
            self.store_url = f"sqlite:///{Path(self.home) / 'driftloop.db'}"
        if not self.artifacts_url:
            self.artifacts_url = str(Path(self.home) / "artifacts")
        return self

    @property
    def runs_dir(self) -> Path:
        """Folder that holds one sub-folder per training run."""
        return Path(self.home) / "runs"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # `Settings(...)` is the defaults plus its keywords; the layers come in through `load`
        return (init_settings,)

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Merge defaults, ``driftloop.yaml``, ``DRIFTLOOP_*`` and ``overrides`` (in that order).

        ``environ`` (default ``os.environ``) and ``cwd`` (default: the working folder) say where
        the variables and ``driftloop.yaml`` are read from.
        """
        environ = os.environ if environ is None else environ
        init = {k: v for k, v in (overrides or {}).items() if v is not None}
        try:
            layers = [_yaml_source(cls, environ, cwd), _MappingEnvSource(cls, environ),
                      InitSettingsSource(cls, init_kwargs=init)]
            merged: dict[str, Any] = {}
            for i, layer in enumerate(layers):  # later layers win; nested mappings merge
                _deep_update(merged, layer())
                if i == 0:
                    _features_file(merged, cwd)
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None
        except ValueError:  # a DRIFTLOOP_* variable that should hold JSON does not
            raise ConfigError(_bad_json(environ)) from None

    def updated(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with ``overrides`` (nested mappings merge) applied and validated again.

        >>> base = Settings.load(environ={}, cwd="/nonexistent")
        >>> base.updated({"train": {"epochs": 2}}).train.epochs
        2
        """
        merged = self.model_dump()
        _deep_update(merged, {k: v for k, v in overrides.items() if v is not None})
        try:
            return type(self).model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None


class _MappingEnvSource(EnvSettingsSource):
    """``DRIFTLOOP_*`` variables read from a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = {k: v for k, v in environ.items() if k != ENV_PREFIX + "CONFIG"}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._environ.items()}  # names are case-insensitive


def _bad_json(environ: Mapping[str, str]) -> str:
    bad = []
    for key, value in environ.items():
        if key.upper().startswith(ENV_PREFIX) and value.strip()[:1] in "[{":
            try:
                json.loads(value)
            except ValueError:
                bad.append(key)
    named = ", ".join(bad) or "a DRIFTLOOP_* variable"
    return (f"{named} must hold JSON (a list or mapping setting), e.g. "
            """DRIFTLOOP_MONITOR__WEBHOOKS='["https://hooks.example/a"]'.""")


def _yaml_source(
    settings_cls: type[BaseSettings], environ: Mapping[str, str],
    cwd: str | os.PathLike[str] | None,
) -> PydanticBaseSettingsSource:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    path = Path(explicit) if explicit else Path(cwd or os.getcwd()) / CONFIG_FILE
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{ENV_PREFIX}CONFIG names '{path}', which does not exist.")
        return InitSettingsSource(settings_cls, init_kwargs={})
    try:
        source = YamlConfigSettingsSource(settings_cls, yaml_file=path)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}. Fix the file or remove it.") from None
    except (TypeError, ValueError):  # the YAML holds something other than a mapping
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}.") \
            from None
    return source


def _features_file(merged: dict[str, Any], cwd: str | os.PathLike[str] | None) -> None:
    """Read ``features.yaml`` (the ``features:`` settings on their own) into ``merged``."""
    path = Path(cwd or os.getcwd()) / FEATURES_FILE
    if not path.is_file():
        return
    if "features" in merged:
        raise ConfigError(f"features are declared twice: in {path} and under 'features:' in "
                          f"{CONFIG_FILE}. Keep one of the two.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}. Fix the file or remove it.") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must hold a mapping (entities:, views:, ...), got "
                          f"{type(data).__name__}.")
    merged["features"] = dict(data)


def _deep_update(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_update(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        lines.append(f"setting '{field}': {err['msg']} (got {got!r})")
    return "; ".join(lines) + ". Fix driftloop.yaml, the DRIFTLOOP_* variable or the flag."


__all__ = [
    "CARD_FIELDS",
    "CardSettings",
    "CardText",
    "CheckSettings",
    "DriftSettings",
    "EntitySettings",
    "EvaluateSettings",
    "FeatureSettings",
    "FeatureViewSettings",
    "GateSettings",
    "GovernanceSettings",
    "LoopSettings",
    "MonitorSettings",
    "RolloutSettings",
    "ServeSettings",
    "duration_seconds",
    "Settings",
    "TrainSettings",
]
