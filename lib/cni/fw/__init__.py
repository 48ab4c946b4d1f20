"""Firewall rules shared by plugins: masquerade (masq), port mapping (portmap), firewall.

Backends live in iptables.py (save/restore batches; on an iptables-nft host the same edits go
over netlink through iptables_nft.py, with the rule text in ipt_rule.py and its nf_tables
expressions in ipt_expr.py) and nft_text.py (nft -j / nft -f -); nft_native.py and
nft_firewall.py write nf_tables over netlink, each batch committed by nft_commit.py.
backend.py chooses between them and holds Go-compatible name helpers; rules.py checks every
value that reaches rule text.
"""
