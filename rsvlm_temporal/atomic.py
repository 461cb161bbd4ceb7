"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash (or an exception) never leaves a half-written file under the final name; a run's
result folder is one transaction too (:func:`result_folder`). A symbolic
link given as the destination is written through (its target is replaced, the link stays); a
device, FIFO, socket or folder as the destination is refused with :class:`OutputError` (a
rename would replace the device node, e.g. ``/dev/null``, or the folder).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import secrets
import shutil
import signal
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

from rsvlm_temporal.errors import BusyError, OutputError

#: errno values that mean "the disk (or a quota) is full"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def resolve_destination(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` must replace: ``path`` itself, or the final target of a
    symbolic link (links are written through, never replaced). Raises :class:`OutputError` for
    an empty path, a folder, or a special file (device, FIFO, socket)."""
    text = os.fspath(path)
    if not str(text).strip():
        raise OutputError("the output path is empty; expected a file name, e.g. --out items.json")
    final = Path(text)
    if final.is_symlink():
        final = Path(os.path.realpath(final))
    try:  # through the link itself: its target may have no path (a pipe, /dev/stdout in a pipeline)
        st = os.stat(text)
    except FileNotFoundError:
        return final
    except OSError as exc:
        raise OutputError(f"cannot inspect the output path {text}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise OutputError(f"the output path {text} is a folder; expected a file name inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else
                "a FIFO" if stat.S_ISFIFO(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "a special file")
        where = f" (the target of {text})" if str(final) != str(text) else ""
        raise OutputError(f"the output path {final}{where} is {kind}, not a regular file: "
                          "results are written atomically (a rename), which would replace it; "
                          "give a regular file name")
    return final


def _describe_oserror(exc: OSError, final: Path) -> OutputError:
    if exc.errno in DISK_FULL:
        return OutputError(f"cannot write {final}: {exc.strerror} (the disk or a quota is full, or "
                           "a file size limit applies); free space or write elsewhere")
    return OutputError(f"cannot write {final}: {exc.strerror or exc}; expected a writable folder")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary file keeps the final suffix (``suffix`` or the path's own) so that
    drivers that look at the extension (GDAL, PIL) pick the right format. A symbolic link is
    written through (see :func:`resolve_destination`); a special file is refused.
    """
    final = resolve_destination(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=(suffix if suffix is not None else final.suffix) + ".part",
            dir=final.parent,
        )
    except OSError as exc:
        raise _describe_oserror(exc, final) from None
    os.close(fd)
    tmp_path = Path(tmp)
    # Most writers want to create the file themselves.
    tmp_path.unlink()
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        try:
            tmp.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise _describe_oserror(exc, Path(path)) from None
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as JSON to ``path`` atomically and return the path."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, default=str) + "\n")


# -- result folders: one run is one transaction ----------------------------------------------

#: marker file written into every result folder just before it is swapped into place
RESULT_MARKER = ".rsvlm-result.json"
#: names only a result folder of an older version (without the marker) holds
LEGACY_RESULT_NAMES = ("evidence.json", "layers.tif", ".work")


def result_folder_path(out_dir: str | os.PathLike[str]) -> Path:
    """The folder a run into ``out_dir`` replaces: absolute, with symbolic links resolved.

    A link to a folder (or a dangling link) is followed: the run replaces its target and the
    link stays, as :func:`resolve_destination` does for files. Raises :class:`OutputError` for
    an empty path, the file system root, a path that exists and is not a folder, and the
    current folder or one of its ancestors (replacing it would pull the folder from under the
    shell: give a sub-folder)."""
    text = os.fspath(out_dir)
    if not str(text).strip():
        raise OutputError("the output folder is empty; expected a folder name, e.g. --out result")
    final = Path(os.path.realpath(os.path.abspath(text)))
    if final.parent == final:
        raise OutputError(f"the output folder {text} is the file system root; expected a sub-folder")
    if final.exists() and not final.is_dir():
        raise OutputError(f"the output folder {text} exists and is not a folder ({final}); "
                          "expected a folder name (new, empty, or a previous result)")
    cwd = Path(os.path.realpath(os.getcwd()))
    if cwd == final or final in cwd.parents:
        raise OutputError(f"the output folder {text} is the current folder or contains it: a run "
                          "replaces its output folder whole; give a sub-folder, e.g. --out result")
    return final


def is_result_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder a run wrote (it holds :data:`RESULT_MARKER`, or a name of
    :data:`LEGACY_RESULT_NAMES` for results of older versions)."""
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in (RESULT_MARKER, *LEGACY_RESULT_NAMES))


class ResultFolder:
    """One run's result folder as a transaction; use :func:`result_folder`.

    ``path`` is a fresh sibling folder ``<parent>/.<name>.new-<random>`` (same file system, so
    renames work) where the run writes everything; ``final`` is the folder it replaces.
    """

    def __init__(self, out_dir: str | os.PathLike[str], discard: tuple[str, ...] = (".work",)) -> None:
        self.final = result_folder_path(out_dir)
        self.discard = discard
        self.path = self.final  # until entered
        self._lock_fd: int | None = None

    @property
    def lock_path(self) -> Path:
        """The lock file ``<parent>/.<name>.lock`` (held for the whole run, removed after)."""
        return self.final.parent / f".{self.final.name}.lock"

    def moved(self, path: str | os.PathLike[str]) -> Path:
        """Where ``path`` (inside :attr:`path`) lies once the folder is swapped into place."""
        p = Path(path)
        try:
            return self.final / p.relative_to(self.path)
        except ValueError:
            return p

    # -- the steps ---------------------------------------------------------------------------
    def __enter__(self) -> ResultFolder:
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _folder_error(exc, parent) from None
        self._lock()
        try:
            self._recover()
            self._check_replaceable()
            self.path = self._make_new()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            if self.path != self.final:  # not swapped in: the new folder goes, the old stays
                shutil.rmtree(self.path, ignore_errors=True)
            self._unlock()

    def _make_new(self) -> Path:
        """The fresh sibling folder (mode from the umask, as ``mkdir`` gives; not mkdtemp's 0700)."""
        for _ in range(100):
            p = self.final.parent / f".{self.final.name}.new-{secrets.token_hex(4)}"
            try:
                p.mkdir()
                return p
            except FileExistsError:
                continue
            except OSError as exc:
                raise _folder_error(exc, self.final.parent) from None
        raise OutputError(f"cannot create a fresh folder beside {self.final}")

    def _lock(self) -> None:
        import fcntl

        path = self.lock_path
        for _ in range(20):  # retried only when another run removed the file meanwhile
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _folder_error(exc, path.parent) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    holder = os.read(fd, 200).decode("utf-8", "replace").split()
                finally:
                    os.close(fd)
                pid, since = (holder + ["?", "?"])[:2]
                raise BusyError(f"another run is writing into {self.final} (pid {pid} since {since}); "
                                "wait for it or choose another --out") from None
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                os.write(fd, f"{os.getpid()} {stamp}\n".encode())
                self._lock_fd = fd
                return
            os.close(fd)
        raise BusyError(f"cannot take the lock {path}: other runs keep replacing it; retry")

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.lock_path)  # while held: a waiting run re-opens the new file
        os.close(fd)

    def _leftovers(self, kind: str) -> list[Path]:
        prefix = f".{self.final.name}.{kind}-"
        try:
            names = os.listdir(self.final.parent)
        except OSError:
            return []
        return [self.final.parent / n for n in names if n.startswith(prefix)]

    def _recover(self) -> None:
        """Undo what a killed run left (under the lock, so no other run owns them): a swap cut
        between its two renames (no result, an ``.old-*`` one) is rolled back; ``.new-*`` and
        ``.old-*`` folders are removed."""
        olds = sorted(self._leftovers("old"), key=lambda p: p.stat().st_mtime)
        if olds and not self.final.exists():
            try:
                os.rename(olds.pop(), self.final)
            except OSError as exc:
                raise _folder_error(exc, self.final) from None
        for p in olds + self._leftovers("new"):
            shutil.rmtree(p, ignore_errors=True)

    def _check_replaceable(self) -> None:
        check_replaceable(self.final)

    def _commit(self) -> None:
        for name in self.discard:
            p = self.path / name
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
        from importlib import metadata

        try:
            version = metadata.version("rsvlm-temporal")
        except metadata.PackageNotFoundError:
            version = "0+unknown"
        written = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        write_json_atomic(self.path / RESULT_MARKER, {"format": "rsvlm-result", "version": version,
                                                      "written": written})
        old = None
        with _sigint_deferred():  # Ctrl-C between the two renames would leave no result
            try:
                if self.final.exists():
                    old = self.final.parent / f".{self.final.name}.old-{secrets.token_hex(4)}"
                    os.rename(self.final, old)
                try:
                    os.rename(self.path, self.final)
                    self.path = self.final
                except OSError:
                    if old is not None:
                        os.rename(old, self.final)
                        old = None
                    raise
            except OSError as exc:
                raise _folder_error(exc, self.final) from None
            with contextlib.suppress(OSError):
                fd = os.open(self.final.parent, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)  # if cut short: the next run removes it


def check_result_folder(out_dir: str | os.PathLike[str]) -> Path:
    """The checks :func:`result_folder` makes before it writes anything, without taking the lock
    (for a command line's validation before any work): :func:`result_folder_path`, then
    :func:`check_replaceable`. Returns the final folder; raises :class:`OutputError`."""
    final = result_folder_path(out_dir)
    check_replaceable(final)
    return final


def check_replaceable(final: Path) -> None:
    """Refuse to replace ``final`` when it is a mount point (a rename cannot move it) or a
    non-empty folder holding no result (:func:`is_result_folder`): :class:`OutputError`."""
    if not final.is_dir():
        return
    if os.stat(final).st_dev != os.stat(final.parent).st_dev:
        raise OutputError(f"the output folder {final} is a mount point, which cannot be replaced "
                          "by a rename; give a sub-folder of it, e.g. --out "
                          f"{final / 'result'}")
    entries = sorted(os.listdir(final))
    if entries and not is_result_folder(final):
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise OutputError(
            f"the output folder {final} holds {len(entries)} entries ({shown}) but no rsvlm "
            f"result (no {RESULT_MARKER}): a run replaces its output folder whole, so it "
            f"refuses to delete them; choose a new or empty folder, e.g. --out {final / 'result'}")


def result_folder(out_dir: str | os.PathLike[str], discard: tuple[str, ...] = (".work",)) -> ResultFolder:
    """A run's result folder as one transaction (``with result_folder(out) as txn:``, write
    into ``txn.path``).

    On entry: takes the lock ``<parent>/.<name>.lock`` (``fcntl.flock``, not waiting: a second
    run into the same folder raises :class:`BusyError` naming the holder's pid and start time),
    removes what a killed run left (``.<name>.new-*``; a swap cut between its renames is rolled
    back to the previous result), refuses a folder that is neither new, empty nor a previous
    result (so ``--out ~`` never deletes a home folder: :class:`OutputError`), and creates the
    fresh sibling ``txn.path``. On success: removes the ``discard`` names (the work folder),
    writes :data:`RESULT_MARKER`, renames the previous result to ``.<name>.old-<random>``, the
    new folder to ``<name>``, then deletes the old one; Ctrl-C during the two renames is held
    until both are done. On failure or Ctrl-C: the new folder is deleted and the previous result
    is untouched. The two renames are not one atomic step: for a few microseconds ``<name>`` is
    absent (never mixed); a reader that finds it absent sees "no result yet" and a run cut
    there is rolled back by the next one. See :func:`result_folder_path` for symbolic links.
    """
    return ResultFolder(out_dir, discard)


def _folder_error(exc: OSError, where: Path) -> OutputError:
    if exc.errno in DISK_FULL:
        return _describe_oserror(exc, where)
    return OutputError(f"cannot write the result folder in {where}: {exc.strerror or exc}; "
                       "expected a writable folder")


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold SIGINT (Ctrl-C) during the block, then deliver it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    if signal.getsignal(signal.SIGINT) is None:  # a handler not set from Python: left alone
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if got:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                os.kill(os.getpid(), signal.SIGINT)
