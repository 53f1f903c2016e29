"""A file-based barrier for the worker scripts of multi-process tests.

The integration tests start real Python processes with ``python -c SCRIPT``; each script
starts with :data:`BARRIER` so that the processes can line up before racing on the store.
"""

BARRIER = """
import os, time


def barrier(path, parties, timeout=90.0):
    open(path + "." + str(os.getpid()), "w").close()
    folder, prefix = os.path.split(path)
    deadline = time.monotonic() + timeout
    while sum(f.startswith(prefix + ".") for f in os.listdir(folder)) < parties:
        if time.monotonic() > deadline:  # a party failed before it got here: say so, no hang
            raise SystemExit(f"barrier {prefix}: not every one of {parties} processes arrived "
                             f"within {timeout:g} s (see the other processes' errors)")
        time.sleep(0.002)
"""
