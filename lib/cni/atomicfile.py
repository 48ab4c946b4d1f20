"""Replacing a file atomically: write a temporary file next to it, fsync it, rename it over.

A reader sees the old content or the new, never a part; a crash leaves at most the temporary
file. Used by the runtime's result cache and the dhcp daemon's lease state.
"""
from __future__ import annotations

from cni.std import oslite as os


def replace(path: str, data: bytes, *, tmp: str, mode: int = 0o600,
            sync_dir: bool = False) -> None:
    """Write `data` to `tmp` (created with `mode`, never through a symlink), fsync it and
    rename it to `path`; `tmp` is removed on failure. sync_dir: fsync the directory too, so
    that the rename itself survives a power loss."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 mode)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
