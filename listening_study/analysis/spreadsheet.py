"""Text that goes into CSV files a person may open in a spreadsheet.

    neutralize(text) -> str            # "=HYPERLINK(...)" -> "'=HYPERLINK(...)"
    neutralize_frame(frame) -> frame   # the same for every text cell of a DataFrame (a copy)

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a formula by
Excel, LibreOffice and Google Sheets (CSV injection, OWASP). A leading apostrophe makes it text there;
the apostrophe is visible in other readers, which is the price of opening the file safely.
"""

from __future__ import annotations

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    return "'" + text if isinstance(text, str) and text.startswith(FORMULA_PREFIXES) else text


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell neutralized (numbers are left as they are)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralize)
    return out
