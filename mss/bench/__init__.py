"""Benchmarks that print figures (never timed tests):

- ``python -m mss.bench``          separation speed (real-time factor), peak memory, parameters (``separation``)
- ``python -m mss.bench.scale``    data cache, training step, evaluation and browser on full-length songs
- ``python -m mss.bench.browser``  the spectrogram browser's latency and memory per view
- ``python -m mss.bench.level``    separation SDR with the song played louder and quieter
- ``python -m mss.bench.stereo``   separation SDR with the song's stereo image narrowed, folded to mono, swapped

(``level`` and ``stereo`` share ``mss.bench.sweep``: change mixture and references alike, separate, score.)

The data and training benchmarks live with their layers: ``python -m mss.data.bench``, ``python -m training.bench``.
"""
