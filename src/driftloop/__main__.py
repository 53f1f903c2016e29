"""``python -m driftloop`` is the ``driftloop`` command."""

import sys

from driftloop.cli import main

sys.exit(main())
