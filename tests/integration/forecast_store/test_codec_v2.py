"""Protocol v2's field codec end to end: the real writer's files, the layout check and the
validator's decoder, and a zarr reader on the same directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from numcodecs import BitRound, Blosc

from gaia.tasks.defined_tasks.weather.forecast_codec import (
    FIELD_CLEVEL,
    FIELD_CNAME,
    KEEPBITS,
    CodecInvalid,
    decode_field,
    encode_field,
)
from gaia.tasks.defined_tasks.weather.forecast_layout import LayoutInvalid, StoreLayout
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES
from tests.fixtures.forecast_store import WrittenForecast, new_keypair, write_small_forecast


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> WrittenForecast:
    return write_small_forecast(tmp_path_factory.mktemp("codec") / "job-1", new_keypair())


def _rounded(variable: str, values: np.ndarray) -> np.ndarray:
    return BitRound(KEEPBITS[variable]).encode(values.astype(np.float32)).view(np.float32).reshape(
        values.shape
    )


def _field(written: WrittenForecast, variable: str, lead: int, level_index: int | None) -> np.ndarray:
    values = written.leads[lead][variable].squeeze("time").values
    return values if level_index is None else values[level_index]


def _checked_decode(written: WrittenForecast, key: str, data: bytes, variable: str) -> np.ndarray:
    """What the validator does with a chunk: layout check, then decode and precision check."""
    StoreLayout.from_manifest(written.signed.manifest).check(key, data)
    return decode_field(key, data, variable, written.signed.manifest.grid.to_grid().shape)


def test_every_written_field_decodes_to_its_bit_rounded_values(written: WrittenForecast) -> None:
    manifest = written.signed.manifest
    for variable in manifest.variables:
        levels = [None] if variable in ("2t", "10u", "10v", "msl") else range(len(manifest.levels))
        for lead_index, lead in enumerate(manifest.lead_hours):
            for level_index in levels:
                key = chunk_key(variable, lead_index, level_index)
                decoded = _checked_decode(written, key, (written.root / key).read_bytes(), variable)
                expected = _rounded(variable, _field(written, variable, lead, level_index))
                np.testing.assert_array_equal(decoded, expected, err_msg=key)
                assert not np.array_equal(decoded, _field(written, variable, lead, level_index))


def test_a_zarr_reader_reads_the_store_as_written(written: WrittenForecast) -> None:
    stored = xr.open_zarr(written.root, consolidated=True, zarr_format=3, chunks=None)
    lead = written.signed.manifest.lead_hours[1]
    np.testing.assert_array_equal(
        stored["z"].sel(lead_hours=lead).isel(level=1).values, _rounded("z", _field(written, "z", lead, 1))
    )
    np.testing.assert_array_equal(
        stored["msl"].sel(lead_hours=lead).values, _rounded("msl", _field(written, "msl", lead, None))
    )


def test_a_chunk_with_excess_precision_is_refused_naming_key_and_variable(
    written: WrittenForecast,
) -> None:
    key = chunk_key("t", 2, 0)
    unrounded = _field(written, "t", written.signed.manifest.lead_hours[2], 0).astype("<f4")
    codec = Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.BITSHUFFLE)
    data = bytes(codec.encode(unrounded))
    StoreLayout.from_manifest(written.signed.manifest).check(key, data)  # the header is the protocol's
    with pytest.raises(CodecInvalid, match=rf"{key}: t values carry more precision than protocol v2"):
        decode_field(key, data, "t", unrounded.shape)


def test_a_field_rounded_for_a_coarser_variable_passes_a_finer_ones_check_not_the_reverse() -> None:
    values = np.random.default_rng(3).normal(280.0, 10.0, (19, 36)).astype(np.float32)
    assert KEEPBITS["q"] < KEEPBITS["z"]
    decode_field("z/c/0/0/0/0", encode_field("q", values), "z", values.shape)
    with pytest.raises(CodecInvalid, match="q values carry more precision"):
        decode_field("q/c/0/0/0/0", encode_field("z", values), "q", values.shape)


def test_nan_and_inf_survive_rounding_and_pass_the_check() -> None:
    values = np.full((4, 8), 101325.7, dtype=np.float32)
    values[0, :3] = [np.nan, np.inf, -np.inf]
    values[1, 0] = np.frombuffer(np.uint32(0x7F800001).tobytes(), dtype=np.float32)[0]  # NaN, low payload
    decoded = decode_field("msl/c/0/0/0", encode_field("msl", values), "msl", values.shape)
    assert np.isnan(decoded[0, 0]) and np.isnan(decoded[1, 0])
    assert decoded[0, 1] == np.inf and decoded[0, 2] == -np.inf
    np.testing.assert_array_equal(decoded[2], _rounded("msl", values[2]))


@pytest.mark.parametrize(("blosc", "reason"), [
    (Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.SHUFFLE), "shuffle bits 001"),
    (Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.NOSHUFFLE), "shuffle bits 000"),
    (Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE), "compressor code 1, expected 4"),
    (Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE), "shuffle bits 001"),  # protocol v1's
])
def test_another_blosc_shuffle_or_compressor_is_refused(
    written: WrittenForecast, blosc: Blosc, reason: str,
) -> None:
    key = chunk_key("2t", 0, None)
    rounded = _rounded("2t", _field(written, "2t", written.signed.manifest.lead_hours[0], None))
    with pytest.raises(LayoutInvalid, match=reason):
        StoreLayout.from_manifest(written.signed.manifest).check(key, bytes(blosc.encode(rounded)))


def test_metadata_with_another_keepbits_is_refused(written: WrittenForecast) -> None:
    layout = StoreLayout.from_manifest(written.signed.manifest)
    for key in ("zarr.json", "z/zarr.json"):  # the written documents pass as they are
        layout.check(key, (written.root / key).read_bytes())
    document = json.loads((written.root / "z" / "zarr.json").read_bytes())
    assert document["codecs"][0] == {"name": "numcodecs.bitround", "configuration": {"keepbits": 16}}
    document["codecs"][0]["configuration"]["keepbits"] = 23
    with pytest.raises(LayoutInvalid, match=r"codecs is .*keepbits.: 23"):
        layout.check("z/zarr.json", json.dumps(document).encode())
    root = json.loads((written.root / "zarr.json").read_bytes())
    root["consolidated_metadata"]["metadata"]["t"]["codecs"].pop(0)  # no rounding declared
    with pytest.raises(LayoutInvalid, match="consolidated_metadata.metadata.t.codecs"):
        layout.check("zarr.json", json.dumps(root).encode())


def test_every_protocol_variable_has_keepbits() -> None:
    assert set(KEEPBITS) == set(ALL_VARIABLES)
    assert KEEPBITS["z"] > KEEPBITS["t"] and KEEPBITS["msl"] > KEEPBITS["2t"]


def test_a_chunk_declaring_another_size_does_not_decode(written: WrittenForecast) -> None:
    shape = written.signed.manifest.grid.to_grid().shape
    data = encode_field("2t", np.zeros((shape[0], shape[1] + 1), dtype=np.float32))
    with pytest.raises(CodecInvalid, match="does not decode: it declares"):
        decode_field("2t/c/0/0/0", data, "2t", shape)
