"""One fit per cache folder across processes: the inter-process lock around "load the cached artifact or fit it".

Under ``accelerate launch -m lm_eval --model <name>-hf ...`` every process builds the model and asks for the same
cache folder. The first one to take the folder's lock fits and writes the artifact; the others wait (with a message
naming the folder), then load what it wrote. A ``refit=true`` asked for by every process is done once: a waiter finds
the artifact replaced while it waited, or (under data parallelism) made by a peer since it started, and loads it.

The lock is a ``filelock`` (``flock`` on Linux/macOS): the kernel drops it when its holder dies, so a killed fit never
blocks the next one. The lock file lives beside the per-intervention folders, in ``$FAIRPRIV_HOME/artifacts/.locks/``,
never inside an artifact (so its manifest and hashes are untouched); it stays after release on purpose, since
removing a lock file that others may be waiting on lets two processes lock two different files.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from fairpriv.artifacts import missing_folders, remove_if_empty
from fairpriv.interventions.base import ConfigError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "FAIRPRIV_FIT_LOCK_TIMEOUT"
DEFAULT_TIMEOUT_S = 24 * 3600.0  # a fit (an SFT of a large model) may take hours; a dead holder releases at once
QUIET_WAIT_S = 1.0  # waits shorter than this (a peer loading the artifact) are not announced
LOCKS = ".locks"
IMPORTED_NS = time.time_ns()


class FitLockTimeout(RuntimeError):
    """Another process held a cache folder's fit lock for longer than ``FAIRPRIV_FIT_LOCK_TIMEOUT``."""


class Stamp(NamedTuple):
    """Which artifact a cache folder holds: its manifest file's identity (a refit makes a new file)."""

    device: int
    inode: int
    mtime_ns: int


# --- pure functions ----------------------------------------------------------------------------------------------
def lock_path(dest: Path) -> Path:
    """The lock file of cache folder ``<root>/<name>/<key>``: ``<root>/.locks/<name>/<key>.lock``."""
    dest = Path(dest)
    return dest.parent.parent / LOCKS / dest.parent.name / f"{dest.name}.lock"


def lock_timeout(environ: Mapping[str, str]) -> float:
    """Seconds to wait for a fit lock: ``FAIRPRIV_FIT_LOCK_TIMEOUT`` (a positive number, or ``inf``), default 24 h."""
    text = environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # also refuses nan
        raise ConfigError(f"{TIMEOUT_ENV} must be a positive number of seconds to wait for another process's fit "
                          f"(or inf to wait without limit); got {text!r}. Set it e.g. to 3600, or unset it (24 h)")
    return value


def data_parallel(environ: Mapping[str, str]) -> bool:
    """Whether this process is one of several ranks of a launch (``accelerate launch``, ``torchrun``: WORLD_SIZE)."""
    try:
        return int(environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def refit_done(seen: Stamp | None, now: Stamp | None, peer_since_ns: int | None, own: set[Stamp]) -> bool:
    """Whether a refit asked for when the folder held ``seen`` was already done by another process: the folder now
    holds an artifact that replaced ``seen`` while this one waited, or (``peer_since_ns``: under data parallelism,
    this process's start) one that a peer made since then and this process did not fit itself."""
    if now is None:
        return False
    if now != seen:
        return True
    return peer_since_ns is not None and now.mtime_ns >= peer_since_ns and now not in own


def waiting_message(dest: Path, lock: Path, timeout: float) -> str:
    return (f"fairpriv: another process holds the fit lock of {dest} (it is fitting or loading that artifact); "
            f"waiting for it to finish, up to {timeout:g} s ({TIMEOUT_ENV}; lock file {lock})")


def timeout_message(dest: Path, lock: Path, timeout: float) -> str:
    return (f"gave up after {timeout:g} s waiting for another process to fit {dest} (it still holds the lock "
            f"{lock}); let that process finish or stop it, or set {TIMEOUT_ENV} to a longer wait in seconds "
            f"(or inf)")


# --- I/O ---------------------------------------------------------------------------------------------------------
FITTED_HERE: set[Stamp] = set()  # the artifacts this process fitted (a later refit=true of its own refits them)


def artifact_stamp(dest: Path) -> Stamp | None:
    try:
        st = (Path(dest) / "manifest.json").stat()
    except OSError:
        return None
    return Stamp(st.st_dev, st.st_ino, st.st_mtime_ns)


def remember_fit(dest: Path) -> None:
    stamp = artifact_stamp(dest)
    if stamp is not None:
        FITTED_HERE.add(stamp)


def peer_since_ns() -> int | None:
    """This process's start time (ns) when it is a data-parallel rank, else ``None``."""
    if not data_parallel(os.environ):
        return None
    try:
        import psutil

        return int(psutil.Process().create_time() * 1e9)
    except Exception:  # psutil absent or /proc unreadable: the import of this module comes a little later
        return IMPORTED_NS


@contextmanager
def fit_lock(dest: Path) -> Iterator[None]:
    """Hold the inter-process lock of cache folder ``dest``. Where the lock file cannot be made (a read-only
    ``FAIRPRIV_HOME``) it goes on without one: only loading can work there, and a fit reports the folder."""
    timeout = lock_timeout(os.environ)  # a bad setting is refused before anything is created
    lock = _open_lock(lock_path(dest))
    held = lock is not None and _acquire(lock, Path(dest), timeout)
    try:
        yield
    finally:
        if held:
            lock.release()


def _open_lock(path: Path):
    from filelock import FileLock

    made = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_if_empty(made)
        log.debug("fairpriv: no fit lock at %s (%s); going on without one", path, exc)
        return None
    return FileLock(str(path))


def _acquire(lock, dest: Path, timeout: float) -> bool:
    """Take ``lock`` (announcing a wait longer than QUIET_WAIT_S); ``False`` when the lock file cannot be opened."""
    from filelock import Timeout

    lock_file, quiet = Path(lock.lock_file), min(QUIET_WAIT_S, timeout)
    try:
        lock.acquire(timeout=quiet)
        return True
    except Timeout:
        if quiet >= timeout:
            raise FitLockTimeout(timeout_message(dest, lock_file, timeout)) from None
    except OSError as exc:  # e.g. a read-only .locks folder
        log.debug("fairpriv: no fit lock at %s (%s); going on without one", lock_file, exc)
        return False
    log.warning(waiting_message(dest, lock_file, timeout))
    try:
        lock.acquire(timeout=-1 if math.isinf(timeout) else timeout - quiet)
    except Timeout:
        raise FitLockTimeout(timeout_message(dest, lock_file, timeout)) from None
    return True
