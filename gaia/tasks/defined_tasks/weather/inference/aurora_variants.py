"""The Aurora variants the miner can run, and where their published files live.

Plain data, no torch: the CLI's ``--help``, the start-up checks and ``model fetch`` read it
without the ``aurora`` extra installed. Every variant here takes the project's 69 fields
(surface 2t/10u/10v/msl, z/u/v/t/q on the 13 levels), two inputs 6 h apart and the static
fields lsm/z/slt, and steps 6 h, which is the protocol's lead step.

Left out on purpose: ``Aurora12hPretrained`` (12 h steps, the protocol needs 6 h),
``AuroraHighRes`` (0.1 degree) and ``AuroraAirPollution`` (other variables).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

HUB_REPO = "microsoft/aurora"
HUB_URL = "https://huggingface.co"
# The statics Aurora's authors publish (lsm, z, slt from ERA5 at 0.25 degree, a pickled dict
# of numpy arrays, north to south, longitudes from 0).
STATICS_FILE = "aurora-0.25-static.pickle"
STATICS_REVISION = "0be7e57c685dac86b78c4a19a3ab149d13c6a3dd"
TINY_VARIANT = "tiny"


@dataclass(frozen=True)
class AuroraVariant:
    """One network configuration and the published checkpoint that fits it (if any)."""

    name: str
    class_name: str  # the class in the ``aurora`` package
    about: str
    checkpoint_file: str | None = None  # in HUB_REPO; None: no published weights
    revision: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # constructor keywords


VARIANTS: dict[str, AuroraVariant] = {
    variant.name: variant
    for variant in (
        AuroraVariant(
            "Aurora", "Aurora",
            "1.3 B parameters, fine-tuned on IFS HRES analyses; a GPU with >= 40 GB",
            "aurora-0.25-finetuned.ckpt", "0be7e57c685dac86b78c4a19a3ab149d13c6a3dd",
        ),
        AuroraVariant(
            "AuroraPretrained", "AuroraPretrained",
            "1.3 B parameters, pre-trained on ERA5 and other reanalyses; a GPU with >= 40 GB",
            "aurora-0.25-pretrained.ckpt", "0be7e57c685dac86b78c4a19a3ab149d13c6a3dd",
        ),
        AuroraVariant(
            "AuroraSmallPretrained", "AuroraSmallPretrained",
            "113 M parameters, pre-trained; for trying things out (a GPU with >= 16 GB)",
            "aurora-0.25-small-pretrained.ckpt", "0be7e57c685dac86b78c4a19a3ab149d13c6a3dd",
        ),
        AuroraVariant(
            TINY_VARIANT, "Aurora",
            "a few hundred thousand parameters and no published weights: random-weight "
            "checkpoints for tests and the localnet (no skill)",
            options={
                "embed_dim": 32, "num_heads": 2, "encoder_depths": (1, 1, 1),
                "encoder_num_heads": (1, 2, 4), "decoder_depths": (1, 1, 1),
                "decoder_num_heads": (4, 2, 1), "use_lora": False,
            },
        ),
    )
}
ALIASES = {"AuroraSmall": "AuroraSmallPretrained"}


class UnknownVariant(ValueError):
    """No variant of that name."""


def variant_named(name: str) -> AuroraVariant:
    variant = VARIANTS.get(ALIASES.get(name, name))
    if variant is None:
        raise UnknownVariant(f"unknown Aurora variant {name!r}; known: {', '.join(VARIANTS)}")
    return variant
