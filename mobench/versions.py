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
