"""``python -m driftloop.cli`` is the ``driftloop`` command, as ``python -m driftloop`` is."""

import sys

from driftloop.cli import main

sys.exit(main())
