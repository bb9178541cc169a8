"""``admin metagraph``: the subnet's neurons as this validator sees them.

It reads the chain the validator is configured for (same flags), through the same client and
the same eligibility rule as the fan-out, so what it prints is what the next run will do.
"""

from __future__ import annotations

from gaia.chain.client import STAKE_UNIT, Neuron
from gaia.chain.factory import build_chain_client
from gaia.config import Settings
from gaia.validator.eligibility import Eligibility
from gaia.validator.runtime import load_wallet

HEADER = ("uid", "hotkey", f"stake ({STAKE_UNIT})", "permit", "axon", "queried")


def neuron_row(neuron: Neuron, rule: Eligibility) -> tuple[object, ...]:
    axon = "-" if neuron.ip is None else (
        f"[{neuron.ip}]:{neuron.port}" if ":" in neuron.ip else f"{neuron.ip}:{neuron.port}")
    reason = rule.why_not_queried(neuron)
    return (neuron.uid, neuron.hotkey, f"{neuron.stake:,.2f}",
            "yes" if neuron.validator_permit else "no", axon,
            "yes" if reason is None else f"no ({reason})")


async def neuron_rows(settings: Settings) -> tuple[str, list[tuple[object, ...]]]:
    """(a one-line summary, one row per neuron by uid); raises ``ChainError``."""
    wallet, hotkey = load_wallet(settings)
    chain = build_chain_client(settings.chain, hotkey=hotkey, wallet=wallet)
    neurons = sorted(await chain.metagraph(), key=lambda n: n.uid)
    rule = Eligibility(hotkey, settings.validator.allow_private_axons)
    rows = [neuron_row(n, rule) for n in neurons]
    queried = sum(1 for row in rows if row[-1] == "yes")
    where = (f"static chain {settings.chain.static_path}" if settings.chain.kind == "static"
             else f"netuid {settings.chain.netuid} on {settings.chain.network}")
    summary = (f"{where}: {len(neurons)} neurons, {queried} would be queried by {hotkey}; "
               f"stake is each neuron's total stake in the subnet's {STAKE_UNIT}")
    return summary, rows
