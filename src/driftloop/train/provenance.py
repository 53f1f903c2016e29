"""What a run was made with: package versions and the git commit of the working folder.

Examples
--------
>>> sorted(package_versions())[:3]
['driftloop', 'numpy', 'pandas']
>>> git_commit("/") is None
True
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

PACKAGES = ("driftloop", "numpy", "pandas", "scikit-learn", "torch")


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a run's numbers."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: str | os.PathLike[str]) -> str | None:
    """HEAD commit of the git checkout holding ``folder``, or None outside one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


__all__ = ["git_commit", "package_versions"]
