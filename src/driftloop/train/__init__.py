"""Data-parallel training: launcher, worker, sharded loader, models, LR scaling.

The package imports nothing on purpose: the workers import ``driftloop.train.worker`` and the
models are built through :mod:`driftloop.models`, without pulling in the launcher (and the store).
The public entry point is :func:`driftloop.train` (``driftloop.train.launcher.train``); the
package is callable so that ``dl.train(...)`` keeps working after it was imported (the launcher
is imported on the first call; see :mod:`driftloop._callable`).
"""

from driftloop._callable import make_callable

make_callable(__name__)
