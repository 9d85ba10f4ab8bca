"""The time a run has taken, across resumes (wall clock and process CPU), and the ETA of its last epochs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class RunClock:
    """Started when this process begins its epochs; ``*_before_s`` are the run's times before it (last.pt)."""

    elapsed_before_s: float = 0.0
    cpu_before_s: float = 0.0
    started: float = field(default_factory=time.monotonic)
    cpu_started: float = field(default_factory=time.process_time)

    def elapsed_s(self) -> float:
        """Wall-clock seconds of the run so far."""
        return self.elapsed_before_s + time.monotonic() - self.started

    def cpu_s(self) -> float:
        """CPU seconds of the run so far: all threads of the process, validation included. The compute
        budget, which other jobs on the machine do not inflate the way they inflate wall-clock time."""
        return self.cpu_before_s + time.process_time() - self.cpu_started

    def eta_minutes(self, epochs_done: int, epochs_left: int) -> float:
        """Minutes left, at this process's mean epoch time over its ``epochs_done`` epochs."""
        per_epoch = (time.monotonic() - self.started) / max(1, epochs_done)
        return per_epoch * epochs_left / 60
