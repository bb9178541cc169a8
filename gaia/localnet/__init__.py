"""``python -m gaia.localnet``: a whole subnet on this machine running one hindcast run."""
