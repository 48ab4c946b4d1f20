"""sample: the template for writing a chained CNI plugin.

Copy this file to plugins/<name>.py, rename things, and `make` builds
bin/<name>. It takes the previous plugin's result (prevResult), checks that
it has at least one IP, and passes it on unchanged.

Config keys (beyond the spec's own):
  anotherAwesomeArg  string, required: an example of a plugin-specific field.
  myAwesomeFlag      bool, optional.
  runtimeConfig.sample  map, filled by the runtime for the custom `sample` capability.
"""
from __future__ import annotations

# Keep module-level imports to what every verb needs: a plugin starts for
# each call, so an import that only ADD uses belongs inside `add`.
from cni import ipam, skel
from cni.config import NetConf
from cni.errors import CNIError, InvalidConfigError


class Config(NetConf):
    # One row per field: JSON key -> (attribute, type, default).
    FIELDS = {
        "anotherAwesomeArg": ("another_awesome_arg", str, ""),
        "myAwesomeFlag": ("my_awesome_flag", bool, False),
    }
    __slots__ = ("another_awesome_arg", "my_awesome_flag")

    def validate(self) -> None:
        # Errors name the field: the operator reads this message.
        if not self.another_awesome_arg:
            raise InvalidConfigError("invalid config", "anotherAwesomeArg must be specified")


def add(args: skel.Args, conf: Config):
    # conf.prev_result was parsed by the skeleton in the version family of the
    # config (any of 0.1.0 ... 1.1.0) and is held in the 1.1 model; the
    # skeleton converts our return value back to conf.cni_version.
    prev = conf.prev_result
    if prev is None:
        raise InvalidConfigError("must be called as chained plugin", "prevResult is missing")
    if not prev.ips:
        raise CNIError("got no container IPs", "prevResult has no ips")
    # A real plugin does its work here, e.g. inside the container:
    #   from cni.netns import NetNS
    #   with NetNS.open(args.netns) as ns, ns.enter(): ...
    return prev


def delete(args: skel.Args, conf: Config) -> None:
    # DEL must succeed when there is nothing to undo (repeated DEL, netns gone).
    return None


def check(args: skel.Args, conf: Config) -> None:
    if conf.prev_result is None:
        raise InvalidConfigError("must be called as chained plugin", "prevResult is missing")


def status(args: skel.Args, conf: Config) -> None:
    # STATUS says whether ADD could work now; forward it to IPAM when there is one.
    if conf.ipam_type():
        ipam.exec_status(conf, args)


PLUGIN = skel.Plugin("sample", Config, add=add, delete=delete, check=check, status=status)
main = PLUGIN.main

if __name__ == "__main__":
    main()
