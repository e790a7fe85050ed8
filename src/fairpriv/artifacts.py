"""Intervention artifacts: a folder of safetensors files plus a ``manifest.json`` that says who made it.

The manifest is the safety catch of the design: it names the intervention, its version and config, the base model
the artifact was fitted on, the sha256 of every file, and the facts the fit reported (a DP epsilon, a count of
zeroed weights...). ``load_artifact`` refuses an artifact made by another intervention and verifies every file, and
artifacts are built in a temporary folder and renamed into place, so a failed fit never leaves a usable half.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fairpriv.hashing import canonical_hash, sha256_file
from fairpriv.paths import not_writable, writable_dir

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1


class ArtifactError(RuntimeError):
    """An artifact that is missing, corrupt, or made by a different intervention."""


@dataclasses.dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict[str, Any]

    @property
    def hash(self) -> str:
        return self.manifest["artifact_hash"]

    def file(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise ArtifactError(f"artifact {self.path} has no file '{name}' (has: {sorted(self.manifest['files'])})")
        return self.path / name

    def load_tensors(self, name: str) -> dict[str, Any]:
        from safetensors.torch import load_file

        return load_file(str(self.file(name)))


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("fairpriv", "torch", "transformers", "peft", "opacus"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def cache_key(name: str, version: str, config: dict, base_model: dict) -> str:
    """Everything that determines a fitted artifact, hashed: the on-demand cache folder's name. A config value
    that names a local file (``data=my.csv``) contributes the file's content, so an edited file is fitted again."""
    return canonical_hash([name, version, config, base_model, library_versions(), config_file_hashes(config)])


def config_file_hashes(config: dict) -> dict[str, str]:
    """sha256 of every config value that is the path of an existing file."""
    return {k: sha256_file(Path(v)) for k, v in sorted(config.items()) if isinstance(v, str) and Path(v).is_file()}


def _file_hashes(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def build_artifact(dest: Path, fit: Callable[[Path], dict], identity: dict[str, Any], owned: bool = False) -> Artifact:
    """Run ``fit(tmp_dir)``, write the manifest, then rename the folder to ``dest`` (atomic on one filesystem).

    ``identity`` holds intervention, intervention_version, config and base_model. An existing ``dest`` is replaced
    only when it is empty or an artifact of the same intervention, unless ``owned`` (a cache folder fairpriv made).
    """
    new_parents = missing_folders(Path(dest).parent)
    try:
        check_destination(dest, identity["intervention"], owned)
        clear_stale(dest)
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        _fit_into(dest, fit, identity, owned)
    except BaseException:
        remove_if_empty(new_parents)  # a refused or failed fit leaves no folders it created on the way
        raise
    return load_artifact(dest, identity["intervention"])


def _fit_into(dest: Path, fit: Callable[[Path], dict], identity: dict[str, Any], owned: bool) -> None:
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        facts = fit(tmp) or {}
        files = _file_hashes(tmp)
        manifest = _manifest(identity, facts, files)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        if not owned:  # the folder may have been filled while fitting
            check_replaceable(dest, identity["intervention"])
        _replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first."""
    folder = Path(folder).absolute()
    return [f for f in [folder, *folder.parents] if not f.exists()]


def remove_if_empty(folders: list[Path]) -> None:
    """Remove each folder (deepest first) that exists and is empty; stop at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            return


def check_destination(dest: Path, intervention: str, owned: bool = False) -> None:
    """Refuse, before any fitting, a destination that cannot be written or holds files fairpriv must not delete."""

    new_parents = missing_folders(Path(dest).parent)
    reason = writable_dir(Path(dest).parent)  # creates the parents to find out; a check leaves none behind
    remove_if_empty(new_parents)
    if reason is not None:
        raise ArtifactError(not_writable(Path(dest).parent, reason))
    if not owned:
        check_replaceable(Path(dest), intervention)


def check_replaceable(dest: Path, intervention: str) -> None:
    """``dest`` may be absent, an empty folder, or an artifact of ``intervention`` (replaced when the fit ends)."""
    if not dest.exists() and not dest.is_symlink():
        return
    if not dest.is_dir():
        raise ArtifactError(f"the artifact destination {dest} is an existing file, not a folder; "
                            "choose an empty or new folder for the artifact (--out)")
    reason = None if not any(dest.iterdir()) else _foreign_reason(dest, intervention)
    if reason is not None:
        raise ArtifactError(f"the artifact destination {dest} is not empty and {reason}, so fairpriv will not "
                            "replace it (nothing was deleted); choose an empty or new folder for the artifact (--out)")


def _foreign_reason(folder: Path, intervention: str) -> str | None:
    """Why a non-empty folder is not an artifact of ``intervention`` (``None`` when it is one)."""
    if not (folder / MANIFEST).is_file():
        return f"has no {MANIFEST} (it is not a fairpriv artifact)"
    try:
        made_by = read_manifest(folder).get("intervention")
    except ArtifactError:
        return f"its {MANIFEST} is not a valid fairpriv manifest"
    return None if made_by == intervention else f"holds an artifact of intervention '{made_by}', not '{intervention}'"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clear_stale(dest: Path) -> list[Path]:
    """Remove the ``.NAME.tmp-PID`` / ``.NAME.old-PID`` folders of ``dest`` left by processes that are gone
    (never those of a live process, nor this one's)."""
    pattern = re.compile(rf"\.{re.escape(dest.name)}\.(?:tmp|old)-(\d+)")
    removed = []
    for leftover in sorted(Path(dest).parent.iterdir()) if Path(dest).parent.is_dir() else []:
        match = pattern.fullmatch(leftover.name)
        if match and int(match[1]) != os.getpid() and not pid_alive(int(match[1])):
            log.info("fairpriv: removing %s, left by process %s, which is gone", leftover, match[1])
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
    return removed


def _manifest(identity: dict, facts: dict, files: dict[str, str]) -> dict[str, Any]:
    content = {"intervention": identity["intervention"], "config": identity["config"], "files": files}
    return {
        "fairpriv_artifact": FORMAT,
        **identity,
        "facts": facts,
        "files": files,
        "artifact_hash": canonical_hash(content),
        "created_unix": int(time.time()),
        "library_versions": library_versions(),
    }


def _replace_dir(tmp: Path, dest: Path) -> None:
    if dest.exists():  # a previous fit of the same key: replace it with the new complete folder
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


def read_manifest(path: Path) -> dict[str, Any]:
    mf = Path(path) / MANIFEST
    if not Path(path).is_dir():
        raise ArtifactError(f"artifact folder {path} does not exist; pass artifact=<folder made by `fairpriv fit`>")
    if not mf.is_file():
        raise ArtifactError(f"{path} has no {MANIFEST}: it is not a fairpriv artifact (make one with `fairpriv fit`)")
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{mf} is not valid JSON ({exc}); delete the folder and fit again") from None
    if not isinstance(manifest, dict) or manifest.get("fairpriv_artifact") != FORMAT:
        raise ArtifactError(f"{mf} is not a fairpriv artifact manifest (format {FORMAT}); fit again")
    return manifest


def load_artifact(path: Path, expect: str) -> Artifact:
    """Open an artifact made by intervention ``expect``; verify every file's sha256."""
    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("intervention") != expect:
        raise ArtifactError(
            f"artifact {path} was made by intervention '{manifest.get('intervention')}', not '{expect}': "
            f"use it with --model {manifest.get('intervention')}-hf, or fit one for '{expect}'"
        )
    verify_files(path, manifest)
    return Artifact(path, manifest)


def verify_files(path: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists must exist with its recorded sha256."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"{Path(path) / MANIFEST} lists no files; it is corrupt: delete {path} and fit again")
    for rel, want in files.items():
        if not (Path(path) / rel).is_file() or sha256_file(Path(path) / rel) != want:
            raise ArtifactError(f"artifact file {Path(path) / rel} is missing or corrupt (sha256 mismatch); fit again")


MODEL_DIR = "model"


def artifact_model_folder(ref: str) -> str | None:
    """For ``pretrained=<artifact folder>`` (composition, e.g. DEAN on an SFT artifact): the artifact's ``model/``
    Hugging Face folder, after checking every file's sha256. ``None`` when ``ref`` is not an artifact; an error when
    it is one without a model, or a corrupt one."""
    folder = Path(ref)
    if not (folder / MANIFEST).is_file():
        return None
    manifest = read_manifest(folder)
    if not (folder / MODEL_DIR / "config.json").is_file():
        made_by = manifest.get("intervention")
        raise ArtifactError(f"artifact {folder} (made by '{made_by}') holds no model/ folder, so it cannot be "
                            f"pretrained=; use it as --model {made_by}-hf artifact={folder}")
    verify_files(folder, manifest)
    return str(folder / MODEL_DIR)


def parent_identity(ref: str) -> dict[str, Any] | None:
    """What an artifact used as a base model is: its maker, hash and own base model (``None`` if not one)."""
    if artifact_model_folder(ref) is None:
        return None
    manifest = read_manifest(Path(ref))
    keys = ("intervention", "intervention_version", "artifact_hash", "config", "base_model")
    return {"path": str(Path(ref).resolve()), **{k: manifest.get(k) for k in keys}}

