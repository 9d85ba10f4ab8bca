"""Separate a song of any length into stem files, block by block, so memory does not grow with its length."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn
from tqdm import tqdm

from mss.files import atomic_path

from .arrays import SeparationOptions, check_stems, separate_array
from .inputs import SongInput, open_song
from .naming import song_name
from .runtime import inference_model, release_freed_memory

#: context (seconds) read on each side of a streamed block so chunk edges never fall on its border
BLOCK_MARGIN_S = 1.0


def separate_file(
    model: nn.Module,
    path: str | os.PathLike | SongInput,
    out_dir: str | os.PathLike,
    *,
    stems=None,
    segment_s: float | None = None,
    overlap: float | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    block_s: float = 30.0,
    progress: bool = False,
    name: str | None = None,
    shifts: int | None = None,
    full_band: bool = True,
    wiener_iterations: int | None = None,
    precision: str = "auto",
) -> dict[str, Path]:
    """Separate the song at ``path`` (a file, or a ``SongInput`` such as ``StreamInput``) into
    ``out_dir/<name>/<stem>.wav`` (float WAV, the song's rate); ``name`` defaults to ``song_name(path)``.

    The song is processed in blocks of ``block_s`` seconds (plus BLOCK_MARGIN_S of context on each
    side) so memory does not grow with its length. Files appear atomically once all are complete. ``shifts``,
    ``wiener_iterations`` and ``precision``: as in ``separate`` (None: the model's own; ``auto``).
    """
    names = check_stems(model, stems)
    song = path if isinstance(path, SongInput) else open_song(Path(path))
    block = max(1, int(block_s * song.rate))
    song.check(block)
    folder = Path(out_dir) / (name or song_name(song.path))
    options = SeparationOptions(
        segment_s, overlap, batch_size, device, shifts, full_band, wiener_iterations, precision
    )
    with _no_empty_folder_left(folder), _seconds_bar(song, folder.name, progress) as bar:
        with ExitStack() as files, inference_model(model, device, wiener_iterations) as runner:
            writers = _open_stem_writers(files, folder, names, song)
            for start in range(0, song.length, block):
                stop = min(song.length, start + block)
                out = _separate_block(runner, song, start, stop, options, bar)  # (S, C, stop - start)
                for stem, writer in writers.items():
                    writer.write(out[model.sources.index(stem)].T)  # (n, C)
                del out
                release_freed_memory()
            for writer in writers.values():
                writer.close()  # before the temp files replace their targets
        return {stem: folder / f"{stem}.wav" for stem in names}


@contextmanager
def _no_empty_folder_left(folder: Path) -> Iterator[None]:
    """Removes ``folder`` after the block if the block created it and left it empty (a failed song)."""
    created = not folder.exists()
    try:
        yield
    finally:
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


@contextmanager
def _seconds_bar(song: SongInput, label: str, show: bool) -> Iterator[tqdm]:
    """A progress bar in seconds of ``song`` (disabled unless ``show``), closed after the block."""
    bar = tqdm(total=round(song.length / song.rate, 1), unit="s", desc=label, disable=not show)
    try:
        yield bar
    finally:
        bar.close()


def _open_stem_writers(
    files: ExitStack, folder: Path, names: list[str], song: SongInput
) -> dict[str, sf.SoundFile]:
    """A float WAV writer per stem, into its temp file: all of them replace their targets (``atomic_path``)
    only once ``files`` closes without an error, so a failed song never leaves half its stems."""
    temps = {stem: files.enter_context(atomic_path(folder / f"{stem}.wav", ".wav.tmp")) for stem in names}
    return {
        stem: files.enter_context(sf.SoundFile(
            tmp, "w", samplerate=song.rate, channels=song.channels, subtype="FLOAT", format="WAV"
        ))
        for stem, tmp in temps.items()
    }  # fmt: skip


def _separate_block(
    model: nn.Module, song: SongInput, start: int, stop: int, options: SeparationOptions, bar: tqdm
) -> np.ndarray:
    """Samples [start, stop) of ``song`` separated with BLOCK_MARGIN_S of real context on each side, so no
    chunk edge falls on the block's border -> (S, C, stop - start)."""
    margin = int(BLOCK_MARGIN_S * song.rate)
    lo, hi = max(0, start - margin), min(song.length, stop + margin)

    def on_batch(done: int, total: int) -> None:
        bar.n = round((start + (stop - start) * done / total) / song.rate, 1)
        bar.refresh()

    mix = song.read(lo, hi)  # (C, hi - lo)
    out = separate_array(model, mix, song.rate, options, on_batch=on_batch, offset=lo)  # (S, C, hi - lo)
    return out[..., start - lo : stop - lo]
