"""The pieces an edge package shares with the server, imported from driftloop in this tree.

:func:`driftloop.serve.export.export_edge_wheel` writes a different ``shared.py`` into the
package: the same names imported from verbatim copies of these modules placed beside it
(``_features.py``, ``_validation.py``, ``_hashing.py``), so the package needs no driftloop,
while the arithmetic, the checks and their messages are the server's own code.
"""

from __future__ import annotations

from driftloop.data.hashing import hash_value
from driftloop.serve.features import ColumnTransform
from driftloop.serve.validation import RequestInvalid, RequestValidator, subject_ids

__all__ = ["ColumnTransform", "RequestInvalid", "RequestValidator", "hash_value", "subject_ids"]
