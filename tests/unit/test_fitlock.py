"""The fit lock (fairpriv.interventions.fitlock): where the lock file goes, the timeout setting, when a refit asked
for by several processes counts as done, and the lock itself against a real second process (held, then killed)."""

from __future__ import annotations

import logging
import math
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from fairpriv.interventions.base import ConfigError
from fairpriv.interventions.fitlock import (
    DEFAULT_TIMEOUT_S, FitLockTimeout, Stamp, artifact_stamp, data_parallel, fit_lock, lock_path, lock_timeout,
    refit_done,
)

HOLD = ("import sys, time\nfrom filelock import FileLock\nlock = FileLock(sys.argv[1])\nlock.acquire()\n"
        "print('held', flush=True)\ntime.sleep(600)\n")


# --- pure functions ----------------------------------------------------------------------------------------------
def test_lock_file_lives_beside_the_per_intervention_folders_never_inside_an_artifact():
    dest = Path("/h/artifacts/dean/7c6d1453c7a0bf52586ed2abf6352fee")
    assert lock_path(dest) == Path("/h/artifacts/.locks/dean/7c6d1453c7a0bf52586ed2abf6352fee.lock")
    assert dest not in lock_path(dest).parents and dest.parent not in lock_path(dest).parents
    assert lock_path(Path("rel/sft/k")) == Path("rel/.locks/sft/k.lock")


@pytest.mark.parametrize("text,seconds", [(None, DEFAULT_TIMEOUT_S), ("", DEFAULT_TIMEOUT_S), ("  ", DEFAULT_TIMEOUT_S),
                                          ("3600", 3600.0), (" 2.5 ", 2.5), ("1e-3", 0.001), ("inf", math.inf)])
def test_lock_timeout_reads_the_environment(text, seconds):
    assert DEFAULT_TIMEOUT_S == 86400.0
    assert lock_timeout({} if text is None else {"FAIRPRIV_FIT_LOCK_TIMEOUT": text}) == seconds


@pytest.mark.parametrize("text", ["0", "-5", "nan", "ten", "-inf"])
def test_a_bad_lock_timeout_is_refused_with_the_fix(text):
    with pytest.raises(ConfigError) as err:
        lock_timeout({"FAIRPRIV_FIT_LOCK_TIMEOUT": text})
    assert str(err.value) == (
        f"FAIRPRIV_FIT_LOCK_TIMEOUT must be a positive number of seconds to wait for another process's fit (or inf "
        f"to wait without limit); got {text!r}. Set it e.g. to 3600, or unset it (24 h)")


@pytest.mark.parametrize("env,expected", [({}, False), ({"WORLD_SIZE": "1"}, False), ({"WORLD_SIZE": "2"}, True),
                                          ({"WORLD_SIZE": "8"}, True), ({"WORLD_SIZE": "two"}, False)])
def test_data_parallel_follows_world_size(env, expected):
    assert data_parallel(env) is expected


OLD, NEW, MINE = Stamp(1, 10, 1_000), Stamp(1, 11, 5_000), Stamp(1, 12, 6_000)


@pytest.mark.parametrize("seen,now,since,own,done", [
    (OLD, None, None, set(), False),     # nothing there (a failed peer fit): fit
    (OLD, OLD, None, set(), False),      # unchanged while waiting, single process: refit
    (OLD, NEW, None, set(), True),       # replaced while this process waited: a peer refitted
    (None, NEW, None, set(), True),      # made while this process waited
    (NEW, NEW, 4_000, set(), True),      # data parallel: a peer made it after this process started
    (NEW, NEW, 5_000, set(), True),      # ... at the very nanosecond of the start
    (NEW, NEW, 5_001, set(), False),     # ... before this process started: refit
    (MINE, MINE, 4_000, {MINE}, False),  # this process's own earlier fit: a new refit=true refits it
])
def test_refit_done(seen, now, since, own, done):
    assert refit_done(seen, now, since, own) is done


def test_artifact_stamp_changes_when_the_manifest_is_replaced(tmp_path):
    assert artifact_stamp(tmp_path / "art") is None
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "manifest.json").write_text("{}")
    first = artifact_stamp(tmp_path / "art")
    (tmp_path / "new.json").write_text("{}")
    (tmp_path / "new.json").replace(tmp_path / "art" / "manifest.json")
    assert first is not None and artifact_stamp(tmp_path / "art") not in (None, first)


# --- the lock against another process ----------------------------------------------------------------------------
@pytest.fixture()
def holder(tmp_path):
    """A second process that holds the fit lock of ``tmp_path/artifacts/dean/key`` until it is killed."""
    dest = tmp_path / "artifacts" / "dean" / "key"
    lock_path(dest).parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path(dest))], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield dest, proc
    proc.kill()
    proc.wait()


def test_a_held_lock_makes_others_wait_with_a_message_then_fail_clearly(holder, monkeypatch, caplog):
    dest, _ = holder
    monkeypatch.setenv("FAIRPRIV_FIT_LOCK_TIMEOUT", "1.5")
    with caplog.at_level(logging.WARNING, "fairpriv"), pytest.raises(FitLockTimeout) as err:
        with fit_lock(dest):
            pytest.fail("the lock was taken while another process held it")
    lock = lock_path(dest)
    assert caplog.messages == [
        f"fairpriv: another process holds the fit lock of {dest} (it is fitting or loading that artifact); waiting "
        f"for it to finish, up to 1.5 s (FAIRPRIV_FIT_LOCK_TIMEOUT; lock file {lock})"]
    assert str(err.value) == (
        f"gave up after 1.5 s waiting for another process to fit {dest} (it still holds the lock {lock}); let that "
        "process finish or stop it, or set FAIRPRIV_FIT_LOCK_TIMEOUT to a longer wait in seconds (or inf)")
    assert not dest.exists()


def test_a_killed_holder_does_not_block_the_next_fit(holder, monkeypatch, caplog):
    """flock: the kernel drops the lock of a process that dies (SIGKILL: no clean-up code runs). Linux."""
    dest, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock_path(dest).is_file()  # the stale lock file is still there...
    monkeypatch.setenv("FAIRPRIV_FIT_LOCK_TIMEOUT", "60")
    with caplog.at_level(logging.WARNING, "fairpriv"), fit_lock(dest):
        pass  # ...and is taken at once: no wait was announced
    assert caplog.messages == []


def test_no_lock_where_none_can_be_made_and_nothing_is_created(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    dest = tmp_path / "file" / "artifacts" / "dean" / "key"
    with fit_lock(dest):
        pass
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file"]


def test_a_bad_timeout_is_refused_before_the_lock_folder_is_made(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRPRIV_FIT_LOCK_TIMEOUT", "0")
    with pytest.raises(ConfigError), fit_lock(tmp_path / "artifacts" / "dean" / "key"):
        pass
    assert list(tmp_path.iterdir()) == []
