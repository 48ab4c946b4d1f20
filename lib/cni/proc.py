"""Run a child process with stdin/stdout/stderr pipes and a timeout.

A light stand-in for subprocess.run (whose import costs ~12 ms): posix_spawn
plus poll. Retries a few times on ETXTBSY (a plugin binary being replaced).
"""
from __future__ import annotations

import os
import time

_SIGKILL = 9
_CANCEL_POLL_MS = 50  # how often a `cancel` without fileno() is looked at


class Cancelled(Exception):
    """run() stopped because its `cancel` token was set; the child was killed."""


def _spawn(argv, env, fds):
    actions = [(os.POSIX_SPAWN_DUP2, fds[0], 0), (os.POSIX_SPAWN_DUP2, fds[1], 1),
               (os.POSIX_SPAWN_DUP2, fds[2], 2)]
    spawn = os.posix_spawn if "/" in argv[0] else os.posix_spawnp
    for attempt in range(6):
        try:
            return spawn(argv[0], list(argv), env, file_actions=actions)
        except OSError as exc:
            if exc.errno != 26 or attempt == 5:  # ETXTBSY
                raise
            time.sleep(0.2 * (attempt + 1))


def run(argv, input: bytes = b"", env=None, timeout: float | None = 30.0, *, cancel=None):
    """Run argv; return (returncode, stdout, stderr). FileNotFoundError if missing.

    On timeout the child is killed and TimeoutError raised. `cancel` is anything
    with is_set() (a threading.Event, cni.runtime.Cancel): once set, the child is
    killed and Cancelled raised; its fileno(), if it has one, is polled for that.
    """
    import select
    env = os.environ if env is None else env
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{argv[0]} not started: cancelled")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = _spawn(argv, env, (in_r, out_w, err_w))
    except BaseException:
        for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
            os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    deadline = None if timeout is None else time.monotonic() + timeout
    bufs = {out_r: [], err_r: []}
    pending = memoryview(input or b"")
    poller = select.poll()
    poller.register(out_r, select.POLLIN)
    poller.register(err_r, select.POLLIN)
    open_fds = {out_r, err_r}
    cancel_fd = getattr(cancel, "fileno", lambda: -1)() if cancel is not None else -1
    if cancel_fd >= 0:
        poller.register(cancel_fd, select.POLLIN)
    if pending:
        os.set_blocking(in_w, False)
        poller.register(in_w, select.POLLOUT)
    else:
        os.close(in_w)
        in_w = -1
    try:
        while open_fds or in_w >= 0:
            wait = None
            if deadline is not None:
                wait = max(0, int((deadline - time.monotonic()) * 1000))
                if wait == 0:
                    raise TimeoutError(f"{argv[0]} timed out after {timeout} s")
            if cancel is not None:
                if cancel.is_set():
                    raise Cancelled(f"{argv[0]} cancelled")
                if cancel_fd < 0:
                    wait = _CANCEL_POLL_MS if wait is None else min(wait, _CANCEL_POLL_MS)
            for fd, ev in poller.poll(wait):
                if fd == cancel_fd:
                    continue  # looked at on the next turn
                if fd == in_w:
                    try:
                        n = os.write(in_w, pending[:65536])
                        pending = pending[n:]
                    except BrokenPipeError:
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(in_w)
                        os.close(in_w)
                        in_w = -1
                else:
                    chunk = os.read(fd, 65536)
                    if chunk:
                        bufs[fd].append(chunk)
                    else:
                        poller.unregister(fd)
                        open_fds.discard(fd)
        while True:  # the pipes are closed, but the child may linger: keep the deadline
            polling = deadline is not None or cancel is not None
            done, status = os.waitpid(pid, os.WNOHANG if polling else 0)
            if done:
                break
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{argv[0]} cancelled")
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{argv[0]} timed out after {timeout} s")
            time.sleep(0.002)
        pid = 0
        return os.waitstatus_to_exitcode(status), b"".join(bufs[out_r]), b"".join(bufs[err_r])
    finally:
        if pid:
            try:
                os.kill(pid, _SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def which(name: str, path: str | None = None) -> str | None:
    """PATH lookup without importing shutil."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    for d in (path if path is not None else os.environ.get("PATH", os.defpath)).split(":"):
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None
