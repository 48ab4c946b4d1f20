"""DHCPv4 for the dhcp IPAM plugin: packet (codec), transport (raw socket), client (exchanges,
Lease), lease (keeper threads), state (persisted leases), request (a request's args, options and
result), server (socket framing), daemon (the process), flags, plugin_side.

Only `plugin_side` (and `packet` constants) are imported by the plugin process; the rest runs
in `dhcp daemon`.
"""
