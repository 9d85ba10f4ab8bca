"""The comparison report (``python -m mss.report``): one offline HTML page of the evaluation, the training
runs and the benchmarks.

- ``spectrogram``  log-frequency dB spectrogram figures (also the spectrogram browser's)
- ``figures``      the report's PNG figures: boxplots, excerpts, training curves, ablation, budget curves
- ``page``         the HTML page the sections are written into
- ``runs``         the Training section, from run folders read by training.run_folder
- ``build``        the other sections, ``build_report``, the command line
"""

from mss.report.build import build_report, main
from mss.report.runs import read_run, run_summary

__all__ = ["build_report", "main", "read_run", "run_summary"]
