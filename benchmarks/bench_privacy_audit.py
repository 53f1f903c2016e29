"""The privacy audit's two attacks on an overfit, a weight-decayed and a barely trained model.

What is measured
    ``driftloop evaluate NAME:V DATA --privacy`` as a user runs it
    (:func:`driftloop.loop.privacy_audit.evaluate_with_privacy`) on digits models trained for
    real with ``driftloop.train`` (one worker; the first 250 digits, split 70/15/15 by
    training; the next 400 digits are DATA, rows never trained on):

    * ``overfit``: 30 epochs at lr 0.01, no weight decay, no early stop;
    * ``weight_decay``: the same with AdamW weight decay ``--weight-decay`` (default 1.0);
    * ``dp_eps8``, ``dp_eps1``: the same trained with DP-SGD at ε = 8 and ε = 1;
    * ``barely``: one epoch at lr 1e-5.

    For each, both attacks: ROC AUC and TPR at 1 % FPR with their 95 % bootstrap intervals, and
    the exposed members. The baseline is the loss-threshold attack (Yeom et al. 2018); driftloop's
    reference-model attack is offline LiRA (Carlini et al. 2022). ``ratio`` is LiRA's AUC
    advantage over chance divided by the loss attack's: (AUC_lira − 0.5) /
    (AUC_loss − 0.5); ``tpr_ratio`` the same for TPR at 1 % FPR.

How to run (from the repository root; a few minutes on 2 cores)::

    PYTHONPATH=src .venv/bin/python benchmarks/bench_privacy_audit.py
    PYTHONPATH=src .venv/bin/python benchmarks/bench_privacy_audit.py --reference-models 2

Prints JSON lines on stdout, one per model and attack, then one ratio line per model. Always
exits 0 (it is a measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from driftloop.config import Settings  # noqa: E402
from privacy_models import BARELY, OVERFIT, train_and_audit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-models", type=int, default=4)
    parser.add_argument("--weight-decay", type=float, default=1.0)
    args = parser.parse_args()
    configs = {"overfit": OVERFIT,
               "weight_decay": {**OVERFIT, "weight_decay": args.weight_decay},
               "dp_eps8": {**OVERFIT, "dp_epsilon": 8.0},
               "dp_eps1": {**OVERFIT, "dp_epsilon": 1.0},
               "barely": BARELY}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = Settings.load(overrides={"home": str(home / "home"),
                                            "train": {"patience": 100}}, environ={}, cwd=home)
        for name, config in configs.items():
            kwargs = dict(config)
            decay = kwargs.pop("weight_decay", None)
            run_settings = (settings if decay is None
                            else settings.updated({"train": {"weight_decay": decay}}))
            started = time.perf_counter()
            result, report = train_and_audit(run_settings, home, name,
                                             reference_models=args.reference_models, **kwargs)
            seconds = time.perf_counter() - started
            attacks = report.privacy["attacks"]
            for attack, a in attacks.items():
                print(json.dumps({
                    "model": name, "attack": attack, "auc": a["auc"],
                    "tpr_at_1pct_fpr": a["tpr_at_fpr"]["0.01"], "exposed": a["exposed"],
                    "members": a["members"], "non_members": a["non_members"],
                    "test_accuracy": result.metrics.get("accuracy"),
                    "epsilon_spent": (result.differential_privacy or {}).get("epsilon"),
                    "reference_models": args.reference_models,
                }), flush=True)
            loss, lira = attacks["loss"], attacks["lira"]
            adv_loss, adv_lira = loss["auc"]["value"] - 0.5, lira["auc"]["value"] - 0.5
            tpr_loss = loss["tpr_at_fpr"]["0.01"]["value"]
            tpr_lira = lira["tpr_at_fpr"]["0.01"]["value"]
            print(json.dumps({
                "model": name, "auc_advantage_loss": round(adv_loss, 4),
                "auc_advantage_lira": round(adv_lira, 4),
                "ratio": round(adv_lira / adv_loss, 3) if abs(adv_loss) > 1e-9 else None,
                "tpr_ratio": round(tpr_lira / tpr_loss, 3) if tpr_loss > 0 else None,
                "seconds_train_and_audit": round(seconds, 1),
            }), flush=True)


if __name__ == "__main__":
    main()
