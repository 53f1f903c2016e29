#!/usr/bin/env bash
# Proves the dependency floors in pyproject.toml: installs the package into its own venv with the
# numeric stack pinned to exactly those floors (ci/lowest-constraints.txt), checks that the pins
# took, then runs the monitor and evaluation tests (doctests included; pyproject's pytest options,
# warnings as errors among them, apply). Run by `make test-lowest`, which .ci/run calls.
#   PYTHON       interpreter for the venv (default python3)
#   VENV_LOWEST  the venv (default .venv-lowest; reused when it exists)
#   TORCH_SPEC   torch, installed first so pip never pulls another build (default torch==2.13.0)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV_LOWEST:-.venv-lowest}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
CONSTRAINTS=ci/lowest-constraints.txt
start=$SECONDS

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC"
# TORCH_SPEC again, so resolving the package cannot swap the torch just installed
"$VENV/bin/python" -m pip install --quiet -c "$CONSTRAINTS" -c ci/dev-constraints.txt -e ".[dev]" \
  "$TORCH_SPEC"
echo "test-lowest: installed in $((SECONDS - start)) s"

"$VENV/bin/python" - "$CONSTRAINTS" <<'PY'
import re
import sys
from importlib.metadata import version

bad = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
    if m is None:
        sys.exit(f"test-lowest: {sys.argv[1]}: not a NAME==VERSION pin: {line!r}")
    name, want = m.groups()
    got = version(name)
    print(f"test-lowest: {name:<14} {got:<10} (floor {want})")
    if got != want:
        bad.append(f"{name} {got} != {want}")
import torch  # noqa: E402

print(f"test-lowest: {'torch':<14} {torch.__version__}")
if bad:
    sys.exit("test-lowest: the floors did not install: " + "; ".join(bad))
PY

set +e
"$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/monitor tests/evaluate src/driftloop/monitor src/driftloop/evaluate
rc=$?
set -e
echo "test-lowest: pytest exit $rc after $((SECONDS - start)) s in all"
if [ "$rc" -eq 5 ]; then
  echo "test-lowest: pytest ran no test (exit 5) — failing." >&2
  exit 1
fi
exit "$rc"
