"""The miner's weather task: the entry point the plan names for its HTTP routes.

The routes live in :mod:`gaia.miner.routes` with the services behind them; this module
exposes their :data:`router`, which the miner's app includes.
"""

from __future__ import annotations

from gaia.miner.routes import router

__all__ = ["router"]
