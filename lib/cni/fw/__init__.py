"""Firewall rules shared by plugins: masquerade (masq), port mapping (portmap), firewall.

Backends live in iptables.py (save/restore batches) and nft_text.py (nft -j / nft -f -);
backend.py chooses between them and holds Go-compatible name helpers.
"""
