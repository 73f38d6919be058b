"""PcmResampler: live sound at the sender's rate, cut anywhere, comes out as one resampled piece."""

import numpy as np
import pytest

from facetalk.errors import FacetalkError
from facetalk.media.audio import PcmResampler


def _tone(rate: int, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("rate_in,rate_out,chunk", [(48000, 16000, 960), (24000, 16000, 331), (16000, 48000, 160)])
def test_chunked_stream_resamples_as_one_piece(rate_in, rate_out, chunk):
    x = _tone(rate_in, 1.0)
    r = PcmResampler(rate_in, rate_out)
    out = np.concatenate([r.feed(x[i:i + chunk]) for i in range(0, len(x), chunk)] + [r.flush()])
    assert abs(len(out) - rate_out) <= 2
    ref = _tone(rate_out, len(out) / rate_out)[: len(out)]
    mid = slice(rate_out // 10, rate_out * 9 // 10)
    assert np.corrcoef(out[mid], ref[mid])[0, 1] > 0.999  # same tone, no delay, no clicks at the cuts
    assert np.abs(out[mid]).max() == pytest.approx(0.5, abs=0.01)


def test_int16_and_same_rate():
    x = (_tone(16000, 0.1) * 32767).astype(np.int16)
    out = PcmResampler(16000, 16000).feed(x)
    assert out.dtype == np.float32 and np.allclose(out, x / 32768.0)


def test_bad_rate_is_a_clear_error():
    with pytest.raises(FacetalkError, match="positive"):
        PcmResampler(0)
