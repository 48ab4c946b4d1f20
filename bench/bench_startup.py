"""Start-up bench: VERSION and a chained ADD, against the zipapp floor and `import json`."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import BIN, GO_BIN, exec_once, line, paired  # noqa: E402

PY = "/usr/bin/python3"


def make_empty_zipapp(d: str) -> str:
    p = os.path.join(d, "empty")
    with open(p, "wb") as f:
        f.write(f"#!{PY} -IS\n".encode())
        with zipfile.ZipFile(f, "w") as z:
            z.writestr("__main__.py", "import sys\nsys.stdout.write('{}')\n")
    os.chmod(p, 0o755)
    return p


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        empty = make_empty_zipapp(d)
        vin = os.path.join(d, "version.json")
        with open(vin, "w") as f:
            f.write('{"cniVersion":"1.0.0"}')
        ain = os.path.join(d, "add.json")
        with open(ain, "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "net1", "type": "sample",
                       "anotherAwesomeArg": "x", "prevResult": {
                           "cniVersion": "1.0.0",
                           "interfaces": [{"name": "eth0", "sandbox": "/run/netns/x"}],
                           "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1",
                                    "interface": 0}],
                           "routes": [{"dst": "0.0.0.0/0"}]}}, f)
        venv = {"CNI_COMMAND": "VERSION", "PATH": "/usr/bin:/bin"}
        aenv = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "bench", "CNI_NETNS": "/run/netns/x",
                "CNI_IFNAME": "eth0", "CNI_PATH": BIN, "PATH": "/usr/bin:/bin"}
        sample = os.path.join(BIN, "sample")
        assert exec_once([sample], aenv, ain)[1] == 0, "sample ADD failed"
        cases = {
            "sample_version": lambda: exec_once([sample], venv, vin)[0],
            "empty_zipapp": lambda: exec_once([empty], venv, vin)[0],
            "sample_add": lambda: exec_once([sample], aenv, ain)[0],
            "import_json": lambda: exec_once([PY, "-IS", "-c", "import json"], venv, vin)[0],
            "bare": lambda: exec_once([PY, "-IS", "-c", "pass"], venv, vin)[0],
        }
        go = os.path.join(GO_BIN, "bridge")
        if os.path.exists(go):
            cases["go_version"] = lambda: exec_once([go], venv, vin)[0]
        m = paired(cases, n=int(os.environ.get("BENCH_N", "60")))
    print("== start-up (median wall time per exec, stdin from a file)")
    print(f"{'bare python3 -IS -c pass':<44} {m['bare'] * 1000:8.2f} ms")
    print(line("bin/sample VERSION vs empty zipapp", m["sample_version"], m["empty_zipapp"],
               "empty"))
    print(line("bin/sample ADD (chained) vs python -IS import json", m["sample_add"],
               m["import_json"], "json"))
    if "go_version" in m:
        print(line("bin/sample VERSION vs Go bridge VERSION", m["sample_version"], m["go_version"],
                   "go"))
        print(line("bin/sample ADD vs Go bridge VERSION", m["sample_add"], m["go_version"], "go"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
