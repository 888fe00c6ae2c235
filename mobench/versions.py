"""Versions of the packages a result depends on, read from metadata (no heavy imports)."""

from __future__ import annotations

import importlib.metadata
import platform

import mobench

BASE_PACKAGES = ("numpy", "pymoo")


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    versions = {"mobench": mobench.__version__, "python": platform.python_version()}
    for package in (*BASE_PACKAGES, *extra):
        if package in versions:
            continue
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def source_revision() -> dict[str, object] | None:
    """The git commit of the mobench checkout that computed a result, and whether tracked files had
    uncommitted changes (outside results/, which runs write themselves: a rerun of a reference run must
    not mark the next run's code as modified); None when mobench is not run from a git checkout (an installed wheel) or git
    is unavailable. Recorded beside the versions, so a result names the code that produced it."""
    import subprocess
    from pathlib import Path

    root = Path(mobench.__file__).resolve().parent.parent
    if not (root / ".git").exists():  # a directory in a clone, a file in a worktree
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "--no-optional-locks", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no", "--", ".", ":(exclude)results"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "modified": bool(status.strip())}


def device_description() -> str:
    """The machine the run computed on: the GPU's name when torch sees one, else the CPU (architecture,
    cores). torch is asked whenever it is installed, so a run that happened not to import it (a warm
    store) describes the same machine as one that trained."""
    import importlib.util
    import os

    torch = None
    if importlib.util.find_spec("torch") is not None:
        import torch
    if torch is not None and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()})"
    return f"cpu: {platform.machine()}, {os.cpu_count()} cores"
