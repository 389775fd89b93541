"""Runbooks read from the local runbooks directory (``RUNBOOKS_DIR``).

A local reference (a relative path, an absolute path or a ``file://`` URL) is read only
from inside ``runbooks_dir`` after resolving symlinks; with no ``runbooks_dir`` it is
refused. An alert can never make us read an arbitrary file. Reads do not follow a final
symlink, never block on a FIFO, and stop at ``max_bytes``."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from graph.runbook_errors import RunbookError, describe


def local_path(runbooks_dir: Path | None, ref: str) -> Path:
    """Resolve a local reference, refusing anything outside ``runbooks_dir``."""
    if runbooks_dir is None:
        raise RunbookError("local runbooks are disabled; set RUNBOOKS_DIR")
    if ref.lower().startswith("file:"):
        parts = urlsplit(ref)  # cannot fail: `fetch` already split it
        if parts.netloc not in ("", "localhost"):
            raise RunbookError(
                f"file URL with a host is not supported: {ref!r}; use a path inside RUNBOOKS_DIR"
            )
        raw_path = unquote(parts.path)
    else:
        raw_path = ref
    try:
        base = runbooks_dir.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise RunbookError(f"RUNBOOKS_DIR is not usable: {runbooks_dir}") from exc
    try:
        given = Path(raw_path)
        resolved = (base / given).resolve()  # an absolute `given` replaces `base`
    except (OSError, ValueError, RuntimeError) as exc:
        raise RunbookError(f"invalid runbook path {ref!r}: {describe(exc)}") from exc
    if not resolved.is_relative_to(base):
        if given.is_absolute():
            why = "absolute path is outside RUNBOOKS_DIR"
        elif ".." in given.parts:
            why = "'..' leads outside RUNBOOKS_DIR"
        else:
            why = "a symlink leads outside RUNBOOKS_DIR"
        raise RunbookError(f"refusing runbook path {ref!r}: {why} ({base})")
    return resolved


def read_file(path: Path, ref: str, max_bytes: int) -> bytes:
    """The file's bytes, up to `max_bytes` (more is refused); a symlink, a device or a
    FIFO is refused too."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise RunbookError(f"runbook not found in RUNBOOKS_DIR: {ref!r}") from exc
    except OSError as exc:
        raise RunbookError(f"cannot read runbook {ref!r}: {describe(exc)}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunbookError(f"runbook is not a regular file: {ref!r}")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise RunbookError(f"runbook is larger than the {max_bytes}-byte limit: {ref!r}")
    return data
