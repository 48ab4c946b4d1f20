"""pycni-install: build the plugin zipapps for a node's interpreter into a directory.

    pycni-install [--python /usr/bin/python3] [--only NAME[,NAME...]] DEST   (e.g. /opt/cni/bin)

An installed wheel carries the plugin sources (cni._dist.plugins) and the zipapp
builder (cni._dist.zipapp); a source checkout has them at plugins/ and zipapp/.
Either way this lays out the tree the builder expects (lib/cni, plugins, zipapp)
in a temporary directory and runs `zipapp/build.py` with its own command line,
under the target interpreter when it can run here (its bytecode is then the
one shipped), else under this one (the archives still run: zipimport falls
back to the sources). Each archive is written atomically (temp file + rename).
"""
from __future__ import annotations

import os
import sys

from cni.std import process as proc

DEFAULT_DEST = "/opt/cni/bin"
DEFAULT_PYTHON = "/usr/bin/python3"


def sources() -> tuple:
    """(cni package dir, plugins dir, zipapp dir) of this installation or checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    pkg = os.path.dirname(here)
    if os.path.isfile(os.path.join(here, "zipapp", "build.py")):  # an installed wheel
        return pkg, os.path.join(here, "plugins"), os.path.join(here, "zipapp")
    repo = os.path.dirname(os.path.dirname(pkg))  # lib/cni/_dist -> the checkout
    plugins, zipapp = os.path.join(repo, "plugins"), os.path.join(repo, "zipapp")
    if not os.path.isfile(os.path.join(zipapp, "build.py")) or not os.path.isdir(plugins):
        raise FileNotFoundError(f"no plugin sources next to {pkg}: reinstall pycni")
    return pkg, plugins, zipapp


def builder_python(target: str) -> str:
    """The interpreter that runs the builder: the target if it runs here, else this one."""
    if os.path.isfile(target) and os.access(target, os.X_OK):
        return target
    return sys.executable


def build(dest: str, *, python: str = DEFAULT_PYTHON, only=None) -> list:
    """Build the zipapps into dest (created if missing); return the paths written."""
    pkg, plugins, zipapp = sources()
    os.makedirs(dest, exist_ok=True)
    before = {n: os.stat(os.path.join(dest, n)).st_mtime_ns for n in os.listdir(dest)}
    # the tree build.py expects, made of symlinks (tempfile would pull in shutil, which
    # python3-minimal lacks)
    tmp = os.path.join(os.environ.get("TMPDIR") or "/tmp", "pycni-build-" + os.urandom(6).hex())
    links = [(pkg, os.path.join(tmp, "lib", "cni")), (plugins, os.path.join(tmp, "plugins")),
             (zipapp, os.path.join(tmp, "zipapp"))]
    os.makedirs(os.path.join(tmp, "lib"), mode=0o700)
    try:
        for src, link in links:
            os.symlink(src, link)
        argv = [builder_python(python), os.path.join(tmp, "zipapp", "build.py"),
                "--python", python, "--out", os.path.abspath(dest)]
        if only:
            argv += ["--only", *only]
        rc, _, err = proc.run(argv, b"", dict(os.environ), None)
    finally:
        for _, link in links:
            if os.path.islink(link):
                os.unlink(link)
        os.rmdir(os.path.join(tmp, "lib"))
        os.rmdir(tmp)
    if rc != 0:
        msg = err.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"zipapp build failed (exit {rc}): {msg[-1] if msg else ''}")
    return sorted(os.path.join(dest, n) for n in os.listdir(dest)
                  if before.get(n) != os.stat(os.path.join(dest, n)).st_mtime_ns)


def main(argv=None) -> None:
    import argparse  # a command-line edge, never on a plugin's path
    ap = argparse.ArgumentParser(
        prog="pycni-install", description="Build the pycni plugins (one zipapp each, plus"
        " cnitool) for a node's Python interpreter and install them into DEST.")
    ap.add_argument("dest", metavar="DEST",
                    help=f"plugin directory, created if missing (e.g. {DEFAULT_DEST})")
    ap.add_argument("--python", default=DEFAULT_PYTHON,
                    help="interpreter in the zipapps' #! line, Python >= 3.9"
                         f" (default {DEFAULT_PYTHON})")
    ap.add_argument("--only", action="append", metavar="NAME[,NAME...]",
                    help="build only these binaries (repeatable)")
    a = ap.parse_args(argv)
    only = [n for arg in a.only or () for n in arg.split(",") if n] or None
    try:
        written = build(a.dest, python=a.python, only=only)
    except (OSError, RuntimeError) as exc:
        sys.stderr.write(f"pycni-install: {exc}\n")
        raise SystemExit(1) from None
    names = " ".join(os.path.basename(p) for p in written)
    sys.stdout.write(f"pycni-install: {len(written)} binaries in {a.dest} for {a.python}:"
                     f" {names}\n")


if __name__ == "__main__":
    main()
