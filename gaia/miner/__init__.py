"""The Gaia weather miner: ``python -m gaia.miner``; app factory in :mod:`gaia.miner.app`."""
