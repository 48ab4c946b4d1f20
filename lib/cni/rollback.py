"""Undo stack for ADD: register each undo right after its step."""
from __future__ import annotations


class on_error:
    """`with on_error() as undo: ...; undo(fn, *a)` runs undos in reverse only if the block raises.

    Undo failures are logged; the original exception always propagates.
    """

    __slots__ = ("_undos",)

    def __init__(self):
        self._undos: list = []

    def __enter__(self):
        return self.push

    def push(self, fn, *args, **kwargs) -> None:
        self._undos.append((fn, args, kwargs))

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            return False
        while self._undos:
            fn, args, kwargs = self._undos.pop()
            try:
                fn(*args, **kwargs)
            except Exception as err:  # keep undoing; report, never mask the cause
                from cni.log import warn  # lazy: a failed undo only
                warn(f"rollback step {getattr(fn, '__name__', fn)} failed: {err}")
        return False
