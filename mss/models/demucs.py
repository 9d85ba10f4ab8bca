"""Simplified waveform Demucs (Défossez et al. 2019, "Music source separation in the waveform domain").

Encoder: ``depth`` blocks of Conv1d(kernel 8, stride 4) + ReLU, then a 1x1 conv with GLU. A
bidirectional LSTM runs at the lowest resolution. Decoder: skip connection (added), 1x1 conv + GLU,
then ConvTranspose1d(kernel 8, stride 4) (+ ReLU except at the last block, which outputs S * C
waveforms). The input is normalised by the mixture's mean and std and the output scaled back.
The input is padded to the next length the strided stack maps back exactly, and the output is
cropped, so any length works (even one sample).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from mss import MODEL_SAMPLE_RATE, SOURCES, covers_mixture, shifts_problem, wiener_problem
from mss.models.blocks import BLSTM, SeparatorBase, center_trim, rescale_conv_weights
from mss.models.wiener import waveform_wiener


@dataclass(frozen=True)
class DemucsConfig:
    sources: tuple[str, ...] = SOURCES
    sample_rate: int = MODEL_SAMPLE_RATE
    audio_channels: int = 2
    #: default chunk length (seconds) for chunked inference
    segment_s: float = 6.0
    #: width of the first encoder block; multiplied by ``growth`` at every level (paper: 64, 2)
    channels: int = 32
    growth: float = 2.0
    depth: int = 5
    kernel_size: int = 8
    stride: int = 4
    lstm_layers: int = 2
    #: BiLSTM blocks added after the first, each added to its input (x + BLSTM(x)), their output layer
    #: zero-initialised: 0 = the original design. A trained model grows by them and still computes what it did
    #: (``grow_state_dict``), so fine-tuning starts where the smaller model stood
    lstm_residual: int = 0
    #: kernel of the decoder's GLU convolution (Demucs v2's ``context``: 3 lets each output frame see its
    #: neighbours before the transposed convolution; 1 = a 1x1 conv, this project's design until 2026-12-07)
    context: int = 1
    #: std the conv weights are rescaled toward at init (paper: 0.1); 0 disables
    rescale: float = 0.1
    #: EM iterations of the Wiener post-filter at inference (0: off; mss.models.wiener), on an STFT of
    #: wiener_n_fft samples (2048 at 22.05 kHz: 93 ms, Open-Unmix's 4096 at 44.1 kHz)
    wiener_iterations: int = 0
    wiener_n_fft: int = 2048
    #: the shift trick by default at inference (``mss.separate.shift_average``): separations of randomly delayed
    #: copies averaged, so chunk edges and the model's frame grid fall in several places; 0 = one plain pass.
    #: An inference default (``separate``'s ``shifts=None``), set by the preset or an export's ``--shifts``;
    #: training's per-epoch validation separates in one pass whatever it is.
    shifts: int = 0

    def __post_init__(self):
        if self.depth < 1 or self.channels < 1 or self.stride < 1 or self.kernel_size < self.stride:
            raise ValueError(f"invalid Demucs sizes in {self}")
        if self.context < 1 or self.context % 2 == 0:
            raise ValueError(f"DemucsConfig.context must be a positive odd kernel size, got {self.context}")
        if self.lstm_residual < 0 or (self.lstm_residual and self.lstm_layers < 1):
            raise ValueError(
                f"DemucsConfig.lstm_residual must be >= 0 and needs lstm_layers >= 1, got {self.lstm_residual}"
            )
        if (problem := shifts_problem(self.shifts, f"{type(self).__name__}.shifts")) is not None:
            raise ValueError(problem)
        if problem := wiener_problem(self.wiener_iterations, f"{type(self).__name__}.wiener_iterations"):
            raise ValueError(problem)
        if not self.sources:
            raise ValueError("DemucsConfig.sources must not be empty")


def level_widths(config: DemucsConfig) -> list[int]:
    """Output width of each encoder level, shallow first: ``channels * growth**i`` rounded."""
    return [int(round(config.channels * config.growth**i)) for i in range(config.depth)]


class Demucs(SeparatorBase):
    arch = "demucs"

    def __init__(self, config: DemucsConfig):
        super().__init__()
        self.config = config
        kernel, stride = config.kernel_size, config.stride
        widths = level_widths(config)
        self.encoder = nn.ModuleList()
        self.decoder = nn.ModuleList()  # built shallow-first, run in reverse
        in_width = config.audio_channels
        for i, width in enumerate(widths):
            self.encoder.append(
                nn.Sequential(
                    nn.Conv1d(in_width, width, kernel, stride),
                    nn.ReLU(),
                    nn.Conv1d(width, 2 * width, 1),
                    nn.GLU(dim=1),
                )
            )
            out_width = len(config.sources) * config.audio_channels if i == 0 else in_width
            decode: list[nn.Module] = [
                nn.Conv1d(width, 2 * width, config.context, padding=config.context // 2),
                nn.GLU(dim=1),
                nn.ConvTranspose1d(width, out_width, kernel, stride),
            ]
            if i > 0:
                decode.append(nn.ReLU())
            self.decoder.insert(0, nn.Sequential(*decode))
            in_width = width
        self.lstm = BLSTM(widths[-1], config.lstm_layers) if config.lstm_layers > 0 else None
        self.lstm_extra = nn.ModuleList(BLSTM(widths[-1], 1) for _ in range(config.lstm_residual))
        if config.rescale:
            rescale_conv_weights(self, config.rescale)
        for block in self.lstm_extra:
            nn.init.zeros_(block.linear.weight)
            nn.init.zeros_(block.linear.bias)

    def valid_length(self, length: int) -> int:
        """Smallest length >= ``length`` that the encoder/decoder maps back to itself exactly."""
        for _ in range(self.config.depth):
            length = max(1, math.ceil((length - self.config.kernel_size) / self.config.stride) + 1)
        for _ in range(self.config.depth):
            length = (length - 1) * self.config.stride + self.config.kernel_size
        return int(length)

    def forward(self, mix: Tensor) -> Tensor:
        """mix: (B, C, T) at cfg.sample_rate -> stems: (B, S, C, T), S == len(cfg.sources)."""
        batch, channels, length = mix.shape
        # Normalise by the statistics of the mono mixture (Demucs v2); eps keeps silence finite.
        mono = mix.mean(dim=1, keepdim=True)  # (B, 1, T)
        mean = mono.mean(dim=-1, keepdim=True)  # (B, 1, 1)
        std = mono.std(dim=-1, keepdim=True, unbiased=False)  # (B, 1, 1)
        x = (mix - mean) / (1e-5 + std)

        delta = self.valid_length(length) - length
        x = F.pad(x, (delta // 2, delta - delta // 2))  # (B, C, T_valid)
        skips = []
        for layer in self.encoder:
            x = layer(x)  # (B, W_i, L_i)
            skips.append(x)
        if self.lstm is not None:
            x = self.lstm(x)  # (B, W_last, L_last)
        for block in self.lstm_extra:
            x = x + block(x)  # (B, W_last, L_last)
        for layer in self.decoder:
            x = layer(x + skips.pop())  # (B, W_{i-1}, L_{i-1}); valid length makes sizes match exactly
        x = center_trim(x, length)  # (B, S*C, T)
        x = x.view(batch, len(self.config.sources), channels, length)  # (B, S, C, T)
        x = x * (1e-5 + std.unsqueeze(1)) + mean.unsqueeze(1)
        if self.config.wiener_iterations > 0 and not self.training:
            n_fft = self.config.wiener_n_fft
            x = waveform_wiener(x, mix, self.config.wiener_iterations, n_fft, n_fft // 4, self.needs_residual)
        return x

    @property
    def needs_residual(self) -> bool:
        """Whether the sources leave part of the mixture out (piano alone): see mss.models.wiener."""
        return not covers_mixture(self.config.sources)
