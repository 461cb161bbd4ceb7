"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash (or an exception) never leaves a half-written file under the final name. A symbolic
link given as the destination is written through (its target is replaced, the link stays); a
device, FIFO, socket or folder as the destination is refused with :class:`OutputError` (a
rename would replace the device node, e.g. ``/dev/null``, or the folder).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, Iterator

from rsvlm_temporal.errors import OutputError

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
    try:
        st = os.stat(final)
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
