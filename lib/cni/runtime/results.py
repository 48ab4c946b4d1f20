"""Results as the runtime keeps and passes them: the cache file read back as a result or a
RuntimeConf, a result written to it, and a result as the next plugin's prevResult.

CNIConfig and cni.runtime.update both use these; the file format itself is cni.runtime.cache.
"""
from __future__ import annotations

import os

from cni.convert import from_json, to_json
from cni.errors import CNIError, InternalError
from cni.runtime import cache
from cni.runtime.request import RuntimeConf
from cni.types import Result


def as_prev(result: Result, version: str) -> dict:
    """A result as the next request's prevResult, in the list version when expressible."""
    try:
        return to_json(result, version)
    except CNIError:
        return to_json(result, result.cni_version)


def go_dict(result: Result) -> dict:
    """The result as Go's struct marshalling writes it (the 1.x/0.x `dns` is never omitted)."""
    d = to_json(result, result.cni_version)
    d.setdefault("dns", {})
    return d


def cached_dict(cache_dir: str, name: str, version: str, rt: RuntimeConf) -> dict | None:
    """The cached ADD result as a dict in `version`, or None (raises on a bad file)."""
    try:
        obj = cache.read_result(cache_dir, name, rt.container_id, rt.ifname)
    except ValueError as exc:
        raise InternalError(f"failed to get network {name!r} cached result",
                            str(exc)) from None
    if obj is None:
        return None
    try:
        return to_json(from_json(obj, version), version)
    except CNIError as exc:
        raise exc.__class__(f"failed to convert cached result to config version {version!r}",
                            str(exc), code=exc.code) from None


def cached_config(cache_dir: str, name: str, rt: RuntimeConf) \
        -> tuple[bytes | None, RuntimeConf | None]:
    """(configuration bytes, `rt` with the cached CNI_ARGS and capability arguments) as the
    last ADD cached them, or (None, None) without a cache file."""
    try:
        att = cache.read_attachment(cache_dir, name, rt.container_id, rt.ifname)
        exists = att is not None or os.path.exists(
            cache.path(cache_dir, name, rt.container_id, rt.ifname))
    except ValueError as exc:
        raise InternalError(f"failed to read cached network {name!r} config",
                            str(exc)) from None
    if att is None:
        if exists:
            raise InternalError(f"failed to read cached network {name!r} config",
                                f"not a {cache.KIND} cache file")
        return None, None
    new = RuntimeConf(rt.container_id, rt.netns, rt.ifname,
                      args=rt.args if att.cni_args is None else att.cni_args,
                      capability_args=att.capability_args)
    return att.config, new


def store(cache_dir: str, name: str, config: bytes, rt: RuntimeConf, result: Result) -> None:
    """Cache the attachment `rt` of network `name` with its config and final result."""
    try:
        cache.write(cache_dir, name, rt.container_id, rt.ifname, config,
                    netns=rt.netns, cni_args=rt.args, capability_args=rt.capability_args,
                    result=go_dict(result))
    except (OSError, ValueError) as exc:
        raise InternalError(f"failed to set network {name!r} cached result",
                            str(exc)) from None
