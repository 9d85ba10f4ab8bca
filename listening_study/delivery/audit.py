"""Play the curious participant against the stimulus delivery, and measure what it costs to download.

    python -m listening_study.delivery.audit [--study-dir study] [--sessions 8] [--mbit 10] [--rating-s 60]

Builds (or loads, cached under the app's ``--study-dir``) the app's default study (the committed 4-stem
checkpoints on the embedded default dataset), starts ``--sessions`` sessions in a scratch session
store (the study's own sessions and ratings are not touched) and fetches every file each one would
download, through the same ``SessionStore.serve_audio`` the HTTP route sends. It prints:

- **what a session downloads** (MB) and the time to usable of a trial at ``--mbit`` Mbit/s: the first
  trial waits for its files; later ones were prefetched while the previous trial was rated (the page
  does that), so they wait only for what ``--rating-s`` seconds of rating did not cover;
- **the curious participant's score**: per condition, how often ``name_from_bytes`` names it from
  everything but the decoded samples (byte count and the 44 header bytes), trained on half the
  sessions with the truth in hand (an insider's pilot) and tested on the other half; chance is 1 in
  the number of versions per trial;
- the same classifier on the FLAC files this project used to send (each version encoded alone, as
  soundfile does), to show the leak that uncompressed delivery closes and that the classifier finds it;
- how many files two sessions share byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

#: One trial as the classifier sees it: {screen label: (byte count, header bytes)} and the truth
#: {screen label: condition} (only the pilot's trials have it).
Features = dict[str, tuple[int, bytes]]


def file_features(data: bytes, header: int = 44) -> tuple[int, bytes]:
    """What a program sees of a file without decoding it: its length and its first ``header`` bytes."""
    return len(data), bytes(data[:header])


def _ranks(features: Features, rng: np.random.Generator) -> dict[str, float]:
    """Rank of each label by its features within the trial, 0..1; ties broken at random."""
    labels = list(features)
    jitter = rng.random(len(labels))
    order = sorted(range(len(labels)), key=lambda i: (features[labels[i]], jitter[i]))
    return {labels[i]: rank / max(1, len(labels) - 1) for rank, i in enumerate(order)}


def name_from_bytes(
    pilot: Sequence[tuple[Features, dict[str, str]]], trials: Iterable[Features], seed: int = 0
) -> list[dict[str, str]]:
    """For each of ``trials``, a guess of every label's condition from sizes and headers alone.

    Learnt from the ``pilot`` trials (features and truth): each condition's mean rank within its trial
    by (size, header). A test trial's labels, ranked the same way, get the conditions in the order of
    their mean ranks. Whatever a version's bytes say about it outside its samples (a size that follows
    its compressibility, a header field) shows up as a stable rank; identical sizes and headers leave
    the ranks to the tie-breaking coin, and the guesses to chance.
    """
    rng = np.random.default_rng(seed)
    mean_rank: dict[str, list[float]] = {}
    for features, truth in pilot:
        for label, rank in _ranks(features, rng).items():
            mean_rank.setdefault(truth[label], []).append(rank)
    conditions = sorted(mean_rank, key=lambda c: (np.mean(mean_rank[c]), rng.random()))
    guesses = []
    for features in trials:
        ranked = sorted(_ranks(features, rng).items(), key=lambda item: item[1])
        guesses.append({label: conditions[i] for i, (label, _) in enumerate(ranked)})
    return guesses


def hit_rates(
    guesses: Sequence[dict[str, str]], truths: Sequence[dict[str, str]]
) -> dict[str, tuple[int, int]]:
    """{condition: (named right, trials)} over the trials."""
    hits, totals = Counter(), Counter()
    for guess, truth in zip(guesses, truths, strict=True):
        for label, condition in truth.items():
            totals[condition] += 1
            hits[condition] += guess.get(label) == condition
    return {condition: (hits[condition], totals[condition]) for condition in sorted(totals)}


def shared_files(first: Iterable[bytes], second: Iterable[bytes]) -> int:
    """Files of one session found byte for byte among another's."""
    digests = {hashlib.sha256(data).digest() for data in first}
    return sum(hashlib.sha256(data).digest() in digests for data in second)


# ------------------------------------------------------------------------------------------- the CLI
def _session_files(store, session) -> dict[tuple[str, str, str], bytes]:
    """Every audio file the session downloads (trials, familiarization, volume), as the store lists its
    pages (SessionStore.audio): (page, trial, label) -> bytes."""
    from listening_study.sessions.model import REFERENCE_LABEL

    pages = [page for trial in session.trials.values() for page in store.audio.pages(session, "trial", trial)]
    pages += [*store.audio.pages(session, "familiarization"), *store.audio.pages(session, "volume")]
    return {
        (page.page, page.trial_id, label): store.serve_audio(session.session_id, token)
        for page in pages
        for label, token in ((REFERENCE_LABEL, page.reference), *page.versions)
    }


def _flac(data: bytes) -> bytes:
    """The FLAC this project used to send for a WAV (each version encoded alone, before padding)."""
    import io

    import soundfile

    pcm, rate = soundfile.read(io.BytesIO(data), dtype="int16", always_2d=True)
    buffer = io.BytesIO()
    soundfile.write(buffer, pcm, rate, subtype="PCM_16", format="FLAC")
    return buffer.getvalue()


def _print_rates(title: str, rates: dict[str, tuple[int, int]], chance: float) -> None:
    from scipy.stats import binomtest

    print(title)
    for condition, (hits, total) in rates.items():
        p = binomtest(hits, total, chance, alternative="greater").pvalue
        print(
            f"  {condition:>14}: named {hits:>3}/{total} ({hits / total:5.1%}; chance {chance:.1%}, p = {p:.3g})"
        )


def main(argv: Sequence[str] | None = None) -> None:
    # The study stack is imported here, for the command line only: the classifier above stays importable
    # without it, and delivery/ does not import sessions/ at module level.
    import tempfile
    from pathlib import Path

    from listening_study.delivery.stimuli import prepare_stimuli
    from listening_study.design.study import default_study
    from listening_study.sessions.store import SessionStore
    from mss.checkpoint import checkpoint_set

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--study-dir", type=Path, default=Path("study"), help="the app's --study-dir (stimulus cache)"
    )
    parser.add_argument(
        "--sessions", type=int, default=8, help="sessions to download (half pilot, half test)"
    )
    parser.add_argument("--mbit", type=float, default=10.0, help="connection speed for the time to usable")
    parser.add_argument(
        "--rating-s", type=float, default=60.0, help="seconds a trial is rated (prefetch time)"
    )
    args = parser.parse_args(argv)

    checkpoints, targets = checkpoint_set("stems")
    study = default_study("default", checkpoints, targets=targets)  # the app's default study
    stimuli = prepare_stimuli(study, args.study_dir / "stimuli", progress=lambda f, m: print(f"{f:4.0%} {m}"))
    with tempfile.TemporaryDirectory() as scratch:
        store = SessionStore(scratch, stimuli)
        sessions = [store.start(consent=True) for _ in range(args.sessions)]
        files = [_session_files(store, s) for s in sessions]
    trials = []  # (session index, features of the WAVs, features of the FLACs, truth)
    for index, (session, downloaded) in enumerate(zip(sessions, files, strict=True)):
        for trial in session.trials.values():
            labels = trial.screen_labels
            wavs = {label: downloaded["trial", trial.trial_id, label] for label in labels}
            trials.append((index, {k: file_features(v) for k, v in wavs.items()},
                           {k: file_features(_flac(v)) for k, v in wavs.items()}, dict(trial.labels)))  # fmt: skip
    pilot = [t for t in trials if t[0] < args.sessions // 2]
    test = [t for t in trials if t[0] >= args.sessions // 2]
    chance = 1 / len(test[0][3])
    sizes = [sum(len(b) for b in f.values()) for f in files]
    per_trial = sum(len(b) for k, b in files[0].items() if k[0] == "trial") / len(sessions[0].trials)
    rate = args.mbit * 1e6 / 8
    print(
        f"study {study.study_id}: {len(sessions[0].trials)} trials x {len(test[0][3])} versions + reference"
    )
    print(
        f"a session downloads {sizes[0] / 1e6:.1f} MB (trials, familiarization, volume); a trial {per_trial / 1e6:.2f} MB"
    )
    print(f"time to usable at {args.mbit:g} Mbit/s: first trial {per_trial / rate:.1f} s; later trials "
          f"{max(0.0, per_trial / rate - args.rating_s):.1f} s (prefetched during {args.rating_s:g} s of rating)")  # fmt: skip
    for name, column in (("delivered WAV", 1), ("FLAC as sent before (each version alone)", 2)):
        guesses = name_from_bytes([(t[column], t[3]) for t in pilot], [t[column] for t in test])
        _print_rates(f"curious participant on the {name}, {len(test)} test trials:",
                     hit_rates(guesses, [t[3] for t in test]), chance)  # fmt: skip
    flac_sizes = {key: len(_flac(data)) for key, data in files[0].items()}
    padded = Counter()  # the FLAC delivery before: every file of a page padded to its largest + 4 bytes
    for (page, trial_id, _), size in flac_sizes.items():
        padded[page, trial_id] = max(padded[page, trial_id], size + 4)
    before = sum(padded[key[:2]] for key in flac_sizes)
    before_trial = sum(padded[key[:2]] for key in flac_sizes if key[0] == "trial") / len(sessions[0].trials)
    print(
        f"the FLAC delivery before (padded per page): {before / 1e6:.1f} MB a session, {before_trial / 1e6:.2f} MB "
        f"a trial; first trial usable after {before_trial / rate:.1f} s, every later one too (no prefetch)"
    )
    shared = shared_files(files[0].values(), files[1].values())
    print(f"files of session 2 found byte for byte in session 1: {shared} of {len(files[1])}")


if __name__ == "__main__":
    main()
