"""Run a child process with stdin/stdout/stderr pipes and a timeout: stands in for subprocess.

A light stand-in for subprocess.run (whose import costs ~12 ms): posix_spawn
plus poll. Retries a few times on ETXTBSY (a plugin binary being replaced).
A bare tool name is looked up by which(), in absolute PATH entries only.
"""
from __future__ import annotations

import errno
import time

from cni.std import oslite as os

_SIGKILL = 9
DEFAULT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
_CANCEL_POLL_MS = 50  # how often a `cancel` without fileno() is looked at


class Cancelled(Exception):
    """run() stopped because its `cancel` token was set; the child was killed."""


def spawn(argv, env=None, fds=None) -> int:
    """posix_spawn argv[0], looked up with which() when it has no '/'; returns the pid.

    `fds` maps child descriptor numbers to ours ({0: r, 1: w}); everything else the child
    gets is what we did not mark close-on-exec. FileNotFoundError if the tool is missing.
    """
    exe = argv[0] if "/" in argv[0] else which(argv[0])
    if exe is None:
        raise FileNotFoundError(errno.ENOENT, f"{argv[0]} not found in any absolute PATH entry",
                                argv[0])
    actions = [(os.POSIX_SPAWN_DUP2, src, dst) for dst, src in sorted((fds or {}).items())]
    env = os.environ if env is None else env
    for attempt in range(6):
        try:
            return os.posix_spawn(exe, list(argv), env, file_actions=actions)
        except OSError as exc:
            if exc.errno != errno.ETXTBSY or attempt == 5:  # a plugin binary being replaced
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def wait(pid: int, deadline: float | None, cancel=None) -> int:
    """waitpid until `deadline` (time.monotonic()); then SIGKILL, reap and raise TimeoutError.
    A set `cancel` token kills and reaps the same way and raises Cancelled."""
    if deadline is None and cancel is None:
        return os.waitpid(pid, 0)[1]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if cancel is not None and cancel.is_set():
            kill(pid)
            raise Cancelled(f"process {pid} cancelled")
        if deadline is not None and time.monotonic() >= deadline:
            kill(pid)
            raise TimeoutError(f"process {pid} killed at its deadline")
        time.sleep(0.002)


def kill(pid: int) -> None:
    """SIGKILL and reap `pid`; one already gone is fine."""
    try:
        os.kill(pid, _SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def run(argv, input: bytes = b"", env=None, timeout: float | None = 30.0, *, cancel=None):
    """Run argv; return (returncode, stdout, stderr). FileNotFoundError if missing.

    On timeout the child is killed and TimeoutError raised. `cancel` is anything
    with is_set() (a threading.Event, cni.runtime.Cancel): once set, the child is
    killed and Cancelled raised; its fileno(), if it has one, is polled for that.
    """
    import select  # lazy: a shared library (~0.2 ms), needed only when a child is run
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{argv[0]} not started: cancelled")
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = spawn(argv, env, {0: in_r, 1: out_w, 2: err_w})
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
            ms = None
            if deadline is not None:
                ms = max(0, int((deadline - time.monotonic()) * 1000))
                if ms == 0:
                    raise TimeoutError(f"{argv[0]} timed out after {timeout} s")
            if cancel is not None:
                if cancel.is_set():
                    raise Cancelled(f"{argv[0]} cancelled")
                if cancel_fd < 0:
                    ms = _CANCEL_POLL_MS if ms is None else min(ms, _CANCEL_POLL_MS)
            for fd, ev in poller.poll(ms):
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
        try:  # the pipes are closed, but the child may linger: keep the deadline
            status = wait(pid, deadline, cancel)
        except TimeoutError:
            pid = 0  # killed and reaped by wait()
            raise TimeoutError(f"{argv[0]} timed out after {timeout} s") from None
        except Cancelled:
            pid = 0
            raise Cancelled(f"{argv[0]} cancelled") from None
        pid = 0
        return os.waitstatus_to_exitcode(status), b"".join(bufs[out_r]), b"".join(bufs[err_r])
    finally:
        if pid:
            kill(pid)
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def search_path(path: str | None = None) -> list:
    """The absolute entries of `path` (default: $PATH), else DEFAULT_PATH.

    An empty or relative entry would make the lookup depend on the current directory
    (a runtime's cwd may hold anything), so it is skipped (Go's exec.LookPath refuses such a result too).
    """
    raw = os.environ.get("PATH", "") if path is None else path
    dirs = [d for d in raw.split(":") if d.startswith("/")]
    return dirs or DEFAULT_PATH.split(":")


def which(name: str, path: str | None = None) -> str | None:
    """Absolute path of executable `name` in search_path(path); a name with '/' is taken as is.

    The one home of tool lookup: iptables*, nft, nsenter, ... are found only here.
    """
    if "/" in name:
        return name if _is_exec(name) else None
    if not name or name in (".", ".."):
        return None
    for d in search_path(path):
        p = os.path.join(d, name)
        if _is_exec(p):
            return p
    return None


def program_name(path: str) -> str:
    """The file name a tool's path finally names, after its chain of symlinks
    (/usr/sbin/iptables -> /etc/alternatives/iptables -> xtables-nft-multi): what a multi-call
    binary sees. Only the last component is followed: the name is all that is asked."""
    for _ in range(40):                       # the kernel's own limit on a chain
        try:
            t = os.readlink(path)
        except OSError:
            break
        path = t if t.startswith("/") else os.path.join(os.path.dirname(path), t)
    return os.path.basename(path)


def _is_exec(p: str) -> bool:
    return os.path.isfile(p) and os.access(p, os.X_OK)
