"""A chain stand-in backed by JSON files, for local nets and tests.

The neurons file is ``{"neurons": [{"uid", "hotkey", "coldkey", "ip", "port", "stake",
"validator_permit"}, ...]}`` (a bare list is accepted too). Each writer owns its own files
beside it, so several processes never write the same file:

- ``<stem>.served/<hotkey>.json``  ``{"ip", "port"}`` published by :meth:`serve`; merged into
  the neurons that :meth:`metagraph` returns,
- ``<stem>.weights/<hotkey>.json`` ``{"uids", "weights", "version_key"}`` from
  :meth:`set_weights`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from gaia.chain.client import AxonServed, ChainError, Neuron, check_weights


def write_neurons(path: Path, neurons: Sequence[Neuron]) -> None:
    """Write a neurons file that :class:`StaticChainClient` reads."""
    _write_json_atomic(path, {"neurons": [asdict(n) for n in neurons]})


def _write_json_atomic(path: Path, document: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _neuron_from(record: dict[str, Any], path: Path) -> Neuron:
    try:
        return Neuron(
            uid=int(record["uid"]),
            hotkey=str(record["hotkey"]),
            coldkey=str(record.get("coldkey", "")),
            ip=record.get("ip"),
            port=None if record.get("port") is None else int(record["port"]),
            stake=float(record.get("stake", 0.0)),
            validator_permit=bool(record.get("validator_permit", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChainError(f"bad neuron record {record!r} in {path}: {exc}") from exc


class StaticChainClient:
    """A :class:`~gaia.chain.client.ChainClient` reading neurons from ``path``.

    ``hotkey`` is the identity that serves and sets weights (this process's wallet).
    """

    def __init__(self, path: Path, *, hotkey: str) -> None:
        self.path = Path(path)
        self.hotkey = hotkey
        self.served_dir = self.path.with_name(f"{self.path.stem}.served")
        self.weights_dir = self.path.with_name(f"{self.path.stem}.weights")

    async def metagraph(self) -> list[Neuron]:
        return await asyncio.to_thread(self._read_metagraph)

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> str:
        check_weights(uids, weights)
        document = {
            "uids": [int(u) for u in uids],
            "weights": [float(w) for w in weights],
            "version_key": int(version_key),
        }
        await asyncio.to_thread(
            _write_json_atomic, self.weights_dir / f"{self.hotkey}.json", document
        )
        await asyncio.to_thread(self._append_history, document)
        return "written"

    def _append_history(self, document: dict[str, Any]) -> None:
        with open(self.weights_dir / f"{self.hotkey}.history.jsonl", "a") as history:
            history.write(json.dumps(document) + "\n")

    def weight_history(self, hotkey: str) -> list[dict[str, Any]]:
        """Every submission of ``hotkey``, oldest first (a chain's record of extrinsics)."""
        target = self.weights_dir / f"{hotkey}.history.jsonl"
        if not target.exists():
            return []
        return [json.loads(line) for line in target.read_text().splitlines() if line]

    async def serve(self, ip: str, port: int) -> AxonServed:
        document = {"ip": ip, "port": int(port)}
        target = self.served_dir / f"{self.hotkey}.json"
        if target.exists() and json.loads(target.read_text()) == document:
            return AxonServed.UNCHANGED
        await asyncio.to_thread(_write_json_atomic, target, document)
        return AxonServed.PUBLISHED

    def read_weights(self, hotkey: str) -> dict[str, Any] | None:
        """The weights ``hotkey`` last submitted, or None."""
        target = self.weights_dir / f"{hotkey}.json"
        return json.loads(target.read_text()) if target.exists() else None

    def _read_metagraph(self) -> list[Neuron]:
        try:
            document = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ChainError(f"cannot read static chain file {self.path}: {exc}") from exc
        records = document["neurons"] if isinstance(document, dict) else document
        neurons = [_neuron_from(record, self.path) for record in records]
        return [self._with_served_axon(n) for n in neurons]

    def _with_served_axon(self, neuron: Neuron) -> Neuron:
        served = self.served_dir / f"{neuron.hotkey}.json"
        if not served.exists():
            return neuron
        axon = json.loads(served.read_text())
        return replace(neuron, ip=str(axon["ip"]), port=int(axon["port"]))
