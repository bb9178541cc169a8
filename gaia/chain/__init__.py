"""The chain behind a small protocol: :class:`ChainClient`, :class:`Neuron`, implementations."""

from gaia.chain.client import ChainClient, ChainError, Neuron

__all__ = ["ChainClient", "ChainError", "Neuron"]
