"""Network helpers shared by the validator and the miner."""
