"""Data-parallel training: launcher, worker, sharded loader, models, LR scaling.

The package imports nothing on purpose: the workers import ``driftloop.train.worker`` and the
registry imports ``driftloop.train.models`` without pulling in the launcher (and the store).
The public entry point is :func:`driftloop.train` (``driftloop.train.launcher.train``).
"""
