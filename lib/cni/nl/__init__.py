"""Kernel access over netlink: codec (bytes <-> Msg), schema tables, sockets, the Rtnl handle."""
