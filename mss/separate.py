"""Separate whole tracks of any length with any model: chunked overlap-add, resampling, channels.

``python -m mss.separate SONG [SONG ...] [--checkpoint PATH] --out DIR [--stems a,b] [--device cpu]``
writes ``DIR/<song>/<stem>.wav`` at the song's rate, channel count and exact length.

Memory stays bounded whatever the track length: the overlap-add runs ``batch_size`` chunks at a time
into one output buffer, and the file CLI streams long tracks through in blocks of ``block_s`` seconds
(read from the file, separated, appended to the output wavs), so a 10-minute song needs about as
much memory as a 1-minute one.
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor, nn
from tqdm import tqdm

from mss import covers_mixture
from mss.audio import check_audio, check_finite, load_audio, resample, to_channels
from mss.bandwidth import extend_high_band
from mss.checkpoint import default_checkpoint
from mss.chunking import OVERLAP, apply_overlap_add, chunk_segment
from mss.errors import AudioError, MSSError
from mss.files import atomic_path
from mss.models import load_model

#: context (seconds) read on each side of a streamed block so chunk edges never fall on its border
BLOCK_MARGIN_S = 1.0


#: Largest random delay of the shift trick, in seconds (Demucs' ``apply_model``: 0.5 s).
MAX_SHIFT_S: float = 0.5


def shift_average(
    separate_once: Callable[[Tensor], Tensor], mix: Tensor, shifts: int, max_shift: int, seed: int = 0
) -> Tensor:
    """The shift trick (Défossez et al. 2019): the average of ``shifts`` separations of ``mix`` delayed by
    random offsets in ``[0, max_shift)``, each moved back into place. ``separate_once``: (C, T') -> (S, C, T').

    mix: (C, T) -> (S, C, T). A time-invariant ``separate_once`` gives its own unshifted output back; a model
    whose output depends on where the chunk edges fall is averaged over several edge positions. The offsets
    come from ``seed``, so a separation is reproducible.
    """
    length = mix.shape[-1]
    padded = torch.nn.functional.pad(mix, (max_shift, max_shift))  # (C, T + 2 max_shift)
    offsets = np.random.default_rng(seed).integers(0, max(1, max_shift), size=shifts)
    total = None
    for offset in offsets:
        offset = int(offset)
        piece = padded[:, offset : offset + length + max_shift]  # index i holds sample i + offset - max_shift
        out = separate_once(piece)[..., max_shift - offset : max_shift - offset + length]  # (S, C, T)
        total = out if total is None else total.add_(out)
    return total.div_(shifts)


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero now (a denormal times one gives zero)."""
    return bool((torch.tensor([1e-40], dtype=torch.float32) * 1.0).item() == 0.0)


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Denormals flushed to zero inside the block, the caller's setting restored after it.

    LSTM cell states decaying through small forget gates reach denormal floats, which x86 CPUs process many
    times slower than normal ones. The setting is the CPU's (per thread), so it is put back as it was.
    """
    previous = denormals_flushed()
    if previous or not torch.set_flush_denormal(True):  # already on, or a CPU without the setting
        yield
        return
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _same_device(model: nn.Module, device: torch.device) -> bool:
    current = next(model.parameters(), torch.empty(0)).device
    return current.type == device.type and (device.index is None or device.index == current.index)


@contextmanager
def inference_model(model: nn.Module, device: str | torch.device) -> Iterator[nn.Module]:
    """``model`` ready to separate on ``device``, in eval mode, inside the block.

    Nothing is done to the caller's model behind its back: its training/eval mode is restored afterwards,
    and a model on another device is copied there instead of moved.
    """
    device = torch.device(device)
    runner = model if _same_device(model, device) else copy.deepcopy(model).to(device)
    was_training = model.training
    runner.eval()  # batch norm / dropout in inference mode
    try:
        yield runner
    finally:
        model.train(was_training)


def _separate_array(
    model: nn.Module,
    mix: np.ndarray,
    sample_rate: int,
    segment_s: float | None,
    overlap: float,
    batch_size: int,
    device: str | torch.device,
    on_batch: Callable[[int, int], None] | None = None,
    shifts: int = 0,
    full_band: bool = True,
    offset: int = 0,
) -> np.ndarray:
    """mix (C, T) at ``sample_rate`` -> stems (S, C, T) at the same rate and channel count (no checks; the
    model is already on ``device`` in eval mode: ``inference_model``);
    ``shifts`` > 0 averages that many randomly shifted separations (``shift_average``); ``full_band``
    fills the band above the model's Nyquist frequency from the mixture (``mss.bandwidth``)."""
    channels, length = mix.shape
    tensor = torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32))  # (C, T)
    tensor = to_channels(tensor, model.audio_channels)  # (C_model, T)
    tensor = resample(tensor, sample_rate, model.sample_rate)  # (C_model, T_model)
    segment = chunk_segment(segment_s or model.segment_s, model.sample_rate)

    def run(chunks: Tensor) -> Tensor:
        return model(chunks.to(device))  # (b, S, C_model, segment)

    with flushed_denormals():
        with torch.inference_mode():
            if shifts > 0:
                max_shift = int(MAX_SHIFT_S * model.sample_rate)
                stems = shift_average(
                    lambda piece: apply_overlap_add(run, piece, segment, overlap, batch_size),
                    tensor, shifts, max_shift,
                )  # fmt: skip
            else:
                stems = apply_overlap_add(
                    run, tensor, segment, overlap, batch_size, on_batch
                )  # (S, C_model, T_model)
    out = np.zeros((stems.shape[0], channels, length), dtype=np.float32)  # (S, C, T)
    for i, stem in enumerate(stems):  # one stem at a time keeps the resampling buffers small
        stem = resample(stem, model.sample_rate, sample_rate)[..., :length]  # (C_model, <=T)
        out[i, :, : stem.shape[-1]] = to_channels(stem, channels).numpy()
    if full_band and sample_rate > model.sample_rate:  # the band above the model's Nyquist, from the mix
        full = extend_high_band(
            torch.from_numpy(np.ascontiguousarray(mix, dtype=np.float32)), torch.from_numpy(out),
            sample_rate, model.sample_rate, covers_mixture(model.sources), offset,
        )  # fmt: skip
        out = full.numpy()
    return out


def _check_stems(model: nn.Module, stems) -> list[str]:
    if stems is None:
        return list(model.sources)
    stems = [stems] if isinstance(stems, str) else list(stems)
    unknown = [s for s in stems if s not in model.sources]
    if unknown or not stems:
        raise ValueError(
            f"unknown stem(s) {unknown or stems}; this model separates {', '.join(model.sources)}"
        )
    return stems


def _as_channels_first(mix) -> np.ndarray:
    mix = np.asarray(mix, dtype=np.float32)
    if mix.ndim == 1:
        mix = mix[None]  # (1, T)
    if mix.ndim != 2:
        raise AudioError(f"expected audio of shape (C, T) or (T,), got {mix.shape}")
    return mix


def separate(
    model: nn.Module,
    mix,
    sample_rate: int,
    *,
    segment_s: float | None = None,
    overlap: float = OVERLAP,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = False,
    stems=None,
    shifts: int = 0,
    full_band: bool = True,
    offset: int = 0,
) -> dict[str, np.ndarray]:
    """Separate ``mix`` ((C, T) or (T,), any rate) -> {stem: array} at the input's rate, channels, length.

    ``shifts``: 0 (the default, fastest) or the number of randomly shifted separations to average
    (Demucs' shift trick: slower by that factor, a few tenths of a dB better for Demucs). ``full_band``:
    above the model's Nyquist frequency (a 22.05 kHz model on a 44.1 kHz song) the estimates get the
    mixture's high band, split by their shares of the band below (``mss.bandwidth``); off: empty there.
    ``offset``: where ``mix`` starts in a longer song (samples), so that a span of a song gets the full-band
    split of the whole song (the browser's windows).

    A 1-D input gives 1-D stems. AudioError for empty, non-finite or silent input. The model runs on
    ``device`` in eval mode (``inference_model``: the caller's model is not moved, its mode is restored).
    """
    names = _check_stems(model, stems)
    one_dimensional = np.ndim(mix) == 1
    mix = _as_channels_first(mix)
    check_audio(mix, "input audio")
    bar = None
    if progress:
        bar = tqdm(total=0, unit="chunk", desc="separating")

        def on_batch(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        with inference_model(model, device) as runner:
            out = _separate_array(
                runner, mix, sample_rate, segment_s, overlap, batch_size, device, bar and on_batch, shifts,
                full_band, offset,
            )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    result = {name: out[model.sources.index(name)] for name in names}
    return {k: v[0] if one_dimensional else v for k, v in result.items()}


#: File names that say nothing about the song: in MUSDB18-HQ a song is ``<song>/mixture.wav``.
GENERIC_STEMS: tuple[str, ...] = ("mixture", "mix")


def song_name(path: str | os.PathLike) -> str:
    """Folder name for a song's stems: the file name without its extension(s), e.g. ``x.stem.mp4`` -> ``x``;
    for a MUSDB18-HQ ``<song>/mixture.wav``, the song's folder name."""
    path = Path(path)
    name = path.name
    for suffix in (".stem.mp4", ".stem.m4a"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    stem = Path(name).stem
    if stem.lower() in GENERIC_STEMS and path.parent.name not in ("", ".", "/"):
        return path.parent.name
    return stem


def output_names(paths: list[str | os.PathLike]) -> list[str]:
    """One distinct output folder name per input: ``song_name``, or, where two inputs share it
    (``a/song.wav`` and ``b/song.wav``), the name prefixed with as many parent folders as needed
    (``a-song``, ``b-song``), so no input's stems ever overwrite another's."""
    resolved = [Path(p).absolute() for p in paths]
    names = [song_name(p) for p in resolved]
    for depth in range(1, 64):
        clashes = {n for n in names if names.count(n) > 1}
        if not clashes:
            return names
        for i, path in enumerate(resolved):
            if names[i] in clashes:
                base = song_name(path)
                anchor = path.parent.parent if Path(path).stem.lower() in GENERIC_STEMS else path.parent
                prefix = [part for part in anchor.parts[-depth:] if part not in ("/", "")]
                names[i] = "-".join([*prefix, base])
    return [f"{name}-{i + 1}" for i, name in enumerate(names)]


class FileInput:
    """The input audio of a separation, read by blocks: straight from a wav/flac file, or (formats
    libsndfile cannot read: mp3, mp4) decoded whole into memory."""

    def __init__(self, path: Path):
        self.path = path
        self.array: np.ndarray | None = None
        try:
            info = sf.info(str(path))
            self.rate, self.channels, self.length = int(info.samplerate), int(info.channels), int(info.frames)
        except (sf.LibsndfileError, RuntimeError, TypeError):  # mp3/mp4/...: decode it all with ffmpeg
            self.array, self.rate = load_audio(path)
            self.channels, self.length = self.array.shape

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) as (C, stop - start) float32."""
        if self.array is not None:
            return self.array[:, start:stop]
        with sf.SoundFile(str(self.path)) as handle:
            handle.seek(start)
            return handle.read(stop - start, dtype="float32", always_2d=True).T  # (C, n)

    def check(self, block: int) -> None:
        """check_audio over the whole song, one block at a time."""
        what = f"{self.path}"
        if self.length == 0:
            raise AudioError(f"{what} is empty (0 samples)")
        peak_ok = False
        for start in range(0, self.length, block):
            piece = self.read(start, min(self.length, start + block))
            check_finite(piece, what, start, self.rate)
            try:
                check_audio(piece, what)
                peak_ok = True
            except AudioError:
                pass
        if not peak_ok:
            check_audio(np.zeros((1, 1), np.float32), what)  # raises the standard "is silent" message


class StreamInput(FileInput):
    """The input audio given as a block reader instead of a file: ``read(start, stop) -> (C, stop - start)``.

    Lets callers that already stream a song (the evaluation's decoded-audio cache) separate it with
    ``separate_file`` without writing it out first; ``what`` names it in messages and is the default
    output folder name.
    """

    def __init__(
        self, read: Callable[[int, int], np.ndarray], length: int, rate: int, channels: int, what: str
    ):
        self._read = read
        self.path = Path(what)
        self.array = None
        self.length, self.rate, self.channels = int(length), int(rate), int(channels)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self._read(start, stop)


def release_freed_memory() -> None:
    """Hand freed heap pages back to the OS between blocks (glibc only).

    Without it, glibc keeps the freed block buffers as fragmented heap, and the resident size of a
    long song creeps up with its number of blocks instead of staying flat.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        pass


def separate_file(
    model: nn.Module,
    path: str | os.PathLike | StreamInput,
    out_dir: str | os.PathLike,
    *,
    stems=None,
    segment_s: float | None = None,
    overlap: float = OVERLAP,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    block_s: float = 30.0,
    progress: bool = False,
    name: str | None = None,
    shifts: int = 0,
    full_band: bool = True,
) -> dict[str, Path]:
    """Separate the song at ``path`` into ``out_dir/<name>/<stem>.wav`` (float WAV, the song's rate);
    ``name`` defaults to ``song_name(path)``.

    The song is processed in blocks of ``block_s`` seconds (plus BLOCK_MARGIN_S of context on each
    side) so memory does not grow with its length. Files appear atomically once all are complete.
    """
    names = _check_stems(model, stems)
    if isinstance(path, StreamInput):
        song, path = path, path.path
    else:
        path = Path(path)
        song = FileInput(path)
    block = max(1, int(block_s * song.rate))
    song.check(block)
    folder = Path(out_dir) / (name or song_name(path))
    created = not folder.exists()
    bar = tqdm(total=round(song.length / song.rate, 1), unit="s", desc=folder.name, disable=not progress)
    try:
        with ExitStack() as files, inference_model(model, device) as runner:
            # every stem into its temp file; all of them replace their targets only once all are written
            temps = {stem: files.enter_context(atomic_path(folder / f"{stem}.wav", ".wav.tmp")) for stem in names}
            writers = {
                stem: files.enter_context(sf.SoundFile(
                    tmp, "w", samplerate=song.rate, channels=song.channels, subtype="FLOAT", format="WAV"
                ))
                for stem, tmp in temps.items()
            }  # fmt: skip
            for start in range(0, song.length, block):
                stop = min(song.length, start + block)
                out = _separate_block(runner, song, start, stop, bar, segment_s, overlap, batch_size, device,
                                      shifts, full_band)  # fmt: skip
                for stem, writer in writers.items():
                    writer.write(out[model.sources.index(stem)].T)  # (n, C)
                del out
                release_freed_memory()
            for writer in writers.values():
                writer.close()  # before the temp files replace their targets
        return {stem: folder / f"{stem}.wav" for stem in names}
    finally:
        bar.close()
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a failed song leaves no empty folder behind


def _separate_block(
    model: nn.Module, song: FileInput, start: int, stop: int, bar, segment_s, overlap, batch_size, device,
    shifts: int, full_band: bool,
) -> np.ndarray:
    """Samples [start, stop) of ``song`` separated with BLOCK_MARGIN_S of real context on each side, so no
    chunk edge falls on the block's border -> (S, C, stop - start)."""
    margin = int(BLOCK_MARGIN_S * song.rate)
    lo, hi = max(0, start - margin), min(song.length, stop + margin)

    def on_batch(done: int, total: int) -> None:
        bar.n = round((start + (stop - start) * done / total) / song.rate, 1)
        bar.refresh()

    out = _separate_array(
        model, song.read(lo, hi), song.rate, segment_s, overlap, batch_size, device, on_batch, shifts, full_band,
        lo,
    )  # (S, C, hi - lo)  # fmt: skip
    return out[..., start - lo : stop - lo]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mss.separate", description=__doc__.splitlines()[0])
    parser.add_argument(
        "songs", nargs="+", metavar="SONG", help="audio files (wav, flac, mp3, mp4, .stem.mp4)"
    )
    parser.add_argument(
        "--checkpoint", default=str(default_checkpoint("demucs")), help="model checkpoint (.pt)"
    )
    parser.add_argument("--out", required=True, help="output folder: OUT/<song>/<stem>.wav")
    parser.add_argument("--stems", default=None, help="comma-separated subset of the model's stems")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--segment-s", type=float, default=None, help="chunk length (default: the model's)")
    parser.add_argument("--overlap", type=float, default=0.25, help="chunk overlap fraction (default 0.25)")
    parser.add_argument("--batch-size", type=int, default=4, help="chunks per forward pass (default 4)")
    parser.add_argument(
        "--shifts", type=int, default=0,
        help="average N randomly shifted separations (Demucs' shift trick; N times slower; default 0)",
    )  # fmt: skip
    parser.add_argument(
        "--band-limited", action="store_true",
        help="leave the estimates empty above the model's Nyquist frequency (default: full band, mss.bandwidth)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.shifts < 0:
        parser.error("--shifts must be >= 0")

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but CUDA is not available")
    try:
        model = load_model(args.checkpoint, map_location=args.device)
        stems = _check_stems(model, args.stems.split(",") if args.stems else None)
    except (MSSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures = []
    songs = list(dict.fromkeys(args.songs))  # the same file named twice is separated once
    for song, name in zip(songs, output_names(songs), strict=True):
        try:
            written = separate_file(
                model,
                song,
                args.out,
                name=name,
                stems=stems,
                segment_s=args.segment_s,
                overlap=args.overlap,
                batch_size=args.batch_size,
                device=args.device,
                progress=True,
                shifts=args.shifts,
                full_band=not args.band_limited,
            )
            print(f"{song}: wrote {', '.join(str(p) for p in written.values())}")
        except (MSSError, OSError, ValueError) as exc:
            failures.append(song)
            print(f"error: {song}: {exc}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} of {len(songs)} song(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
