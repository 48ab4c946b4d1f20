"""DHCPv4 for the dhcp IPAM plugin: packet codec, client, lease keeper, daemon, plugin side.

Only `plugin_side` (and `packet` constants) are imported by the plugin process; the rest runs
in `dhcp daemon`.
"""
