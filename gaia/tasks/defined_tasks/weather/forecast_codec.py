"""The protocol's codec for forecast field chunks (protocol v2): how the miner encodes one
field and how the validator decodes one it has already verified (sha256, size,
``forecast_layout``).

Protocol v2 stores every field bit-rounded: float32 values keep ``KEEPBITS[variable]`` of
their 23 mantissa bits (round to nearest, ties to even; numcodecs ``BitRound``), and the
chunk is Blosc-compressed with bit-shuffle, so the zeroed low bits cost next to nothing.
In zarr terms each field array's codecs are ``[numcodecs.bitround, bytes (little endian),
blosc]`` (``field_codecs_metadata``); the writer (``forecast_store``) declares them, the
layout check (``forecast_layout``) accepts exactly them, and ``decode_field`` refuses a
chunk whose values carry more mantissa bits than the table allows, so the saving is real:
a miner cannot send full-precision floats under the v2 label.

Why these keepbits (``benchmarks/forecast_codec.py``, real GFS fields made forecast-like
with day-1-sized errors; worst over levels and over two climatology proxies):

=========  ========  =================  ===================  ==================
variable   keepbits  worst ΔACC         worst ΔRMSE          size vs v1 (zstd-1)
=========  ========  =================  ===================  ==================
2t         13        2.1e-6             0.0046 %             0.41
10u, 10v   10        1.4e-7             0.0002 %             0.46-0.48
msl        16        1.2e-7             0.0005 %             0.50
t          14        1.1e-6             0.0028 %             0.43
u, v       10        4.5e-7             0.0006 %             0.43-0.46
q          10        1.1e-6             0.0010 %             0.40
z          16        2.0e-7             0.0017 %             0.54
=========  ========  =================  ===================  ==================

Targets: ΔACC ≤ 1e-4 and ΔRMSE ≤ 0.05 % (aim 2e-5 and 0.01 %); every row is at least a
factor 2 inside the aim. 2t, t and z sit at the coarsest keepbits that is (one bit fewer:
0.014 %, 0.010 %, 0.0071 %); winds and q keep one bit more than that and msl two (u at 9
bits: 0.0032 %, q at 9: 0.0022 %, msl at 14: 0.0050 %), a margin for models with smaller
errors than these day-1 ones: the rounding's share of the RMSE grows as 1/error². A whole
0.25° lead is 55 % smaller than under v1 (Blosc-LZ4, byte shuffle, lossless). Blosc-Zstd level 1 rather than LZ4: 10 % smaller again for ~5 ms more per
field to encode and ~3 ms more to decode (the table in ``benchmarks/README.md``).

``z`` and ``msl`` are kept finer: their values sit on a large offset (~1e5 Pa, up to
2e5 m2 s-2) with small anomalies, so a relative rounding step is a large share of the
forecast error. Rounding is relative, so the table holds at any resolution.

NaN and inf: the writer turns every NaN into the canonical quiet NaN before rounding
(BitRound would turn a NaN with a payload only in its low bits into inf); inf stays inf.
Every value BitRound emits has its low mantissa bits zero, NaN and inf included, so an
honestly rounded field always passes ``decode_field``'s precision check.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from numcodecs import BitRound, Blosc
from zarr.codecs import BloscCodec, BytesCodec
from zarr.codecs.numcodecs import BitRound as ZarrBitRound

FLOAT32_MANTISSA_BITS: Final = 23

KEEPBITS: Final[Mapping[str, int]] = MappingProxyType({
    "2t": 13, "10u": 10, "10v": 10, "msl": 16,
    "t": 14, "u": 10, "v": 10, "q": 10, "z": 16,
})

FIELD_CNAME: Final = "zstd"
FIELD_CLEVEL: Final = 1
FIELD_TYPESIZE: Final = 4
BLOSC_HEADER_BYTES: Final = 16
# The bytes serializer of every array in the store (fields and coordinates).
SERIALIZER: Final = BytesCodec(endian="little")
FIELD_COMPRESSOR: Final = BloscCodec(
    cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle="bitshuffle", typesize=FIELD_TYPESIZE,
)
_BLOSC = Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.BITSHUFFLE)
_ROUNDERS = MappingProxyType({name: BitRound(keepbits) for name, keepbits in KEEPBITS.items()})
_EXCESS_BITS = MappingProxyType({
    name: np.uint32((1 << (FLOAT32_MANTISSA_BITS - keepbits)) - 1) for name, keepbits in KEEPBITS.items()
})


class CodecInvalid(ValueError):
    """A field chunk does not decode as the protocol's codec produces it."""


@dataclass(frozen=True)
class BloscFlags:
    """What the flags byte (byte 2) of a Blosc(1) header must say for a protocol chunk.

    Bits 0-2 are the shuffle (byte shuffle, plain copy, bit shuffle): exactly bit shuffle,
    so a chunk stored uncompressed or byte-shuffled is refused. Bits 5-7 are the
    compressor's format code. Bits 3-4 (whether Blosc split its blocks) are Blosc's own
    choice and decode the same either way.
    """

    shuffle: int
    compressor: int

    def mismatch(self, flags: int) -> str | None:
        """Why ``flags`` is not the protocol's, or None."""
        if flags & 0b111 != self.shuffle:
            return f"shuffle bits {flags & 0b111:03b}, expected {self.shuffle:03b} (bit shuffle)"
        if flags >> 5 != self.compressor:
            return f"compressor code {flags >> 5}, expected {self.compressor} ({FIELD_CNAME})"
        return None


_BLOSC_FORMAT_CODES: Final = {"blosclz": 0, "lz4": 1, "lz4hc": 1, "snappy": 2, "zlib": 3, "zstd": 4}
FIELD_BLOSC_FLAGS: Final = BloscFlags(shuffle=0b100, compressor=_BLOSC_FORMAT_CODES[FIELD_CNAME])


@contextmanager
def numcodecs_in_zarr() -> Iterator[None]:
    """Silence zarr's warning that ``numcodecs.bitround`` is outside the zarr v3 core spec
    (zarr-python reads and writes it; the protocol names it on purpose). zarr warns each
    time it builds the codec: when the writer declares it and when a reader opens a field."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr")
        yield


def field_filters(variable: str) -> list[ZarrBitRound]:
    """The array-to-array codecs a field array of ``variable`` declares (its rounding)."""
    with numcodecs_in_zarr():
        return [ZarrBitRound(keepbits=_keepbits(variable))]


def field_codecs_metadata(variable: str) -> list[dict[str, Any]]:
    """The ``codecs`` list of a field array's ``zarr.json``, as zarr writes it."""
    return [
        *(codec.to_dict() for codec in field_filters(variable)),
        SERIALIZER.to_dict(),
        FIELD_COMPRESSOR.to_dict(),
    ]


def encode_field(variable: str, field: np.ndarray) -> bytes:
    """One (latitude, longitude) field as the protocol stores it: rounded, then Blosc."""
    rounder = _ROUNDERS.get(variable)
    if rounder is None:
        raise KeyError(f"{variable!r} is not a protocol variable")
    values = np.array(field, dtype="<f4", order="C")
    nan = np.isnan(values)
    if nan.any():
        values[nan] = np.float32("nan")
    return bytes(_BLOSC.encode(rounder.encode(values)))


def decode_field(key: str, data: bytes, variable: str, shape: tuple[int, int]) -> np.ndarray:
    """A verified chunk of ``variable`` decoded to a float32 array of ``shape``.

    Raises ``CodecInvalid`` when the chunk does not decode into exactly ``shape`` or when
    any value keeps mantissa bits the protocol rounds away for ``variable``.
    """
    excess_bits = _EXCESS_BITS.get(variable)
    if excess_bits is None:
        raise CodecInvalid(f"{key}: {variable!r} is not a protocol variable")
    out = np.empty(shape, dtype="<f4")
    try:
        declared = int.from_bytes(data[4:8], "little") if len(data) >= BLOSC_HEADER_BYTES else -1
        if declared != out.nbytes:
            raise ValueError(f"it declares {declared} bytes, the field holds {out.nbytes}")
        _BLOSC.decode(data, out=out)
    except (RuntimeError, ValueError, TypeError) as error:
        raise CodecInvalid(f"{key} does not decode: {error}") from error
    excess = np.bitwise_and(out.view(np.uint32), excess_bits)
    if excess.any():
        first = int(np.flatnonzero(excess)[0])
        raise CodecInvalid(
            f"{key}: {variable} values carry more precision than protocol v2 allows "
            f"({int(np.count_nonzero(excess))} values keep mantissa bits beyond the "
            f"{KEEPBITS[variable]} kept, the first at flat index {first})"
        )
    return out


def _keepbits(variable: str) -> int:
    if variable not in KEEPBITS:
        raise KeyError(f"{variable!r} is not a protocol variable")
    return KEEPBITS[variable]
