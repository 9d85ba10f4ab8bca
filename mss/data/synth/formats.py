"""How a generated song is stored: MUSDB18-HQ wav folders (float or 16-bit) or MUSDB18 ``.stem.mp4`` files.

- ``wav``: ``<subset>/<title>/{mixture,vocals,drums,bass,other,piano}.wav``, ``FLOAT`` (exact float32
  samples) or ``PCM_16`` (as MUSDB18-HQ is distributed).
- ``stems``: ``<subset>/<title>.stem.mp4``, five AAC 256 kbit/s streams in musdb's order
  (``configs/mus.yaml`` stem_ids: mixture, drums, bass, other, vocals), as MUSDB18 is distributed. The
  piano stem is left out: a MUSDB stem file has exactly these five streams (Native Instruments' stem
  format, which tools reading MUSDB18 assume), so the files stay drop-in replacements for the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from mss import SOURCES
from mss.audio import require_ffmpeg
from mss.errors import DatasetError

FORMATS: tuple[str, ...] = ("wav", "stems")
SUBTYPES: tuple[str, ...] = ("FLOAT", "PCM_16")
#: Streams of a MUSDB18 ``.stem.mp4``, in order (musdb's ``configs/mus.yaml`` stem_ids).
STEM_STREAMS: tuple[str, ...] = ("mixture", "drums", "bass", "other", "vocals")
#: MUSDB18's streams are AAC at 256 kbit/s (ffprobe of any MUSDB18 track).
STEMS_BITRATE = 256_000
#: A 16-bit sample k reads as k / 32768 (libsndfile, ffmpeg), so floats are scaled by 2**15.
PCM16_SCALE = 32768


def check_format(file_format: str, subtype: str | None) -> None:
    """DatasetError naming the option when ``file_format``/``subtype`` are unknown or do not go together."""
    if file_format not in FORMATS:
        raise DatasetError(
            f"unknown format {file_format!r} (--format / format=); choose one of: {', '.join(FORMATS)}"
        )
    if subtype is not None and subtype not in SUBTYPES:
        raise DatasetError(
            f"unknown subtype {subtype!r} (--subtype / subtype=); choose one of: {', '.join(SUBTYPES)}"
        )


def encoding(file_format: str, subtype: str) -> str:
    """How the samples are coded, for the manifest: the wav subtype, or the stems' codec."""
    return subtype if file_format == "wav" else f"AAC {STEMS_BITRATE // 1000} kbit/s"


def clear_peak_timestamp(path: Path) -> None:
    """Zero the timestamp libsndfile writes in the PEAK chunk of float WAVs, so equal audio gives equal bytes."""
    with open(path, "r+b") as handle:
        header = handle.read(4096)
        position = 12  # after "RIFF", size, "WAVE"
        while position + 8 <= len(header):
            chunk, size = (
                header[position : position + 4],
                int.from_bytes(header[position + 4 : position + 8], "little"),
            )
            if chunk == b"PEAK":  # version (4 bytes), timestamp (4 bytes), then peaks
                handle.seek(position + 12)
                handle.write(b"\0\0\0\0")
                return
            if chunk == b"data":
                return
            position += 8 + size + (size % 2)


def take_pcm16(stems: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """16-bit versions ``(C, T)`` int16 of a song's float stems, the mixture being the sum of the sources.

    Consumes ``stems`` (the dict is emptied: each float buffer is freed once converted). Each source
    (and the piano) is rounded to the nearest 16-bit step on its own, then the mixture is the *integer
    sum* of the four rounded sources, not the rounding of the float mixture. So in the files
    ``mixture == vocals + drums + bass + other`` holds exactly, sample for sample, and still does after
    reading them as float (k / 32768 values: their sums are exact in float32). The price: the mixture
    is up to 2 steps (4 x half a step, about -84 dBFS) away from the float mixture. Nothing is
    clipped: the song invariants keep every float stem and the mixture at or below 0.99 of full scale,
    so the integer sum stays within 0.99 * 32768 + 2 < 32767.
    """
    stems.pop("mixture", None)
    ints: dict[str, np.ndarray] = {}
    for name in list(stems):
        audio = stems.pop(name)
        audio *= PCM16_SCALE  # exact: a power of two
        ints[name] = np.rint(audio, out=audio).astype(np.int16)
        del audio
    mixture = ints[SOURCES[0]].astype(np.int32)
    for name in SOURCES[1:]:
        mixture += ints[name]
    peak = max(int(mixture.max()), -int(mixture.min()))
    if peak > 32767:  # cannot happen for a song that passed check_song; refuse rather than clip
        raise DatasetError(f"the 16-bit mixture would clip (peak {peak} > 32767)")
    ints["mixture"] = mixture.astype(np.int16)
    return ints


def write_wav_song(stems: dict[str, np.ndarray], sample_rate: int, song_dir: Path, subtype: str) -> None:
    """One song folder of MUSDB18-HQ wavs. Consumes ``stems`` (float32 ``(C, T)`` per name, mixture included)."""
    song_dir.mkdir(parents=True, exist_ok=True)
    # Written in place, not through a temp file: the whole dataset is built in a temporary folder.
    if subtype == "FLOAT":
        for name in list(stems):
            path = song_dir / f"{name}.wav"
            sf.write(path, stems.pop(name).T, sample_rate, subtype="FLOAT", format="WAV")
            clear_peak_timestamp(path)
        return
    ints = take_pcm16(stems)
    for name in list(ints):
        # int16 data is written as is; floats would go through libsndfile's own (x * 32767) scaling.
        sf.write(song_dir / f"{name}.wav", ints.pop(name).T, sample_rate, subtype="PCM_16", format="WAV")


def write_stems_song(stems: dict[str, np.ndarray], sample_rate: int, path: Path) -> None:
    """One MUSDB18 ``.stem.mp4`` (five AAC streams in ``STEM_STREAMS`` order). Consumes ``stems``.

    The streams are coded from the 16-bit stems of ``take_pcm16`` (what stempeg hands ffmpeg anyway),
    so before AAC coding the mixture stream is exactly the sum of the four source streams; after
    decoding they differ by the coding error, as in MUSDB18.
    """
    require_ffmpeg()
    import stempeg  # lazily: it probes ffmpeg at import time

    ints = take_pcm16(stems)
    n_samples = ints["mixture"].shape[-1]
    # (T, streams, C): stempeg transposes its (streams, T, C) input to this layout and flattens it to
    # (T, streams * C); handing it a view of a buffer already laid out so spares one full copy.
    interleaved = np.empty((n_samples, len(STEM_STREAMS), 2), dtype=np.float32)
    for index, name in enumerate(STEM_STREAMS):
        interleaved[:, index, :] = ints.pop(name).T
    ints.clear()  # the piano: not a stream of a MUSDB stem file
    interleaved *= 1 / PCM16_SCALE  # k / 32768 exactly: ffmpeg's float -> s16 conversion gives k back
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = stempeg.StreamsWriter(codec="aac", bitrate=STEMS_BITRATE, stem_names=list(STEM_STREAMS))
    try:
        stempeg.write_stems(str(path), interleaved.transpose(1, 0, 2), sample_rate=sample_rate, writer=writer)
    except RuntimeError as exc:  # stempeg turns ffmpeg's failures into bare RuntimeErrors
        raise DatasetError(f"ffmpeg could not write {path}: {exc}") from exc
