"""What a participant's browser receives for one stimulus: blind down to the bytes.

    wav_bytes(pcm int16 (C, T), rate) -> bytes           # a canonical 44-byte-header PCM WAV
    session_pcm(pcm int16 (C, T), seed) -> int16 (C, T)  # this session's copy: its own +-1 LSB re-dither
    delivered_wav(path, seed) -> bytes                    # both, for a stimulus file on the server

Nothing but the decoded samples may differ between the versions of a trial, and nothing may be the same
between two sessions:

- **Uncompressed PCM, one canonical header.** Every stimulus of a trial has the same length and channel
  count (listening_study.delivery.stimuli), so its WAV has the same 44 header bytes (RIFF, "fmt " of 16 bytes,
  "data"; no LIST/INFO, no PEAK, no padding) and the same byte count as every other version. Lossless
  compression cannot be made blind: a compressed size is a measure of the content (a 3.5 kHz low-pass
  compresses far better than the mixture), so either the sizes differ, or a filler evens them out and
  the filler's length is the compressed size (FLAC PADDING blocks did exactly that, and STREAMINFO's
  frame sizes and MD5 named each file besides). What uncompressed delivery costs is measured by
  ``python -m listening_study.delivery.audit`` (README, "Blindness").
- **Per-session bytes.** The server keeps one 16-bit file per stimulus (what the analysis reads). What a
  session receives is that file with a second, independent TPDF dither: d = u1 - u2 with u1, u2 uniform
  in {0, 1}, so d is -1, 0 or +1 LSB with probabilities 1/4, 1/2, 1/4, independent of the signal (white,
  no distortion), drawn from a seed the study key derives from the session, page, trial and label
  (listening_study.design.blinding): about 2/3 of the samples change, two sessions share no file byte for byte,
  and the experimenter can reproduce exactly what a session heard. The noise floor rises from about
  -96 to -92 dBFS RMS (0.25 -> 0.75 LSB^2 of white noise), some 70 dB below programme at the study's
  -23 LUFS: inaudible at any comfortable listening level, and the same for every version of a trial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 44100
HEADER_BYTES = 44


def wav_bytes(pcm: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV bytes of int16 samples (C, T): the 44-byte canonical header, then the samples
    interleaved, little-endian. Two inputs of one shape get the same header, byte for byte."""
    if pcm.dtype != np.int16 or pcm.ndim != 2:
        raise ValueError(f"expected int16 samples (C, T), got {pcm.dtype} {pcm.shape}")
    channels, frames = pcm.shape
    data_size = channels * frames * 2
    block = channels * 2
    header = b"".join(
        [
            b"RIFF", (36 + data_size).to_bytes(4, "little"), b"WAVE",
            b"fmt ", (16).to_bytes(4, "little"), (1).to_bytes(2, "little"), channels.to_bytes(2, "little"),
            rate.to_bytes(4, "little"), (rate * block).to_bytes(4, "little"), block.to_bytes(2, "little"),
            (16).to_bytes(2, "little"),
            b"data", data_size.to_bytes(4, "little"),
        ]
    )  # fmt: skip
    return header + np.ascontiguousarray(pcm.T).astype("<i2").tobytes()


def session_pcm(pcm: np.ndarray, seed: int) -> np.ndarray:
    """``pcm`` (int16 (C, T)) with this seed's +-1 LSB triangular re-dither (module docstring)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(2, *pcm.shape), dtype=np.int8)
    dither = bits[0].astype(np.int32) - bits[1]
    return np.clip(pcm.astype(np.int32) + dither, -32768, 32767).astype(np.int16)


def delivered_wav(path: str | Path, seed: int) -> bytes:
    """The bytes a session receives for the stimulus file at ``path`` (a 16-bit WAV on the server)."""
    pcm, rate = soundfile.read(path, dtype="int16", always_2d=True)
    return wav_bytes(session_pcm(pcm.T, seed), rate)
