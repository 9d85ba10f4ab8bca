"""The comparison report (``python -m mss.report``): one offline HTML page of the evaluation, the training
runs and the benchmarks.

- ``spectrogram``  log-frequency dB spectrogram figures (also the spectrogram browser's)
- ``figures``      the report's PNG figures: boxplots, excerpts, training curves, ablation, budget curves
- ``build``        the page: its sections, ``build_report``, the command line
"""

from mss.report.build import build_report, main, read_run, run_summary

__all__ = ["build_report", "main", "read_run", "run_summary"]
