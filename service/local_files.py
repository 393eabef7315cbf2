"""Reading a local file with a limit: the config, a secret file, push receipts, a CA bundle.

A path in the config can name anything: ``/dev/zero``, a FIFO nobody writes to, a 2 GB log file. Every
read here refuses a file larger than the caller's limit (and stops reading at it, for what has no size)
and any kind of file the caller did not ask for, with a :class:`FileProblem` that says which and why
and never quotes the content.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB

_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


class FileProblem(ValueError):
    """The file exists but is not what may be read: too large, or not a regular file."""


def size_text(size: int) -> str:
    """``1.5 MB``, ``64 KB``, ``120 bytes``: sizes as an operator reads them."""
    if size >= MIB:
        return f"{size / MIB:.3g} MB"
    if size >= KIB:
        return f"{size / KIB:.3g} KB"
    return f"{size} bytes"


def read_limited(
    path: str | Path, limit: int, *, pipes: bool = False, follow_symlinks: bool = True, pipe_wait: float = 10.0
) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them.

    Only a regular file is read, and a pipe when ``pipes`` is true (``--config <(...)``, ``/dev/stdin``;
    one nobody writes to within ``pipe_wait`` seconds is refused rather than waited for).
    ``follow_symlinks=False`` refuses a symbolic link (for files this service writes itself).
    Raises :class:`FileProblem` as above, or ``OSError`` when it cannot be opened or read.
    """
    # Non-blocking open: opening a FIFO must not wait for a writer that may never come.
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise FileProblem("it is a symbolic link; this file is written by the service and never one") from None
        if exc.errno == errno.ENXIO and os.path.exists(path):  # a socket cannot be opened
            raise FileProblem(f"it is {_kind(os.stat(path).st_mode)}, not a regular file") from None
        raise exc from None
    try:
        status = os.fstat(fd)
        mode = status.st_mode
        if stat.S_ISREG(mode):
            size = status.st_size
            if size > limit:
                raise FileProblem(f"it is {size_text(size)}, more than the {size_text(limit)} allowed")
        elif not (pipes and stat.S_ISFIFO(mode)):
            raise FileProblem(f"it is {_kind(mode)}, not a regular file")
        else:
            # A named pipe's writer may not be there yet: wait for it a while (Linux reports nothing,
            # not even a hang-up, until one comes), then read blocking, up to the limit.
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(int(pipe_wait * 1000)):
                raise FileProblem(f"it is a pipe nothing was written to within {pipe_wait:g} s")
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # a file that grew after fstat, or a pipe that kept going
            raise FileProblem(f"it is more than the {size_text(limit)} allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_ca_bundle(path: str | Path, limit: int = MIB) -> str:
    """The PEM text of a CA bundle (``cloud.ca_bundle``), checked to hold at least one certificate.

    Raises :class:`FileProblem` (too large, not a file, not PEM) or ``OSError``.
    """
    import ssl  # here: `config check` reads this module, and only a config with a CA bundle needs ssl

    try:
        text = read_limited(path, limit).decode("ascii")
    except UnicodeDecodeError:
        raise FileProblem("it is not a PEM file (PEM is ASCII text)") from None
    try:
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError
        ssl.create_default_context(cadata=text)
    except (ssl.SSLError, ValueError):
        raise FileProblem("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    return text
