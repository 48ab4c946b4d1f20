"""Stand-ins for standard-library modules, gathered in one place.

Each module here replaces a stdlib module that a plugin cannot use, for one of two reasons:
Debian's python3-minimal does not ship it (`json`, `ctypes`), or importing it costs a
measurable part of a plugin's ~15 ms start-up budget (`json` pulls in `re`, ~5 ms;
`subprocess` ~12 ms; `ctypes` ~6 ms; `socket` ~3 ms over the bare `_socket`).

- `cni.std.json`     loads/dumps over the C scanner `_json` with a pure-Python fallback;
                     one encoder with a Go mode (encoding/json.Marshal's bytes, for the cache)
- `cni.std.process`  run/spawn/which: posix_spawn + poll instead of `subprocess`
- `cni.std.setns`    setns(2) through os.setns (3.12+) or the bare `_ctypes`
- `cni.std.nsenter`  the helper process under nsenter, for interpreters that have neither
                     (loaded only there: it carries `process`)
- `cni.std.oslite`   `os` over `posix` (imported `as os`): importing `os` costs ~0.9 ms of
                     every exec; names it lacks come from the real `os` on first use

Each is tested against its stdlib twin (tests/unit/test_std_*.py). Two stand-ins live
elsewhere on purpose: `_socket` (the C module under `socket`) is used directly where a socket
is needed (nl/socket.py, nl/garp.py, std/setns.py): it needs no wrapper; and
zipapp/_pycni_boot.py, the in-memory importer that stands in for zipimport, runs before any
`cni` module can be imported and reads an index the builder writes, so it stays with the builder.
"""
