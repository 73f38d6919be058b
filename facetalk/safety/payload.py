"""The watermark's message: a format version and an output identifier, protected for a noisy channel.

36 message bits (4-bit format version + 32-bit output id) get a CRC-8, so a payload read from a
damaged video is either right or reported as unreadable, and then a rate-1/3 convolutional code
(constraint length 7, the generators of the NASA/CCSDS family), decoded by soft-decision Viterbi.
Soft decoding matters here: after re-encoding and downscaling, each coded bit arrives as a weak
correlation, and the code recovers the message where reading bits one by one would not.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import numpy as np

FORMAT_VERSION = 1
VERSION_BITS = 4
ID_BITS = 32
CRC_BITS = 8
MESSAGE_BITS = VERSION_BITS + ID_BITS + CRC_BITS  # 44

_CRC_POLY = 0x07  # CRC-8/ATM
_K = 7  # constraint length
_GENERATORS = (0o171, 0o133, 0o165)  # rate 1/3
_STATES = 1 << (_K - 1)
CODED_BITS = (MESSAGE_BITS + _K - 1) * len(_GENERATORS)  # 150: message + tail, three outputs each


@dataclass(frozen=True)
class Payload:
    """What every frame of one output carries: the format version and the output's id."""

    ident: int  # 0 .. 2**32-1, one per output; printed by the CLI and stored in the metadata
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if not 0 <= self.ident < 1 << ID_BITS:
            raise ValueError(f"ident must fit in {ID_BITS} bits, got {self.ident}")
        if not 0 <= self.version < 1 << VERSION_BITS:
            raise ValueError(f"version must fit in {VERSION_BITS} bits, got {self.version}")

    @property
    def hex_id(self) -> str:
        """The id as 8 hex digits, the form users see and the metadata stores."""
        return f"{self.ident:08x}"

    @staticmethod
    def new() -> Payload:
        """A payload with a fresh random id, for an output nothing else determines (a live stream)."""
        return Payload(secrets.randbits(ID_BITS))

    @staticmethod
    def of(*parts: bytes | str | np.ndarray) -> Payload:
        """A payload whose id is a digest of `parts`, everything that decides an output's frames:
        the same render gets the same id, so a seeded render stays reproducible to the bit."""
        digest = hashlib.blake2b(digest_size=ID_BITS // 8)
        for part in parts:
            data = (part.encode() if isinstance(part, str) else
                    np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray) else bytes(part))
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return Payload(int.from_bytes(digest.digest(), "big"))


def message_bits(payload: Payload) -> np.ndarray:
    """Version, id and CRC as MESSAGE_BITS 0/1 values, most significant first."""
    data = _to_bits(payload.version, VERSION_BITS) + _to_bits(payload.ident, ID_BITS)
    return np.array(data + _to_bits(_crc8(data), CRC_BITS), np.uint8)


def parse_message(bits: np.ndarray) -> Payload | None:
    """The payload in MESSAGE_BITS decoded bits, or None when the CRC does not match."""
    bits = [int(b) for b in bits]
    data, crc = bits[: VERSION_BITS + ID_BITS], bits[VERSION_BITS + ID_BITS :]
    if _crc8(data) != _from_bits(crc):
        return None
    return Payload(ident=_from_bits(data[VERSION_BITS:]), version=_from_bits(data[:VERSION_BITS]))


def encode(payload: Payload) -> np.ndarray:
    """The CODED_BITS channel bits (0/1) that the watermark carries for `payload`."""
    bits = np.concatenate([message_bits(payload), np.zeros(_K - 1, np.uint8)])  # tail: end in state 0
    out = np.empty((len(bits), len(_GENERATORS)), np.uint8)
    state = 0
    for t, b in enumerate(bits):
        out[t] = _OUTPUT[state, b]
        state = _NEXT[state, b]
    return out.ravel()


def decode(soft: np.ndarray) -> Payload | None:
    """Soft-decision Viterbi over CODED_BITS soft values (positive = bit 0, any scale).

    Returns the payload when the decoded message's CRC matches, else None.
    """
    if soft.shape != (CODED_BITS,):
        raise ValueError(f"expected {CODED_BITS} soft values, got shape {soft.shape}")
    steps = soft.reshape(-1, len(_GENERATORS)).astype(np.float64)
    metric = np.full(_STATES, -np.inf)
    metric[0] = 0.0
    choices = np.empty((len(steps), _STATES), np.intp)
    for t, s in enumerate(steps):
        branch = (_SIGNS @ s).reshape(_STATES, 2)  # (state, input bit) -> correlation with the outputs
        cand = metric[_PRED_STATE] + branch[_PRED_STATE, _PRED_BIT]  # (next state, 2 predecessors)
        pick = np.argmax(cand, axis=1)
        choices[t] = pick
        metric = cand[np.arange(_STATES), pick]
    state, bits = 0, []
    for t in range(len(steps) - 1, -1, -1):
        p = choices[t, state]
        bits.append(_PRED_BIT[state, p])
        state = _PRED_STATE[state, p]
    bits.reverse()
    return parse_message(np.array(bits[:MESSAGE_BITS], np.uint8))


# --- tables and helpers --------------------------------------------------------------------------

def _parity(x: int) -> int:
    return bin(x).count("1") & 1


def _tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    nxt = np.empty((_STATES, 2), np.intp)
    out = np.empty((_STATES, 2, len(_GENERATORS)), np.uint8)
    pred_state = np.empty((_STATES, 2), np.intp)
    pred_bit = np.empty((_STATES, 2), np.intp)
    filled = np.zeros(_STATES, np.intp)
    for s in range(_STATES):
        for b in (0, 1):
            reg = (b << (_K - 1)) | s  # newest bit on top
            nxt[s, b] = reg >> 1
            out[s, b] = [_parity(reg & g) for g in _GENERATORS]
            n = nxt[s, b]
            pred_state[n, filled[n]], pred_bit[n, filled[n]] = s, b
            filled[n] += 1
    return nxt, out, pred_state, pred_bit


_NEXT, _OUTPUT, _PRED_STATE, _PRED_BIT = _tables()
_SIGNS = 1.0 - 2.0 * _OUTPUT.reshape(_STATES * 2, len(_GENERATORS)).astype(np.float64)  # bit 0 -> +1


def _to_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _from_bits(bits: list[int]) -> int:
    value = 0
    for b in bits:
        value = (value << 1) | b
    return value


def _crc8(bits: list[int]) -> int:
    crc = 0
    for b in bits:
        top = ((crc >> 7) & 1) ^ b
        crc = (crc << 1) & 0xFF
        if top:
            crc ^= _CRC_POLY
    return crc
