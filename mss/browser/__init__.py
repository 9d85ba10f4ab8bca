"""The spectrogram browser's logic, without its UI (the app draws the widgets around it): one time window
of one test song separated by each system, scored, and drawn. Its benchmark: ``python -m mss.bench.browser``.
"""

from mss.browser.views import BrowserConfig, BrowserError, SdrRow, SpectrogramBrowser, View

__all__ = ["BrowserConfig", "BrowserError", "SdrRow", "SpectrogramBrowser", "View"]
