"""One nf_tables batch committed over netlink, recomputed from a fresh read when it lost a race.

Used by every fw writer that goes over netlink (cni.fw.iptables_nft, nft_native, nft_firewall):
the batch is built from what the kernel holds, committed (against the ruleset generation read
before it, when `checked`), and rebuilt when another writer got in between.
"""
from __future__ import annotations

from errno import EBUSY, EEXIST, ENOENT, ERESTART

from cni.nl import nftables as nft

RACES = (ERESTART, EBUSY, ENOENT, EEXIST)   # generation changed, busy, rule/chain gone, added


def transact(build, *, retries: int, races: tuple = RACES, checked: bool = True,
             backoff: bool = True) -> None:
    """build(socket) -> nft.Batch, or None for nothing to write; commit it, rebuilding on an
    errno in `races` up to `retries` times (the last failure is raised). checked: the kernel
    refuses the batch (ERESTART) if anything was written since build() began. backoff: a short
    randomised pause between attempts."""
    with nft.NftSocket() as nl:
        for attempt in range(retries):
            genid = nl.genid() if checked else None
            batch = build(nl)
            if batch is None:
                return
            try:
                batch.commit(nl, genid=genid)
                return
            except OSError as exc:
                if exc.errno not in races or attempt == retries - 1:
                    raise
            if backoff:
                _backoff(attempt)


def _backoff(attempt: int) -> None:
    """A short randomised pause so racing writers stop colliding (iptables-nft just loops)."""
    from posix import urandom          # lazy: only a writer that lost a race pays for these
    from select import select
    select([], [], [], (1 + attempt) * urandom(1)[0] / 255 * 0.004)
