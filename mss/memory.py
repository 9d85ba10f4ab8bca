"""This process's memory, from Linux's ``/proc/self/status`` (figures for benchmarks and ``timings.csv``)."""

from __future__ import annotations

from pathlib import Path

STATUS = Path("/proc/self/status")


def status_mb(field: str) -> float | None:
    """A ``kB`` field of /proc/self/status (``"VmRSS"``: resident now, ``"VmHWM"``: peak) in MB; None
    where /proc is not available."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak() -> None:
    """Reset the kernel's high-water mark (VmHWM) of this process's RSS (Linux: ``clear_refs`` 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def rss_mb() -> float:
    """Resident memory of this process now (MB; NaN where /proc is not available)."""
    rss = status_mb("VmRSS")
    return float("nan") if rss is None else rss


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM, MB; since start or the last ``reset_peak``).

    The one peak-memory reader of the project. Not getrusage's ru_maxrss: on Linux a child started with
    fork + exec inherits its parent's ru_maxrss, which would hide the child's own peak; measure a child by
    calling this inside it. NaN where /proc is not available.
    """
    peak = status_mb("VmHWM")
    return float("nan") if peak is None else peak
