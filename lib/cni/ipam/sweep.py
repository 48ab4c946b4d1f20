"""Whole-directory passes over one network's store: GC of stale reservations, and the
set of taken addresses the allocator skips."""
from __future__ import annotations

import time

from cni.errors import InvalidEnvError
from cni.ipam.layout import (OWNER_DIR, STALE_EMPTY_S, check_owner, fsync_dir, is_special,
                             owner_key, owner_name, parse_content)
from cni.ipam.ranges import parse_ip
from cni.ipam.store import Store
from cni.std import oslite as os


def gc(store: Store, valid) -> list:
    """Release every reservation whose owner is not in `valid` {(id, ifname)}.

    A reservation linked to an owner file belongs to the attachment that file's
    name encodes, whatever its content; an unlinked one is matched by content as
    Go does. Unreadable content is released, a zero-length file (a crashed
    writer's) once it is STALE_EMPTY_S old.
    """
    keep_owner = {}
    for cid, ifname in valid:
        try:
            check_owner(cid, ifname)
        except InvalidEnvError:
            continue
        keep_owner[f"{OWNER_DIR}/{owner_name(cid, ifname)}"] = owner_key(cid, ifname)
    ids = {cid for cid, _ in valid}
    old = time.time() - STALE_EMPTY_S
    entries, owners = store.listing()
    gone = []
    for name, d_ino in entries:
        try:
            parse_ip(name)
        except ValueError:
            continue
        if d_ino in owners:
            keep = owners[d_ino] in keep_owner
        else:
            got = store.inspect(name)
            if got is None:
                continue  # gone meanwhile, or not a regular file: not a reservation
            who, size, mtime = got
            if who is None:
                keep = size == 0 and mtime > old
            else:
                keep = (who[0] in ids) if who[1] is None else (who in valid)
        if not keep and store.unlink(name):
            gone.append(name)
    dropped = False
    for name, _ in store.owner_names():
        path = f"{store.dir}/{name}"
        try:
            nlink = os.stat(path).st_nlink
        except FileNotFoundError:
            continue
        key = keep_owner.get(name)
        if key is None or nlink <= 1:
            dropped = store.unlink(name) or dropped
        elif store.read(name) != parse_content(key):
            store.repair(path, key)
    store.tidy()
    if gone or dropped:
        fsync_dir(store.dir)
    return gone


def taken(store: Store, v6: bool) -> set:
    """Addresses (ints) of one family that have a file; for skipping long taken runs."""
    out = set()
    with os.scandir(store.dir) as it:
        for e in it:
            n = e.name
            if (":" in n) == v6 and not is_special(n):
                try:
                    six, ip = parse_ip(n)
                except ValueError:
                    continue
                if six == v6:
                    out.add(ip)
    return out
