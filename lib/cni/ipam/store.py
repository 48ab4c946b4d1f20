"""host-local's on-disk store: one network's directory (its layout: cni.ipam.layout).

Every reservation of an attachment is a hard link of its owner file, so a
name appears only with its full content (no empty files after SIGKILL), and
DEL finds an attachment's files by inode from one directory listing without
reading them. Files written by the Go plugin (separate inodes) are matched by
content, as Go does. The Go plugin deletes owner files on its DEL (it walks the
folder tree and their content matches) and ignores them otherwise.

Durability: an owner file's content is fsync'd, and its folder too, before
any reservation links to it, so after a power cut a reservation name exists
only with its owner's full content; commit() (end of ADD), release() and gc()
fsync the network folder. A `last_reserved_ip.N` file is only a hint and is
not fsync'd itself. The owner index trusts names, not content: an owner file
(and so every reservation linked to it) that was truncated or overwritten in
place still belongs to the attachment its name encodes.

Our `last_reserved_ip.N` files carry a marker in the nanoseconds of their
mtime; the Go plugin rewrites them in place on each reservation, which clears
it, and tells us someone else has written reservations: the next ADD then
indexes the directory once (see `adopt`).
"""
from __future__ import annotations

import errno
import stat
import time
from fcntl import LOCK_EX, flock

from cni.errors import InvalidConfigError, InvalidEnvError, IOFailureError, os_details
from cni.ipam.layout import (DEFAULT_DATA_DIR, LAST_PREFIX, LOCK, OWNER_DIR, STAMP_NS, TMP,
                             check_network, check_owner, fsync_dir, is_special, owner_key,
                             owner_name, parse_content)
from cni.std import oslite as os

_RO_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a write may take only part)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class Store:
    """One network's directory. Use as a context manager: `with Store(d, net) as st:`.

    Entering creates the directory, takes the lock and removes a stale scratch
    file; every method below needs the lock held. The lock file is opened
    read-only (as Go does), so a store on a read-only filesystem can still be
    locked and read: a DEL with nothing to release succeeds there.
    """
    __slots__ = ("dir", "_lock_fd", "_owner", "_owner_ino", "_owner_made", "_cid", "_ifname",
                 "_made", "_dirty", "_made_dir")

    def __init__(self, data_dir: str, network: str):
        if not isinstance(data_dir, str) or "\x00" in data_dir:
            raise InvalidConfigError("invalid IPAM config", "ipam.dataDir must be a path")
        self.dir = f"{(data_dir or DEFAULT_DATA_DIR).rstrip('/') or '/'}/{check_network(network)}"
        self._lock_fd = -1
        self._owner = None
        self._owner_ino = None
        self._owner_made = False
        self._cid = self._ifname = None
        self._made: list = []     # reservations linked by this Store (undone if commit fails)
        self._dirty = False       # the network folder changed since the last fsync
        self._made_dir = False    # entering created the network folder

    # -- lock -------------------------------------------------------------------------
    def __enter__(self) -> Store:
        path = f"{self.dir}/{LOCK}"
        flags = os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC
        try:
            try:
                fd = os.open(path, flags, 0o600)
            except FileNotFoundError:
                os.makedirs(self.dir, 0o755, exist_ok=True)
                self._made_dir = self._dirty = True
                fd = os.open(path, flags, 0o600)
        except OSError as exc:
            if exc.errno == errno.EROFS and os.path.isdir(self.dir):
                return self  # no lock file on a read-only store: nothing can change it anyway
            raise IOFailureError("cannot open the IPAM store", os_details(exc)) from None
        try:
            flock(fd, LOCK_EX)
            self.unlink(TMP)
        except OSError as exc:
            if exc.errno != errno.EROFS:  # nothing can be left to tidy on a read-only store
                os.close(fd)
                raise IOFailureError("cannot lock the IPAM store", os_details(exc)) from None
        self._lock_fd = fd
        return self

    def __exit__(self, *exc) -> bool:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing drops the flock
            self._lock_fd = -1
        return False

    def unlink(self, name: str) -> bool:
        try:
            os.unlink(f"{self.dir}/{name}")
            return True
        except FileNotFoundError:
            return False

    def _write_tmp(self, data: bytes, mtime_ns: int | None = None, *, sync: bool = False) -> str:
        """Write the scratch file completely; return its path (caller links/renames it)."""
        tmp = f"{self.dir}/{TMP}"
        self.unlink(TMP)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _write_all(fd, data)
            if mtime_ns is not None:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            if sync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def _rename_tmp(self, tmp: str, dst: str) -> None:
        try:
            os.rename(tmp, dst)
        except BaseException:
            self.unlink(TMP)
            raise

    def commit(self) -> None:
        """Make this ADD's changes durable (fsync the folders); if that fails, undo them."""
        if not self._dirty:
            return
        try:
            if self._made_dir:
                fsync_dir(os.path.dirname(self.dir))
            fsync_dir(self.dir)
        except OSError:
            self.unreserve(self._made)
            raise
        self._dirty = self._made_dir = False
        self._made = []

    # -- round-robin marks -----------------------------------------------------------
    def last_reserved(self, idx: int) -> tuple:
        """(ip string or None, written_by_us). A missing file counts as ours."""
        try:
            fd = os.open(f"{self.dir}/{LAST_PREFIX}{idx}", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, True
        except OSError:
            return None, False
        try:
            st = os.fstat(fd)
            data = os.read(fd, 128)
        finally:
            os.close(fd)
        try:
            s = data.decode().strip()
        except UnicodeDecodeError:
            s = ""
        return (s or None), st.st_mtime_ns % 1_000_000_000 == STAMP_NS

    def set_last_reserved(self, idx: int, ip: str) -> None:
        """A hint only: not fsync'd itself (an empty file after a crash reads as no hint)."""
        tmp = self._write_tmp(ip.encode(), int(time.time()) * 1_000_000_000 + STAMP_NS)
        self._rename_tmp(tmp, f"{self.dir}/{LAST_PREFIX}{idx}")
        self._dirty = True

    # -- owner index ----------------------------------------------------------------
    def _open_owner(self, cid: str, ifname: str):
        """(path, inode, nlink, content intact) of the owner file, or (path, None, 0, False).

        The name alone identifies the attachment (plain, or a SHA-256 of the key), so
        a file whose content was truncated or overwritten still counts as its owner.
        """
        path = f"{self.dir}/{OWNER_DIR}/{owner_name(cid, ifname)}"
        key = owner_key(cid, ifname)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return path, None, 0, False
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return path, None, 0, False
            intact = os.read(fd, len(key) + 64).strip() == key
        finally:
            os.close(fd)
        return path, st.st_ino, st.st_nlink, intact

    @staticmethod
    def repair(path: str, key: bytes) -> None:
        """Rewrite a damaged owner file in place: every reservation linked to it heals."""
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            _write_all(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)

    def owner_exists(self, cid: str, ifname: str) -> bool:
        check_owner(cid, ifname)
        return self._open_owner(cid, ifname)[1] is not None

    def begin(self, cid: str, ifname: str) -> None:
        """Select the attachment that reserve() links addresses to (repairing its owner file)."""
        check_owner(cid, ifname)
        self._cid, self._ifname = cid, ifname
        self._owner, self._owner_ino, _, intact = self._open_owner(cid, ifname)
        if self._owner_ino is not None and not intact:
            self.repair(self._owner, owner_key(cid, ifname))
        self._owner_made = False

    def _ensure_owner(self) -> str:
        """The owner file, created durably (content and folder entry) before any link to it."""
        if self._owner_ino is None:
            odir = f"{self.dir}/{OWNER_DIR}"
            path = f"{odir}/{owner_name(self._cid, self._ifname)}"
            tmp = self._write_tmp(owner_key(self._cid, self._ifname), sync=True)
            try:
                os.rename(tmp, path)  # under the lock; replaces a non-owner file if any
            except FileNotFoundError:
                try:
                    os.mkdir(odir, 0o700)
                except BaseException:
                    self.unlink(TMP)
                    raise
                self._dirty = True
                self._rename_tmp(tmp, path)
            except BaseException:
                self.unlink(TMP)
                raise
            self._owner, self._owner_ino, self._owner_made = path, os.stat(path).st_ino, True
            fsync_dir(odir)
        return self._owner

    def reserve(self, ip: str) -> bool:
        """Reserve `ip` (Go's string form) for the begin()'d attachment; False if taken."""
        src = self._ensure_owner()
        try:
            os.link(src, f"{self.dir}/{ip}")
        except FileExistsError:
            return False
        self._made.append(ip)
        self._dirty = True
        return True

    def unreserve(self, ips) -> None:
        """Undo this call's reservations (rollback), and a new, now unused owner file."""
        for ip in ips:
            self.unlink(ip)
        if self._owner_made and self._owner:
            try:
                if os.stat(self._owner).st_nlink <= 1:
                    os.unlink(self._owner)
            except FileNotFoundError:
                pass
        self.tidy()

    # -- scans ------------------------------------------------------------------------
    def owner_names(self) -> list:
        """Owner files, as paths relative to the network folder."""
        try:
            with os.scandir(f"{self.dir}/{OWNER_DIR}") as it:
                return [(f"{OWNER_DIR}/{e.name}", e.inode()) for e in it]
        except FileNotFoundError:
            return []

    def listing(self):
        """[(name, d_ino)] of regular entries, and {owner inode: owner path}."""
        entries = []
        with os.scandir(self.dir) as it:
            for e in it:
                if not is_special(e.name):
                    entries.append((e.name, e.inode()))
        owners = {ino: name for name, ino in self.owner_names()}
        return entries, owners

    def inspect(self, name: str):
        """(parsed content or None, size, mtime) of a regular file, else None."""
        try:
            fd = os.open(f"{self.dir}/{name}", os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW
                         | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return None
            return parse_content(os.read(fd, 4096)), st.st_size, st.st_mtime
        except OSError:
            return None
        finally:
            os.close(fd)

    def read(self, name: str):
        got = self.inspect(name)
        return None if got is None else got[0]

    def owned(self, cid: str, ifname: str) -> tuple:
        """([names owned by (id, ifname)], [legacy id-only names]) - Go's matching rules."""
        check_owner(cid, ifname)
        ino = self._open_owner(cid, ifname)[1]
        entries, owners = self.listing()
        mine, legacy = [], []
        want = (cid, ifname)
        for name, d_ino in entries:
            if ino is not None and d_ino == ino:
                mine.append(name)
                continue
            if d_ino in owners:  # another attachment's link
                continue
            got = self.read(name)
            if got == want:
                mine.append(name)
            elif got is not None and got[1] is None and got[0] == cid:
                legacy.append(name)
        return mine, legacy

    def find(self, cid: str, ifname: str) -> bool:
        """CHECK: does (id, ifname) - or, failing that, a legacy `id` file - hold anything?"""
        check_owner(cid, ifname)
        if self._open_owner(cid, ifname)[2] > 1:
            return True
        mine, legacy = self.owned(cid, ifname)
        return bool(mine or legacy)

    def release(self, cid: str, ifname: str) -> list:
        """Delete (id, ifname)'s reservations (legacy id-only ones if it has none)."""
        mine, legacy = self.owned(cid, ifname)
        gone = [n for n in (mine or legacy) if self.unlink(n)]
        path, ino, _, _ = self._open_owner(cid, ifname)
        if ino is not None:
            os.unlink(path)
        self.tidy()
        if gone or ino is not None:
            fsync_dir(self.dir)
        return gone

    def tidy(self) -> None:
        """Drop the owner folder once empty: a released network looks exactly like Go's."""
        try:
            os.rmdir(f"{self.dir}/{OWNER_DIR}")
        except OSError:  # not empty, not there, or a read-only store
            pass

    def adopt(self) -> bool:
        """Index files written by someone else (the Go plugin) and re-mark last_reserved_ip.

        Each reservation file without an owner file of ours is re-linked to a
        (new) owner file for its content, so later DELs and duplicate checks
        need no content scan. Returns False (and leaves the marks alone) if
        legacy id-only files exist: duplicate checks then keep scanning.
        """
        entries, owners = self.listing()
        clean = True
        for name, d_ino in entries:
            if d_ino in owners:
                continue
            got = self.read(name)
            if got is None:
                continue
            cid, ifname = got
            if ifname is None:
                clean = False
                continue
            try:
                check_owner(cid, ifname)
            except InvalidEnvError:
                continue
            self.begin(cid, ifname)
            src = self._ensure_owner()
            tmp = f"{self.dir}/{TMP}"
            self.unlink(TMP)
            os.link(src, tmp)
            self._rename_tmp(tmp, f"{self.dir}/{name}")
            self._dirty = True
            owners[self._owner_ino] = f"{OWNER_DIR}/{owner_name(cid, ifname)}"
        if clean:
            with os.scandir(self.dir) as it:
                marks = [e.name for e in it if e.name.startswith(LAST_PREFIX)]
            for m in marks:
                idx = m[len(LAST_PREFIX):]
                ip, ours = self.last_reserved(idx)
                if not ours and ip:
                    self.set_last_reserved(idx, ip)
        self._cid = self._ifname = self._owner = self._owner_ino = None
        return clean

    def probe(self) -> None:
        """STATUS: raise OSError unless a reservation could be written now."""
        tmp = self._write_tmp(b"")
        os.unlink(tmp)
