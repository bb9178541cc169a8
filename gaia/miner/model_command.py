"""``python -m gaia.miner model fetch|check aurora``: get and check a model's files, once.

The miner never downloads a model while it runs. ``fetch`` downloads a variant's published
checkpoint and Aurora's statics file from the model hub into a folder (where the network
allows), checks that the checkpoint loads into the variant's network, and prints the sha256
of each file and the flags to start the miner with. ``check`` does the same checks on files
already there (copied from another machine, say)::

    python -m gaia.miner model fetch aurora --aurora.variant AuroraSmallPretrained --out models/
    python -m gaia.miner model check aurora --aurora.variant AuroraSmallPretrained \\
        --aurora.checkpoint models/aurora-0.25-small-pretrained.ckpt

Exit status: 0 when the files are fit to use, 1 when not (one ``error:`` line says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gaia.tasks.defined_tasks.weather.inference.aurora_loader import (
    AuroraSetupError,
    checked_checkpoint,
    checked_statics,
    file_sha256,
    load_network,
    pick_device,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import (
    HUB_REPO,
    HUB_URL,
    STATICS_FILE,
    STATICS_REVISION,
    VARIANTS,
    AuroraVariant,
    UnknownVariant,
    variant_named,
)

# (repo, file name, revision, folder, hub URL) -> the local file
Download = Callable[[str, str, str | None, Path, str], Path]


class FetchFailed(RuntimeError):
    """The hub could not be reached or has not got the file."""


def hub_download(repo: str, filename: str, revision: str | None, folder: Path, hub_url: str
                 ) -> Path:
    """One file from the model hub into ``folder`` (resumed when partly there)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision,
                                    local_dir=folder, endpoint=hub_url))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as error:
        words = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise FetchFailed(f"cannot download {filename} from {hub_url}/{repo}: {words}") from error


@dataclass(frozen=True)
class CheckedFiles:
    variant: AuroraVariant
    checkpoint: Path
    checkpoint_sha256: str
    statics: Path | None
    statics_sha256: str | None

    def report(self) -> str:
        lines = [f"checkpoint {self.checkpoint}  sha256 {self.checkpoint_sha256}  "
                 f"(loads into {self.variant.name})"]
        flags = [f"--model aurora --aurora.variant {self.variant.name}",
                 f"--aurora.checkpoint {self.checkpoint}",
                 f"--aurora.checkpoint-sha256 {self.checkpoint_sha256}"]
        if self.statics is not None:
            lines.append(f"statics    {self.statics}  sha256 {self.statics_sha256}")
            flags.append(f"--aurora.statics {self.statics}")
        return "\n".join([*lines, "start the miner with:",
                          "  python -m gaia.miner " + " \\\n      ".join(flags)])


def check_files(variant: AuroraVariant, checkpoint: Path, statics: Path | None,
                grid_deg: float, device: str) -> CheckedFiles:
    digest = checked_checkpoint(checkpoint, None)
    checked_statics(statics, grid_deg)
    load_network(variant, checkpoint, pick_device(device))
    return CheckedFiles(variant, checkpoint, digest, statics,
                        file_sha256(statics) if statics is not None else None)


def fetch_files(variant: AuroraVariant, folder: Path, *, with_statics: bool, hub_url: str,
                grid_deg: float, device: str, download: Download = hub_download
                ) -> CheckedFiles:
    if variant.checkpoint_file is None:
        raise AuroraSetupError("variant", f"variant {variant.name} has no published weights")
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = download(HUB_REPO, variant.checkpoint_file, variant.revision, folder, hub_url)
    statics = (download(HUB_REPO, STATICS_FILE, STATICS_REVISION, folder, hub_url)
               if with_statics else None)
    return check_files(variant, checkpoint, statics, grid_deg, device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gaia.miner model", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    fetch = actions.add_parser("fetch", help="download a variant's files, check them")
    check = actions.add_parser("check", help="check files that are already here")
    for sub in (fetch, check):
        sub.add_argument("model", choices=["aurora"], help="the model whose files these are")
        sub.add_argument("--aurora.variant", dest="variant", default="Aurora",
                         help=f"one of {', '.join(VARIANTS)} (default Aurora)")
        sub.add_argument("--aurora.grid-deg", dest="grid_deg", type=float, default=0.25,
                         help="grid the statics must be on (default 0.25)")
        sub.add_argument("--device", choices=["auto", "cuda", "cpu"], default="cpu",
                         help="where to load the checkpoint for the check (default cpu)")
    fetch.add_argument("--out", type=Path, default=Path("models"),
                       help="folder for the files (default ./models)")
    fetch.add_argument("--no-statics", action="store_true",
                       help=f"skip {STATICS_FILE} (the miner then takes statics from GFS)")
    fetch.add_argument("--hub-url", default=HUB_URL, help=f"model hub (default {HUB_URL})")
    check.add_argument("--aurora.checkpoint", dest="checkpoint", type=Path, required=True)
    check.add_argument("--aurora.statics", dest="statics", type=Path, default=None)
    return parser


def run(args: argparse.Namespace, download: Download = hub_download) -> CheckedFiles:
    variant = variant_named(args.variant)
    if args.action == "fetch":
        return fetch_files(variant, args.out, with_statics=not args.no_statics,
                           hub_url=args.hub_url, grid_deg=args.grid_deg, device=args.device,
                           download=download)
    return check_files(variant, args.checkpoint, args.statics, args.grid_deg, args.device)


def main(argv: Sequence[str] | None = None, download: Download = hub_download) -> int:
    args = build_parser().parse_args(argv)
    try:
        checked = run(args, download)
    except (AuroraSetupError, UnknownVariant, FetchFailed) as error:
        print(f"python -m gaia.miner model: error: {error}", file=sys.stderr)
        return 1
    print(checked.report())
    return 0
