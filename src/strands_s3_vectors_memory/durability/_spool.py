"""The write spool: one JSON file per pending job, claimed per process with ``flock``.

Why files and not a database: each job is written once, rewritten on checkpoint and removed when
done; an atomic ``rename`` per file is the simplest thing that survives ``kill -9`` and lets several
processes share one directory. The background writer (:mod:`._writer`, through :mod:`._writer_spool`)
is its user; the CLI reads dead letters and pending files from outside any writer.

Spool layout (several processes may share one ``spool_dir``; it must be a local filesystem, because
claims rely on ``flock``)::

    <spool_dir>/owners/<owner>.lock         flock'ed by a live writer for its whole life
    <spool_dir>/claims/<owner>/<key>.json   one file per job that writer owns (key = sha256 of job_id)
    <spool_dir>/corrupt/                    unreadable job files, kept for a human to look at
    <spool_dir>/dead/<key>.json             dead letters: jobs that failed max_rounds rounds

A writer only ever runs jobs from its own ``claims`` directory, so two processes never run the same
file. Files of a dead writer (its lock is free again: the kernel drops ``flock`` locks when a process
dies) are adopted by whichever live writer replays first, one ``rename`` per file, which only one
process can win. Two live processes that both submit the same ``job_id`` each own a copy; both run
and the later ``put_vectors`` wins, which is harmless because keys are deterministic.

:class:`Spool` is one of the two spools behind the writer's seam (:mod:`._spool_backend`); the
other, for fleets whose machines vanish, keeps the same job files on S3 (:mod:`._s3_spool`). What a
job file holds is in :mod:`._spool_format`.
"""

from __future__ import annotations

import errno
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path

if sys.platform != "win32":
    import fcntl

from ._spool_format import DeadLetter, WriteJob, decode_dead_letter, decode_job, encode_dead_letter, encode_job

__all__ = [
    "DEAD_DIR",
    "PendingFile",
    "Spool",
    "StagedFile",
    "dead_letters",
    "default_spool_dir",
    "drop_dead_letter",
    "pending_files",
    "retry_dead_letter",
    "write_atomic",
]

#: Sub-directory of a spool holding dead letters (jobs set aside after too many failed rounds).
DEAD_DIR = "dead"
_STALE_TEMP_LOCK_SECONDS = 60.0
_JOB_FILE = re.compile(r"^(?P<key>[0-9a-f]{64})(?:\.adopting)?\.json$")


def default_spool_dir(data_dir: Path, agent_name: str) -> Path:
    """Where an agent's pending writes wait by default: ``<data dir>/spool/<agent name, file-safe>``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", agent_name).strip("._") or "agent"
    return data_dir / "spool" / safe


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """temp file + fsync + rename + fsync(dir): after a crash the file is either old or new, never torn."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class Spool:
    """This writer's claim on a shared spool directory (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        if sys.platform == "win32":  # pragma: no cover - the project targets POSIX hosts
            raise OSError(errno.ENOTSUP, "the write spool needs POSIX file locks (fcntl.flock)")
        self.root = root
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex}"
        self._owners = root / "owners"
        self._claims = root / "claims"
        self._owners.mkdir(parents=True, exist_ok=True)
        self._claims.mkdir(parents=True, exist_ok=True)
        self._lock_fd: int | None = self._take_owner_lock()
        self.dir = self._claims / self.owner
        try:
            self.dir.mkdir()
            _fsync_dir(self._claims)
        except BaseException:
            self.release()
            raise

    def _take_owner_lock(self) -> int:
        # Lock a temp file, then rename it into place: the lock file never appears unlocked, so a
        # replaying peer cannot mistake a writer that is starting up for a dead one.
        tmp = self._owners / f".{self.owner}.tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.replace(tmp, self._owners / f"{self.owner}.lock")
            _fsync_dir(self._owners)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return fd

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def write(self, key: str, data: bytes) -> None:
        try:
            write_atomic(self.path(key), data)
        except FileNotFoundError:
            # Our directory was removed by release() (a submit after close): recreate it. Without our
            # lock it reads as a dead owner's, so the next start adopts the file.
            self.dir.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path(key), data)

    def remove(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def read(self, path: Path | str) -> WriteJob:
        return decode_job(Path(path).read_bytes())

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def own_keys(self) -> list[str]:
        keys = []
        for entry in sorted(self.dir.iterdir()):
            match = _JOB_FILE.match(entry.name)
            if match and not entry.name.endswith(".adopting.json"):
                keys.append(match["key"])
        return keys

    def bury(self, key: str, job: WriteJob, error: BaseException | str) -> Path:
        """Move a job that keeps failing to ``dead/`` (with its error), out of every replay.

        The dead letter keeps the whole job, so ``s3-vectors-memory dead-letters retry`` can put it
        back once the cause is fixed; nothing is deleted.
        """
        target = self.root / DEAD_DIR / f"{key}.json"
        target.parent.mkdir(exist_ok=True)
        write_atomic(target, encode_dead_letter(job, error))
        self.remove(key)
        return target

    def quarantine(self, path: Path | str) -> Path | None:
        """Move an unreadable job file aside (never delete data a human may want back)."""
        target_dir = self.root / "corrupt"
        try:
            target_dir.mkdir(exist_ok=True)
            target = target_dir / f"{Path(path).name}.{uuid.uuid4().hex}"
            os.replace(path, target)
            return target
        except OSError:
            return None

    @contextmanager
    def _dead_owner(self, lock_path: Path) -> Iterator[bool]:
        """Yield True, holding its lock, if the writer behind ``lock_path`` is dead (or left no lock).

        The lock file is removed on the way out when it was dead, so the next look finds nothing.
        """
        try:
            fd = os.open(lock_path, os.O_RDWR)  # never O_CREAT: a missing lock means a dead owner
        except FileNotFoundError:
            yield True
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False  # alive (or being adopted by another replayer right now)
                return
            try:
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False  # removed meanwhile by the replayer that adopted it
            yield same
            if same:
                lock_path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def adopt(self, place: Callable[[StagedFile], None]) -> None:
        """:meth:`adopt_dead`, handing each claimed file over as a :class:`StagedFile`."""
        self.adopt_dead(lambda staged, key: place(StagedFile(self, staged, key)))

    def adopt_dead(self, place: Callable[[Path, str], None]) -> None:
        """Claim every job file of dead writers, handing each (now in our directory) to ``place``.

        Each file is claimed with one ``rename`` into our own directory, which exactly one process
        can win, so concurrent replayers never both run a job.
        """
        for owner_dir in sorted(self._claims.iterdir()):
            owner = owner_dir.name
            if owner == self.owner or not owner_dir.is_dir():
                continue
            with self._dead_owner(self._owners / f"{owner}.lock") as dead:
                if not dead:
                    continue
                try:
                    files = sorted(owner_dir.iterdir())
                except FileNotFoundError:
                    continue  # another replayer emptied and removed it
                for entry in files:
                    match = _JOB_FILE.match(entry.name)
                    if match is None:
                        if entry.name.endswith(".tmp"):
                            entry.unlink(missing_ok=True)  # a write the dead writer never finished
                        continue
                    staged = self.dir / f"{match['key']}.adopting.json"
                    try:
                        os.rename(entry, staged)
                    except FileNotFoundError:
                        continue  # another replayer won this file
                    place(staged, match["key"])
                _fsync_dir(self.dir)
                with suppress(OSError):  # not empty (a file we could not claim) or already gone
                    owner_dir.rmdir()
        self._sweep_stale_locks()

    def _sweep_stale_locks(self) -> None:
        """Remove lock files of writers that died before creating a claims directory."""
        for lock_path in sorted(self._owners.iterdir()):
            owner = lock_path.name.removeprefix(".").removesuffix(".tmp").removesuffix(".lock")
            if owner == self.owner or (self._claims / owner).exists():
                continue
            if lock_path.name.endswith(".tmp"):
                # A writer between creating and locking its temp lock file looks dead for an
                # instant: only sweep temp files old enough to be certain.
                with suppress(OSError):
                    if time.time() - lock_path.stat().st_mtime > _STALE_TEMP_LOCK_SECONDS:
                        lock_path.unlink()
                continue
            with self._dead_owner(lock_path):
                pass  # removes the lock file if its writer is dead

    def release(self) -> None:
        """Give up the claim: our leftover files (failed jobs) become adoptable by the next start."""
        if self._lock_fd is None:
            return
        try:
            with suppress(FileNotFoundError):
                self.dir.rmdir()
            (self._owners / f"{self.owner}.lock").unlink(missing_ok=True)
        except OSError:
            pass  # files are left: keep the (now unlocked) lock file so replayers know the owner
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None


    def leave_to_parent(self) -> None:
        """A forked child's copy: close the inherited lock descriptor, leave the parent's files alone.

        An ``flock`` is held while any descriptor of it is open, so a child keeping its copy would
        keep the parent looking alive to replayers after the parent died.
        """
        if self._lock_fd is not None:
            with suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


class StagedFile:
    """A dead writer's job file, just renamed into this writer's directory (``<key>.adopting.json``)."""

    def __init__(self, spool: Spool, staged: Path, key: str) -> None:
        self._spool = spool
        self._staged = staged
        self._key = key

    @property
    def key(self) -> str:
        return self._key

    @property
    def location(self) -> Path:
        return self._staged

    def collides(self) -> bool:
        """Whether this writer also has a file of the same job (a failed job, or a newer submission)."""
        return self._spool.path(self._key).exists()

    def read(self) -> WriteJob:
        return self._spool.read(self._staged)

    def keep(self) -> None:
        os.replace(self._staged, self._spool.path(self._key))

    def discard(self) -> None:
        self._staged.unlink(missing_ok=True)


# --- a spool directory seen from outside any writer (the CLI, forget) -------------------------------


@dataclass(frozen=True)
class PendingFile:
    """A pending job's file, and whether the writer that owns it is still alive."""

    path: Path
    owner_alive: bool


def dead_letters(root: Path) -> list[DeadLetter]:
    """The dead letters of the spool at ``root``, oldest first (unreadable files are skipped)."""
    letters = []
    folder = root / DEAD_DIR
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.json")):
        try:
            letters.append(decode_dead_letter(path, path.stem, path.read_bytes()))
        except (OSError, ValueError):
            continue
    return sorted(letters, key=lambda letter: letter.dead_at)


def retry_dead_letter(root: Path, key: str) -> Path:
    """Put a dead letter back in the spool with a fresh count of rounds.

    It goes to a claims directory of its own that no live writer holds, so the next replay (a start
    of the plugin, a running writer's periodic adoption, or ``s3-vectors-memory replay``) adopts it
    exactly like the files of a crashed process.
    """
    source = root / DEAD_DIR / f"{key}.json"
    job = decode_job(source.read_bytes())
    owner_dir = root / "claims" / f"retry-{uuid.uuid4().hex}"
    owner_dir.mkdir(parents=True)
    write_atomic(owner_dir / f"{key}.json", encode_job(replace(job, rounds=0, attempts=0)))
    source.unlink()
    return owner_dir / f"{key}.json"


def drop_dead_letter(root: Path, key: str) -> None:
    """Delete a dead letter for good."""
    (root / DEAD_DIR / f"{key}.json").unlink()


def _owner_alive(root: Path, owner: str) -> bool:
    try:
        fd = os.open(root / "owners" / f"{owner}.lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def pending_files(root: Path) -> Iterator[PendingFile]:
    """Every pending job file of the spool at ``root`` (all owners), with its owner's liveness."""
    claims = root / "claims"
    if not claims.is_dir():
        return
    for owner_dir in sorted(claims.iterdir()):
        if not owner_dir.is_dir():
            continue
        alive = _owner_alive(root, owner_dir.name)
        try:
            entries = sorted(owner_dir.iterdir())
        except FileNotFoundError:
            continue
        for entry in entries:
            if _JOB_FILE.match(entry.name):
                yield PendingFile(entry, alive)
