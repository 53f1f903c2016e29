"""A file-based barrier for the worker scripts of multi-process tests.

The integration tests start real Python processes with ``python -c SCRIPT``; each script
starts with :data:`BARRIER` so that the processes can line up before racing on the store.
"""

BARRIER = """
import os, time


def barrier(path, parties):
    open(path + "." + str(os.getpid()), "w").close()
    folder, prefix = os.path.split(path)
    while sum(f.startswith(prefix + ".") for f in os.listdir(folder)) < parties:
        time.sleep(0.002)
"""
