"""Lossless FLAC delivery of the stimuli, every file of a trial the same size.

    encode_flac(samples) -> bytes                       # int16 (C, T) -> FLAC (16 bit, 44.1 kHz)
    pad_flac(data, size) -> bytes                       # a PADDING block makes the file exactly ``size``
    equal_size(files: {name: bytes}) -> {name: bytes}   # every file padded to the largest (+ 4 bytes)
    metadata_blocks(data) -> [(type, offset, length)]   # the blocks after "fLaC" (ValueError if malformed)

The WAV stimuli are about 1.4 MB per 8-s stereo file, 8.5 MB per trial: slow beyond a local network.
FLAC is lossless (the decoded samples are the WAV's, bit for bit: tests/test_app.py decodes them in
the browser) and every current browser decodes it. Its size, however, follows the content: the 3.5 kHz
anchor compresses far better than the mixture, so the byte count of a response would name the
condition. Each trial's files are therefore padded to one size with a FLAC PADDING metadata block
(zeros, skipped by every decoder; FLAC format, section "METADATA_BLOCK_PADDING"), so the responses of a
trial stay alike in length and headers, as the WAV files were. What a program reading the bytes can
still see (the STREAMINFO block's frame sizes and MD5 differ per file) it could learn from the samples
anyway (README, threat model).
"""

from __future__ import annotations

import io

import numpy as np

SAMPLE_RATE = 44100
PADDING = 1  # metadata block type
_HEADER = 4  # bytes of a metadata block header: last-block flag + type (1 byte), length (3 bytes)


def encode_flac(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """FLAC bytes of int16 samples (C, T), stored exactly (lossless, 16 bit)."""
    import soundfile

    if samples.dtype != np.int16 or samples.ndim != 2:
        raise ValueError(f"expected int16 samples (C, T), got {samples.dtype} {samples.shape}")
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.T, rate, subtype="PCM_16", format="FLAC")
    return buffer.getvalue()


def metadata_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(type, offset of the block header, length of its body) of each metadata block."""
    if data[:4] != b"fLaC":
        raise ValueError("not a FLAC stream (no 'fLaC' marker)")
    blocks, offset = [], 4
    while True:
        if offset + _HEADER > len(data):
            raise ValueError("FLAC metadata runs past the end of the data")
        header = data[offset]
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        blocks.append((header & 0x7F, offset, length))
        offset += _HEADER + length
        if header & 0x80:  # the last metadata block
            return blocks


def pad_flac(data: bytes, size: int) -> bytes:
    """``data`` with a PADDING block appended to its metadata so that it is exactly ``size`` bytes."""
    blocks = metadata_blocks(data)
    fill = size - len(data) - _HEADER
    if fill < 0 or fill >= 1 << 24:
        raise ValueError(f"cannot pad a {len(data)}-byte FLAC stream to {size} bytes")
    _, last, length = blocks[-1]
    end = last + _HEADER + length
    out = bytearray(data[:end])
    out[last] &= 0x7F  # no longer the last block
    out += bytes([0x80 | PADDING]) + fill.to_bytes(3, "big") + bytes(fill)
    return bytes(out + data[end:])


def equal_size(files: dict[str, bytes]) -> dict[str, bytes]:
    """Every file padded to the size of the largest plus a padding header: all the same length."""
    size = max(len(data) for data in files.values()) + _HEADER
    return {name: pad_flac(data, size) for name, data in files.items()}
