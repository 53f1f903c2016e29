"""The runtime of an exported edge package (``driftloop models export … --format edge``).

The modules of this package are copied verbatim into the exported package, which runs with
onnxruntime and numpy only: :mod:`.runtime` (load the ONNX model, preprocess, predict),
:mod:`.log` (the device's own prediction log) and :mod:`.cli` (``python -m <package>
predict rows.csv``). :mod:`.shared` is the one module the export writes anew (see there).
"""

from __future__ import annotations

__all__: list[str] = []
