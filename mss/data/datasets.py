"""Training chunks: random, remixed across songs, augmented (whole songs for evaluation: mss.data.songs).

Randomness: item ``i`` of epoch ``e`` is drawn from ``np.random.default_rng(SeedSequence([seed, e, i]))``
and from nothing else, so the data is the same for any number of DataLoader workers and any order of access.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from mss import MODEL_SAMPLE_RATE, augmentation_problems
from mss.data.augment import (
    EQ_PREROLL,
    REPITCH_STEPS,
    augment_params,
    eq_params,
    equalize,
    narrow,
    repitch,
    repitch_params,
    repitch_span,
    width_params,
)
from mss.data.cache import AudioCache, CachedSong, CacheSpec
from mss.data.tracks import Part, TrackInfo, plan_parts, read_part, setup_of, track_info
from mss.errors import DatasetError

#: Redraws of a silent anchor target before the last draw is accepted as it is.
MAX_SILENCE_TRIES: int = 20


@dataclass(frozen=True)
class DataConfig:
    """Everything that defines the training examples (see ARCHITECTURE.md, mss.data)."""

    targets: tuple[str, ...] = ("vocals", "drums", "bass", "other")
    sample_rate: int = MODEL_SAMPLE_RATE
    channels: int = 2
    segment_s: float = 4.0
    mix_sources: int | None = None  # sources in the mix, target included (curriculum); None = all
    remix: bool = True  # each source from an independently drawn song and offset
    # with remix: the share of chunks remixed; the others keep every part of the anchor's song and offset, a
    # coherent mixture (shared chords, roots and onsets) as recorded music is; 1 = every chunk (no draw)
    remix_prob: float = 1.0
    gain_db: tuple[float, float] = (-6.0, 3.0)
    channel_swap: bool = True
    sign_flip: bool = True
    eq_db: float = 0.0  # random EQ of each source (mss.data.augment.eq_params), gains in +-eq_db; 0 = off
    width_min: float = 1.0  # each stereo source's side scaled by U(width_min, 1) (augment.narrow); 1 = off
    vocals_side_db: float = 0.0  # the vocals' side signal lowered by this many dB (no draw); 0 = off
    # random repitch of each source with probability repitch_prob: speed (pitch and tempo together) scaled by
    # 2 ** (u / 12), u uniform in +-repitch_semitones (mss.data.augment.repitch); 0 = off
    repitch_semitones: float = 0.0
    repitch_prob: float = 0.2
    # with this probability a chunk's "other" part is the sum of two "other" chunks drawn independently (two
    # songs, but for a 1-in-pool-size chance), each with its own gain, sign and channel order (a recorded
    # "other" holds several instruments at once); 0 = off; needs remix
    other_stack_prob: float = 0.0
    silence_threshold_db: float = -60.0  # RMS of the (anchor) target chunk below which it is redrawn
    samples_per_epoch: int = 1000
    seed: int = 0
    cache_dtype: str = "int16"  # storage of the decoded training audio (see mss.data.cache)

    def __post_init__(self):
        object.__setattr__(
            self, "targets", (self.targets,) if isinstance(self.targets, str) else tuple(self.targets)
        )
        object.__setattr__(self, "gain_db", tuple(self.gain_db))
        if self.channels not in (1, 2):
            raise DatasetError(f"channels must be 1 or 2, got {self.channels}")
        if self.sample_rate <= 0 or self.segment_s <= 0 or self.samples_per_epoch <= 0:
            raise DatasetError("sample_rate, segment_s and samples_per_epoch must be positive")
        problems = augmentation_problems(self)
        if problems:
            raise DatasetError("; ".join(problems))
        if self.mix_sources is not None and self.mix_sources < 1:
            raise DatasetError(f"mix_sources must be >= 1 or None, got {self.mix_sources}")


def _activity(db) -> dict[str, set[str]] | None:
    """``{"train/<song>": active stems}`` from ``ROOT/manifest.json`` of the embedded set, else None."""
    path = Path(db.root) / "manifest.json"
    try:
        songs = json.loads(path.read_text())["songs"]
        return {key: set(entry["active_stems"]) for key, entry in songs.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _rms_db(audio: np.ndarray) -> float:
    flat = np.ravel(audio)
    # BLAS dot product: several times faster than squaring a copy, and it runs for every training example
    power = float(np.dot(flat, flat)) / flat.size if flat.size else 0.0
    return 10.0 * np.log10(power) if power > 0 else float("-inf")


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Crop or zero-pad the last axis to ``length``."""
    if audio.shape[-1] >= length:
        return audio[..., :length]
    return np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, length - audio.shape[-1])])


class Drawn(NamedTuple):
    """One training item as ``TrainChunks`` draws it: ``sources (K, C, T)``, the augmented parts summed into
    its mixture, and per source its part index, song index, first input sample, repitch speed over
    ``REPITCH_STEPS`` (``REPITCH_STEPS``: played as recorded) and the ``(song index, start)`` of a chunk
    stacked onto it (``DataConfig.other_stack_prob``) or None."""

    sources: np.ndarray
    chosen: list[int]
    songs: list[int]
    starts: list[int]
    steps: list[int]
    stacked: list[tuple[int, int] | None]


class TrainChunks(Dataset):
    """Random training chunks ``(mix (C, T), targets (S, C, T))`` at ``config.sample_rate``.

    The mixture is split into parts (one per target, then the distractors, see ``plan_parts``). Each item
    picks an anchor target (non-silent), ``mix_sources - 1`` more parts at random, reads each from its own
    song and offset (``remix=True``) or all from one song/offset, augments them independently and sums them.
    Targets left out of the mix are zeros. With ``use_manifest`` the embedded set's ``manifest.json`` restricts
    each part to the songs where its stems are active (e.g. piano).

    Every song is decoded and resampled to the model rate once, into the on-disk ``AudioCache`` (built here,
    in the calling process, with a progress bar; ``cache``: an AudioCache or its folder, default
    ``default_cache_dir()``), so reading a chunk is a slice of a memory map shared by all DataLoader workers
    and runs. Only light records are kept, so the dataset pickles cheaply into workers.
    """

    def __init__(
        self,
        db,
        config: DataConfig,
        cache: AudioCache | str | Path | None = None,
        use_manifest: bool = True,
        progress: bool = True,
    ):
        self.config = config
        self.parts, self.distractors = plan_parts(*setup_of(db), config.targets)
        self.all_parts: tuple[Part, ...] = self.parts + self.distractors
        if config.other_stack_prob > 0 and not any(part.name == "other" for part in self.all_parts):
            raise DatasetError(
                f"other_stack_prob stacks the other stem, but no training part is the other stem "
                f"(parts: {', '.join(part.name for part in self.all_parts)})"
            )
        if config.vocals_side_db > 0 and not any(part.name == "vocals" for part in self.all_parts):
            raise DatasetError(
                f"vocals_side_db narrows the vocals, but no training part is the vocals stem "
                f"(parts: {', '.join(part.name for part in self.all_parts)})"
            )
        self.tracks: list[TrackInfo] = [track_info(track) for track in db.tracks]
        if not self.tracks:
            raise DatasetError("the dataset has no tracks")
        if not isinstance(cache, AudioCache):
            cache = AudioCache(cache, CacheSpec(config.sample_rate, config.cache_dtype))
        elif cache.spec != CacheSpec(config.sample_rate, config.cache_dtype):
            raise DatasetError(
                f"the cache holds {cache.spec}, the data config asks for "
                f"{config.sample_rate} Hz {config.cache_dtype}"
            )
        self.cache_stats = cache.ensure(self.tracks, progress=progress, desc="training data")
        self.skipped: list[tuple[str, str]] = list(getattr(db, "unreadable", [])) + self.cache_stats["failed"]
        for key, why in self.skipped:  # one bad song never sinks the run: named, then left out
            print(f"training data: skipping {key}: {why}", file=sys.stderr, flush=True)
        failed = {key for key, _ in self.cache_stats["failed"]}
        self.tracks = [track for track in self.tracks if track.key not in failed]
        if not self.tracks:
            raise DatasetError(f"no readable training songs ({len(self.skipped)} skipped, see above)")
        self.songs: list[CachedSong] = [cache.lookup(track) for track in self.tracks]
        # per part: indices of the songs where it is active (from the embedded set's manifest.json)
        self.pools = self._pools(_activity(db) if use_manifest else None)
        self.segment = int(round(config.segment_s * config.sample_rate))  # T at the model rate
        self.epoch = 0
        self.mix_sources = config.mix_sources

    def _pools(self, activity: dict[str, set[str]] | None) -> list[np.ndarray]:
        everything = np.arange(len(self.tracks))
        if activity is None:
            return [everything] * len(self.all_parts)
        pools = []
        for part in self.all_parts:
            positive = {source for source, gain in part.terms if gain > 0}
            active = [i for i, t in enumerate(self.tracks) if positive & activity.get(t.key, positive)]
            pools.append(np.asarray(active) if active else everything)
        return pools

    def __len__(self) -> int:
        return self.config.samples_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (call before iterating; DataLoader workers copy the dataset at each iteration)."""
        self.epoch = int(epoch)

    def set_mix_sources(self, mix_sources: int | None) -> None:
        """Curriculum: number of sources in the mix, target included (None = all)."""
        if mix_sources is not None and mix_sources < 1:
            raise DatasetError(f"mix_sources must be >= 1 or None, got {mix_sources}")
        self.mix_sources = mix_sources

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.config.seed, self.epoch, int(index)]))

    def _draw_chunk(self, rng: np.random.Generator, part_index: int, track_index: int | None = None):
        """(track index, start sample at the model rate) for a part, uniformly over its songs and their length."""
        if track_index is None:
            pool = self.pools[part_index]
            track_index = int(pool[rng.integers(len(pool))])
        span = self.songs[track_index].num_samples - self.segment
        return track_index, int(rng.integers(span + 1)) if span > 0 else 0

    def _read(self, part_index: int, track_index: int, start: int, length: int | None = None) -> np.ndarray:
        """(C, length) of one part at the model rate (default: a segment): the weighted sum of its cached
        streams."""
        length = self.segment if length is None else length
        return read_part(self.all_parts[part_index], self.songs[track_index].read, start, length)

    def _augmented(self, audio: np.ndarray, scale, order: np.ndarray, out: np.ndarray | None = None):
        """``audio (C', n)`` as a chunk's source ``(C, n)``: the model's channel count, channels in ``order``,
        times ``scale`` (gain and sign); written into ``out`` where given."""
        return np.multiply(self._to_model(audio[None])[0][order], scale, out=out)

    def _sources(self, index: int) -> Drawn:
        """The augmented parts of item ``index`` and where they come from (see :class:`Drawn`)."""
        config = self.config
        rng = self.rng(index)
        num_parts = len(self.all_parts)
        anchor = int(rng.integers(len(self.parts)))
        count = num_parts if self.mix_sources is None else min(self.mix_sources, num_parts)
        others = [j for j in range(num_parts) if j != anchor]
        chosen = [anchor] + sorted(int(j) for j in rng.choice(others, size=count - 1, replace=False))
        # drawn only when some chunks stay coherent: remix_prob = 1 leaves every draw as it was
        remixed = config.remix and (config.remix_prob >= 1.0 or rng.random() < config.remix_prob)

        # The anchor target is redrawn while silent (judged before the gain and EQ, which move its level by
        # a few dB); with remix=False the whole song/offset is redrawn.
        for _ in range(MAX_SILENCE_TRIES):
            track_index, start = self._draw_chunk(rng, anchor)
            anchor_audio = self._read(anchor, track_index, start)
            if _rms_db(anchor_audio) >= config.silence_threshold_db:
                break
        audios, songs, starts = [anchor_audio], [track_index], [start]
        for j in chosen[1:]:
            if remixed:
                track_j, start_j = self._draw_chunk(rng, j)
            else:
                track_j, start_j = track_index, start
            songs.append(track_j)
            starts.append(start_j)

        # Augmentation draws (after the song draws, in augment's order), applied while reading: each source
        # is dequantized, scaled, sign-flipped and channel-swapped in one pass into its row of `sources`.
        channels = config.channels
        scale, order = augment_params(
            rng, len(chosen), channels, config.gain_db, config.channel_swap, config.sign_flip
        )
        steps = np.full(len(chosen), REPITCH_STEPS)  # (K,) speed of each source, REPITCH_STEPS = unchanged
        # drawn only when on: repitch_semitones = 0 leaves every draw as it was
        if config.repitch_semitones > 0:
            steps = repitch_params(rng, len(chosen), config.repitch_semitones, config.repitch_prob)
            if not remixed:  # one song and offset: one speed, so that the parts stay in time and tune
                steps[:] = steps[0]
        sources = np.empty((len(chosen), channels, self.segment), dtype=np.float32)  # (K, C, T)
        for k, (j, t) in enumerate(zip(chosen, songs, strict=True)):
            terms = self.all_parts[j].terms
            song = self.songs[t]
            if steps[k] != REPITCH_STEPS:  # read steps / REPITCH_STEPS times the chunk, within the song
                read_length = -(-self.segment * int(steps[k]) // REPITCH_STEPS)
                start = min(starts[k], max(0, song.num_samples - read_length))
                audio = self._repitched(j, t, start, int(steps[k]), 0, self.segment)
                # the anchor's silence check read [start, start + T): slowed, it plays less than that, sped up
                # more, so it is checked again as it will sound; silent, it is played as recorded instead
                if k > 0 or _rms_db(audio) >= config.silence_threshold_db:
                    starts[k] = start
                    self._augmented(audio, scale[k], order[k], out=sources[k])
                    continue
                if not remixed:  # one song: every part as recorded, so that they stay in time
                    steps[:] = REPITCH_STEPS
                steps[0] = REPITCH_STEPS
            if len(terms) == 1 and terms[0][1] == 1.0 and song.channels == channels:
                song.read_scaled(terms[0][0], starts[k], sources[k], float(scale[k]), order[k])
            else:  # a sum (other - piano) or a channel conversion: the plain path
                audio = audios[k] if k == 0 else self._read(j, t, starts[k])
                self._augmented(audio, scale[k], order[k], out=sources[k])
        if config.eq_db > 0:  # drawn last, so that eq_db = 0 leaves every other draw as it was
            before = [
                self._before(j, t, s0, scale[k], order[k], int(steps[k]))
                for k, (j, t, s0) in enumerate(zip(chosen, songs, starts, strict=True))
            ]
            equalize(sources, eq_params(rng, len(chosen), config.eq_db, config.sample_rate), before)
        if config.width_min < 1.0:  # drawn after the EQ: width_min = 1 changes no draw
            narrow(sources, width_params(rng, len(chosen), config.width_min))
        stack = config.other_stack_prob > 0 and remixed  # a coherent chunk keeps its own song's other
        stacked = self._stack(rng, sources, chosen) if stack else [None] * len(chosen)
        if config.vocals_side_db > 0:  # no draw: every other draw stays as it was
            rows = [k for k, j in enumerate(chosen) if self.all_parts[j].name == "vocals"]
            vocals = sources[rows]  # (V, C, T), a copy: narrowed, then written back
            narrow(vocals, np.full(len(rows), 10.0 ** (-config.vocals_side_db / 20.0)))
            sources[rows] = vocals
        return Drawn(sources, chosen, songs, starts, [int(step) for step in steps], stacked)

    def _stack(
        self, rng: np.random.Generator, sources: np.ndarray, chosen: list[int]
    ) -> list[tuple[int, int] | None]:
        """With probability ``other_stack_prob``, add another chunk of the "other" part to its row of
        ``sources (K, C, T)`` (in place), drawn like any part's (a song of the part's pool, a start within it:
        another song but for a 1-in-pool-size chance), with its own gain, sign and channel order (no repitch,
        EQ or width: drawn last, so that other_stack_prob = 0 changes no draw). Returns, per row, the added
        chunk's ``(song index, start)`` or None."""
        config, stacked = self.config, []
        for k, j in enumerate(chosen):
            if self.all_parts[j].name != "other" or rng.random() >= config.other_stack_prob:
                stacked.append(None)
                continue
            track, start = self._draw_chunk(rng, j)
            scale, order = augment_params(
                rng, 1, config.channels, config.gain_db, config.channel_swap, config.sign_flip
            )
            sources[k] += self._augmented(self._read(j, track, start), scale[0], order[0])
            stacked.append((track, start))
        return stacked

    def _before(
        self,
        part_index: int,
        track_index: int,
        start: int,
        scale,
        order: np.ndarray,
        steps: int = REPITCH_STEPS,
    ) -> np.ndarray:
        """``(C, P)``: the ``P = min(EQ_PREROLL, start)`` samples of a part before ``start``, augmented as its
        chunk (``scale``, channel ``order``, speed ``steps``), for the EQ to run through first. A repitched
        part's ``P`` is EQ_PREROLL rounded down to a whole number of ``REPITCH_STEPS`` output samples (2,000),
        silence where they reach before the song."""
        # a repitched part's preroll may reach before the song's first sample (silence there, the filters' rest)
        length = (
            min(EQ_PREROLL, start) if steps == REPITCH_STEPS else EQ_PREROLL // REPITCH_STEPS * REPITCH_STEPS
        )
        if length == 0:  # a song's first sample: silence precedes it, the filters' initial state
            return np.zeros((self.config.channels, 0), dtype=np.float32)
        if steps == REPITCH_STEPS:
            audio = self._read(part_index, track_index, start - length, length)
        else:
            audio = self._repitched(part_index, track_index, start, steps, length, 0)
        return self._augmented(audio, scale, order)

    def _repitched(
        self, part_index: int, track_index: int, start: int, steps: int, before: int, length: int
    ) -> np.ndarray:
        """``(C', before + length)``: a part played ``steps / REPITCH_STEPS`` times as fast
        (``mss.data.augment.repitch``), output sample ``before`` at input sample ``start``; silence before
        the song's first sample."""
        offset, count = repitch_span(steps, before, length)
        begin = start + offset  # may lie before the song: read from 0 and pad
        audio = self._read(part_index, track_index, max(begin, 0), count - max(-begin, 0))
        if begin < 0:
            audio = np.pad(audio, ((0, 0), (-begin, 0)))
        return repitch(audio, steps, before + length)

    def _fill(self, index: int, mix: np.ndarray, targets: np.ndarray) -> Drawn:
        """Write item ``index`` into ``mix (C, T)`` and ``targets (S, C, T)``; returns its provenance."""
        drawn = self._sources(index)
        np.sum(drawn.sources, axis=0, out=mix)  # built after augmenting: exactly what the model must split
        targets[...] = 0.0  # targets left out of the mix (curriculum) are silence
        for k, j in enumerate(drawn.chosen):
            if j < len(self.parts):
                targets[j] = drawn.sources[k]
        return drawn

    def draw(self, index: int) -> dict:
        """The item with its provenance: ``mix (C, T)``, ``targets (S, C, T)``, ``sources (K, C, T)`` (the
        augmented parts that were summed), ``names`` (their part names), ``songs`` (track keys), ``starts``
        (their first input samples), ``steps`` (their repitch speeds over ``REPITCH_STEPS``) and ``stacked``
        (per source, the ``(track key, start)`` of the chunk stacked onto it, or None)."""
        mix = np.empty((self.config.channels, self.segment), dtype=np.float32)
        targets = np.empty((len(self.parts), *mix.shape), dtype=np.float32)
        drawn = self._fill(index, mix, targets)
        return {
            "mix": mix,
            "targets": targets,
            "sources": drawn.sources,
            "names": [self.all_parts[j].name for j in drawn.chosen],
            "songs": [self.tracks[t].key for t in drawn.songs],
            "starts": drawn.starts,
            "steps": drawn.steps,
            "stacked": [None if s is None else (self.tracks[s[0]].key, s[1]) for s in drawn.stacked],
        }

    def _to_model(self, audio: np.ndarray) -> np.ndarray:
        """(..., C, segment) -> the model's channel count."""
        channels = audio.shape[-2]
        if self.config.channels == 1 and channels != 1:
            audio = audio.mean(-2, keepdims=True)  # stereo -> mono averages, as mss.audio.to_channels
        elif self.config.channels == 2 and channels == 1:
            audio = np.repeat(audio, 2, axis=-2)  # mono -> stereo duplicates
        elif channels != self.config.channels:
            raise DatasetError(f"cannot convert {channels}-channel audio to {self.config.channels} channels")
        return audio

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        item = self.draw(index)
        return torch.from_numpy(item["mix"]), torch.from_numpy(item["targets"])

    def __getitems__(self, indices: list[int]) -> ChunkBatch:
        """A whole batch written straight into (shared-memory, inside a worker) batch tensors.

        The DataLoader's default collate would stack the items, one more copy of every sample in the
        worker; with ``collate_fn=collate_chunks`` the batch travels as it is. Without it, the items
        are views of the batch and the default collate still works (with that copy).
        """
        for index in indices:
            if not 0 <= index < len(self):
                raise IndexError(index)
        mix = torch.empty((len(indices), self.config.channels, self.segment))  # (B, C, T)
        targets = torch.empty((len(indices), len(self.parts), *mix.shape[1:]))  # (B, S, C, T)
        if get_worker_info() is not None:  # filled in place, then handed to the main process as is
            mix.share_memory_()
            targets.share_memory_()
        for b, index in enumerate(indices):
            self._fill(index, mix[b].numpy(), targets[b].numpy())
        return ChunkBatch(mix, targets)


class ChunkBatch(list):
    """A batch from ``TrainChunks.__getitems__``: the list of per-item ``(mix, targets)`` views, plus
    the batch tensors themselves (``mix (B, C, T)``, ``targets (B, S, C, T)``)."""

    def __init__(self, mix: torch.Tensor, targets: torch.Tensor):
        super().__init__(zip(mix, targets, strict=True))
        self.mix, self.targets = mix, targets


def collate_chunks(batch):
    """DataLoader ``collate_fn`` for TrainChunks: a ChunkBatch as its batch tensors (no copy); anything
    else through torch's default collate."""
    if isinstance(batch, ChunkBatch):
        return batch.mix, batch.targets
    return default_collate(batch)
