"""Separate whole tracks of any length with any model: chunked overlap-add, resampling, channels.

``python -m mss.separate SONG [SONG ...] [--checkpoint PATH] --out DIR [--stems a,b] [--device cpu]``
writes ``DIR/<song>/<stem>.wav`` at the song's rate, channel count and exact length.

Memory stays bounded whatever the track length: the overlap-add runs ``batch_size`` chunks at a time
into one output buffer, and the file CLI streams long tracks through in blocks of ``block_s`` seconds
(read from the file, separated, appended to the output wavs), so a 10-minute song needs about as
much memory as a 1-minute one.

Modules, leaves first (each imports only those above it):

- ``runtime``    what a separation does to the model and the process, put back afterwards
- ``shift``      the shift trick (``shift_average``)
- ``naming``     output folder names (``song_name``, ``output_names``)
- ``inputs``     input readers behind one interface (``SongInput``: ``FileInput``, ``DecodedInput``,
                 ``StreamInput``)
- ``arrays``     ``separate()``: an array in memory -> stems (``SeparationOptions``, ``separate_array``)
- ``streaming``  ``separate_file()``: a song of any length -> stem files, block by block
- ``cli``        ``python -m mss.separate``
"""

from .arrays import SeparationOptions, check_stems, separate, separate_array
from .cli import main
from .inputs import DecodedInput, FileInput, SongInput, StreamInput, open_song
from .naming import GENERIC_STEMS, output_names, song_name
from .runtime import denormals_flushed, flushed_denormals, inference_model, release_freed_memory, with_wiener
from .shift import MAX_SHIFT_S, max_shift, shift_average
from .streaming import BLOCK_MARGIN_S, separate_file

__all__ = [
    "BLOCK_MARGIN_S",
    "GENERIC_STEMS",
    "MAX_SHIFT_S",
    "DecodedInput",
    "FileInput",
    "SeparationOptions",
    "SongInput",
    "StreamInput",
    "check_stems",
    "denormals_flushed",
    "flushed_denormals",
    "inference_model",
    "with_wiener",
    "main",
    "max_shift",
    "open_song",
    "output_names",
    "release_freed_memory",
    "separate",
    "separate_array",
    "separate_file",
    "shift_average",
    "song_name",
]
