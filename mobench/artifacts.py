"""Content-addressed, build-once, atomic artifact store.

An artifact (a trained policy, a value model, a judge, a selection) is identified by a hash of its
recipe: everything that changes its content. It is built in a temporary folder and renamed into
place only after its manifest is written, so a build killed at any point leaves nothing that a later
run could take for complete. A file lock keeps two processes from building the same artifact.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mobench.errors import MobenchError
from mobench.fileio import atomic_write_json, json_safe, read_json
from mobench.versions import package_versions, source_revision

HOME_ENV = "MOBENCH_HOME"
MANIFEST = "manifest.json"


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "mobench")


def artifact_id(kind: str, recipe: dict[str, Any]) -> str:
    canonical = json.dumps(json_safe(recipe), sort_keys=True, separators=(",", ":"))
    return f"{kind}-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _fsync_tree(folder: Path) -> None:
    """Flush every file under `folder` (a power loss must not publish an artifact with empty files)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class ArtifactStore:
    def __init__(self, home: Path | None = None) -> None:
        self.home = Path(home) if home is not None else default_home()
        self.root = self.home / "artifacts"

    def path(self, artifact: str) -> Path:
        return self.root / artifact

    def exists(self, artifact: str) -> bool:
        return (self.path(artifact) / MANIFEST).is_file()

    def manifest(self, artifact: str) -> dict[str, Any]:
        return read_json(self.path(artifact) / MANIFEST)

    def remove_stale_staging(self) -> list[str]:
        """Remove staging folders of killed builds whose artifact nobody is building now (its lock is
        free), e.g. of a recipe that has since changed and will never be built again; returns their names."""
        removed = []
        for staging in sorted((self.home / "tmp").glob("*")):
            artifact = staging.name.split(".", 1)[0]
            lock_path = self.home / "locks" / f"{artifact}.lock"
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(lock_path, "w") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live build
                try:
                    shutil.rmtree(staging, ignore_errors=True)
                    removed.append(staging.name)
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        return removed

    @contextmanager
    def _lock(self, artifact: str) -> Iterator[None]:
        lock_dir = self.home / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        with open(lock_dir / f"{artifact}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def get_or_build(self, kind: str, recipe: dict[str, Any],
                     build: Callable[[Path], dict[str, Any] | None],
                     allow_build: bool = True,
                     uses_packages: tuple[str, ...] = ()) -> tuple[str, Path]:
        """Return (id, folder) of the artifact, building it with `build(tmp_folder)` if missing.

        `build` writes the artifact's files into the folder it is given and returns information
        for the manifest (training curves, validation metrics, …).
        """
        artifact = artifact_id(kind, recipe)
        if self.exists(artifact):
            return artifact, self.path(artifact)
        if not allow_build:
            raise MobenchError(f"artifact {artifact} ({kind}) is not built and training is forbidden "
                               f"(--no-train); run `mobench prepare` or drop --no-train")
        with self._lock(artifact):
            if self.exists(artifact):  # another process finished it while we waited
                return artifact, self.path(artifact)
            # Staging folders of this artifact left by a killed build (kill -9 skips the cleanup below):
            # any live builder would hold the lock we now hold.
            for stale in (self.home / "tmp").glob(f"{artifact}.*"):
                shutil.rmtree(stale, ignore_errors=True)
            staging = self.home / "tmp" / f"{artifact}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            staging.mkdir(parents=True)
            try:
                started = time.perf_counter()
                info = build(staging) or {}
                manifest = {
                    "id": artifact,
                    "kind": kind,
                    "recipe": recipe,
                    "versions": package_versions(uses_packages),
                    "source": source_revision(),
                    "info": info,
                    "wall_time_s": round(time.perf_counter() - started, 3),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                _fsync_tree(staging)  # the build's own files reach the disk before the manifest names them
                atomic_write_json(staging / MANIFEST, manifest)
                final = self.path(artifact)
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():  # a folder without a manifest: an older, interrupted layout
                    shutil.rmtree(final)
                os.rename(staging, final)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        return artifact, self.path(artifact)
