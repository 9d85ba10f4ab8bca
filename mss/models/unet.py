"""Spectrogram U-Net (the "image" approach): soft masks on the mixture magnitude.

After Jansson et al. 2017, "Singing voice separation with deep U-Net convolutional networks": a 2D
encoder of 5x5 stride-2 convolutions (batch norm, LeakyReLU 0.2), a mirrored decoder of transposed
convolutions with skip connections (concatenation), and a sigmoid mask per source. The estimate is the
mask times the mixture spectrogram, i.e. the masked magnitude with the mixture phase, inverted with
``mss.dsp.istft``. Audio channels are input planes, so one network sees the stereo image.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mss import MODEL_SAMPLE_RATE, SOURCES, covers_mixture, shifts_problem, valid_level_db, wiener_problem
from mss.dsp import istft, stft
from mss.models.blocks import SeparatorBase, crop_to
from mss.models.unet_fine import BIN_POOLS, WINDOW_GAIN, FineHead, head_bins, pool_bins, upsample_bins
from mss.models.wiener import wiener_filter, with_residual

INPUT_NORMS = ("log1p", "affine")
#: added to a chunk's RMS before level normalisation (UNetConfig.level_db): about -100 dBFS
LEVEL_EPS = 1e-5


@dataclass(frozen=True)
class UNetConfig:
    sources: tuple[str, ...] = SOURCES
    sample_rate: int = MODEL_SAMPLE_RATE
    audio_channels: int = 2
    #: default chunk length (seconds) for chunked inference
    segment_s: float = 6.0
    #: 1024 / 256 at 22.05 kHz = 46 ms windows, 11.6 ms hop (Jansson et al. use 1024 / 768 at 8 kHz)
    n_fft: int = 1024
    hop_length: int = 256
    #: width of the first encoder layer; doubles with depth up to ``max_channels``
    channels: int = 16
    max_channels: int = 512
    depth: int = 6
    kernel_size: int = 5
    #: dropout after the deepest ``dropout_layers`` decoder layers (Jansson et al.: 0.5 on three)
    dropout: float = 0.0
    dropout_layers: int = 3
    #: "log1p": log(1 + |X|) then a learned per-bin scale/offset; "affine": learned per-bin
    #: scale/offset on the raw magnitude (Open-Unmix)
    input_norm: str = "log1p"
    #: EM iterations of the multichannel Wiener post-filter at inference (Open-Unmix's; mss.models.wiener); 0 =
    #: plain masks. An inference default like ``shifts`` (``separate``'s ``wiener_iterations=None``), set by the
    #: preset or an export's ``--wiener``; training's per-epoch validation separates without it.
    wiener_iterations: int = 0
    #: level normalisation: the network sees each mixture chunk scaled to this RMS (dBFS), and its masks
    #: apply to the unscaled mixture, so the output follows the input's level (as Demucs' normalisation does;
    #: to float precision down to about -60 dBFS, where LEVEL_EPS starts to count). None: the raw level, which
    #: the committed UNets before 2026-12-06's sixth stage saw; their masks change with the input's level
    #: (-12 dB costs the real clip about 1.2 dB).
    level_db: float | None = None
    #: the shift trick by default at inference (``mss.separate.shift_average``): separations of randomly delayed
    #: copies averaged, so chunk edges and the model's frame grid fall in several places; 0 = one plain pass.
    #: An inference default (``separate``'s ``shifts=None``), set by the preset or an export's ``--shifts``;
    #: training's per-epoch validation separates in one pass whatever it is.
    shifts: int = 0
    #: 2: the encoder/decoder sees the n_fft-point spectrum pooled to the bins of an n_fft/2-point one, its masks
    #: are interpolated onto every bin, and a small head (``fine_channels`` wide) refines them up to
    #: ``fine_max_hz`` (mss.models.unet_fine); 1: the encoder/decoder sees every bin
    bin_pool: int = 1
    fine_channels: int = 16
    #: the head refines the bins up to this frequency (Hz); above it the network's interpolated masks apply
    fine_max_hz: float = 3000.0

    def __post_init__(self):
        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {INPUT_NORMS}, got {self.input_norm!r}")
        if self.depth < 1 or self.channels < 1 or self.n_fft < 2 or self.hop_length < 1:
            raise ValueError(f"invalid UNet sizes in {self}")
        if (problem := shifts_problem(self.shifts, f"{type(self).__name__}.shifts")) is not None:
            raise ValueError(problem)
        if problem := wiener_problem(self.wiener_iterations, f"{type(self).__name__}.wiener_iterations"):
            raise ValueError(problem)
        if not self.sources:
            raise ValueError("UNetConfig.sources must not be empty")
        if self.bin_pool not in BIN_POOLS or (self.bin_pool > 1 and self.n_fft % (2 * self.bin_pool)):
            raise ValueError(
                f"UNetConfig.bin_pool must be one of {BIN_POOLS}, and with 2 n_fft a multiple of 4; got "
                f"bin_pool={self.bin_pool}, n_fft={self.n_fft}"
            )
        if self.bin_pool > 1 and (self.fine_channels < 1 or not 0 < self.fine_max_hz <= self.sample_rate / 2):
            raise ValueError(
                "UNetConfig needs fine_channels >= 1 and 0 < fine_max_hz <= sample_rate / 2; got "
                f"{self.fine_channels}, {self.fine_max_hz}"
            )
        if self.level_db is not None and not valid_level_db(self.level_db):
            raise ValueError(
                f"UNetConfig.level_db must be None or a finite RMS level in dBFS (<= 0), got {self.level_db}"
            )


class UNet(SeparatorBase):
    arch = "unet"

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        bins = config.n_fft // 2 + 1
        network_bins = config.n_fft // config.bin_pool // 2 + 1  # Fc: the bins the encoder sees
        channels = config.audio_channels
        # Per-bin input normalisation of the network's bins, initialised to the identity.
        self.input_scale = nn.Parameter(torch.ones(network_bins, 1))  # (Fc, 1)
        self.input_offset = nn.Parameter(torch.zeros(network_bins, 1))  # (Fc, 1)
        self.fine_head: FineHead | None = None
        if config.bin_pool > 1:
            # the fine head's own per-bin normalisation of the full-resolution magnitude
            self.fine_scale = nn.Parameter(torch.ones(bins, 1))  # (F, 1)
            self.fine_offset = nn.Parameter(torch.zeros(bins, 1))  # (F, 1)
            head = head_bins(config.n_fft, config.sample_rate, config.fine_max_hz)
            self.fine_head = FineHead(len(config.sources) * channels, channels, config.fine_channels, head)

        widths = [min(config.channels * 2**i, config.max_channels) for i in range(config.depth)]
        kernel, padding = config.kernel_size, config.kernel_size // 2
        self.encoder = nn.ModuleList()
        in_width = channels
        for width in widths:
            self.encoder.append(
                nn.Sequential(
                    nn.Conv2d(in_width, width, kernel, stride=2, padding=padding),
                    nn.BatchNorm2d(width),
                    nn.LeakyReLU(0.2),
                )
            )
            in_width = width

        # Decoder, deepest first. Layer i maps level i to level i-1; its input is the previous
        # decoder output concatenated with the skip of level i (except at the bottom).
        self.decoder = nn.ModuleList()
        for i in range(config.depth - 1, 0, -1):
            in_width = widths[i] if i == config.depth - 1 else 2 * widths[i]
            layers: list[nn.Module] = [
                nn.ConvTranspose2d(
                    in_width, widths[i - 1], kernel, stride=2, padding=padding, output_padding=1
                ),
                nn.BatchNorm2d(widths[i - 1]),
                nn.ReLU(),
            ]
            if config.dropout > 0 and (config.depth - 1 - i) < config.dropout_layers:
                layers.append(nn.Dropout2d(config.dropout))
            self.decoder.append(nn.Sequential(*layers))
        last_in = widths[0] if config.depth == 1 else 2 * widths[0]
        self.output = nn.ConvTranspose2d(
            last_in, len(config.sources) * channels, kernel, stride=2, padding=padding, output_padding=1
        )

    def spectrogram(self, wave: Tensor) -> Tensor:
        """wave: (..., T) -> complex spectrogram (..., F, N) with the model's STFT."""
        return stft(wave, self.config.n_fft, self.config.hop_length)

    def magnitude(self, wave: Tensor) -> Tensor:
        """wave: (..., T) -> magnitude (..., F, N); the training loss uses this same transform."""
        return self.spectrogram(wave).abs()

    def forward_masks(self, magnitude: Tensor) -> Tensor:
        """magnitude: (B, C, F, N) -> soft masks in [0, 1]: (B, S, C, F, N)."""
        batch, channels, bins, frames = magnitude.shape
        if self.fine_head is None:
            logits = self._network(self._normalised(magnitude, self.input_offset, self.input_scale))
        else:
            coarse = self._normalised(
                pool_bins(magnitude), self.input_offset, self.input_scale
            )  # (B, C, Fc, N)
            band = self.fine_head.bins  # the head reads the fine magnitude of its band only
            fine = self._normalised(
                magnitude[..., :band, :] / WINDOW_GAIN, self.fine_offset[:band], self.fine_scale[:band]
            )  # (B, C, band, N)
            logits = self.fine_head(upsample_bins(self._network(coarse), bins), fine)
        return torch.sigmoid(logits).view(batch, len(self.config.sources), channels, bins, frames)

    def _normalised(self, magnitude: Tensor, offset: Tensor, scale: Tensor) -> Tensor:
        """magnitude (B, C, F, N) -> the input norm (``config.input_norm``) with per-bin offset and scale (F, 1)."""
        x = torch.log1p(magnitude) if self.config.input_norm == "log1p" else magnitude
        return (x + offset) * scale

    def _network(self, x: Tensor) -> Tensor:
        """Normalised magnitude (B, C, Fc, N) -> mask logits (B, S*C, Fc, N): the encoder/decoder."""
        bins, frames = x.shape[-2:]
        skips = []
        for layer in self.encoder:
            x = layer(x)  # (B, W_i, ceil(Fc / 2^(i+1)), ceil(N / 2^(i+1)))
            skips.append(x)
        for j, layer in enumerate(self.decoder):
            skip = skips[-2 - j]
            # transposed convs double the size; crop to the skip's size so any F, N works
            x = crop_to(layer(x), skip.shape[-2:])
            x = torch.cat([x, skip], dim=1)  # (B, 2 W_{i-1}, F_i, N_i)
        return crop_to(self.output(x), (bins, frames))  # (B, S*C, Fc, N)

    def _masks_of(self, mix: Tensor) -> tuple[Tensor, Tensor]:
        """mix: (B, C, T) -> (masks (B, S, C, F, N), mixture spectrogram (B, C, F, N) complex).

        The one path from a mix to its masks, shared by :meth:`forward` and :meth:`masked_magnitudes`.
        """
        spec = self.spectrogram(mix)  # (B, C, F, N) complex
        return self.forward_masks(self.network_magnitude(mix, spec)), spec

    def network_magnitude(self, mix: Tensor, spec: Tensor) -> Tensor:
        """mix (B, C, T) and its spectrogram (B, C, F, N) -> the magnitude :meth:`forward_masks` sees:
        |X|, or with ``config.level_db`` |X| times each chunk's gain to that RMS level (a silent chunk stays
        silent: the eps only keeps the gain finite). The masks then apply to the unscaled mixture."""
        magnitude = spec.abs()
        if self.config.level_db is None:
            return magnitude
        rms = mix.float().pow(2).mean(dim=(1, 2)).sqrt()  # (B,)
        gain = 10.0 ** (self.config.level_db / 20.0) / (rms + LEVEL_EPS)  # (B,)
        return magnitude * gain.to(magnitude.dtype)[:, None, None, None]

    def masked_magnitudes(self, mix: Tensor) -> Tensor:
        """mix: (B, C, T) -> the estimated magnitudes M * |X|: (B, S, C, F, N).

        What the training loss compares with the sources' magnitudes |S| (Jansson et al. 2017: L1 between
        the masked mixture magnitude and the target magnitude), without the iSTFT/STFT round trip that
        :meth:`forward`'s waveforms would need.
        """
        masks, spec = self._masks_of(mix)
        return masks * spec.abs().unsqueeze(1)  # (B, S, C, F, N)

    def forward(self, mix: Tensor) -> Tensor:
        """mix: (B, C, T) at cfg.sample_rate -> stems: (B, S, C, T), S == len(cfg.sources)."""
        masks, spec = self._masks_of(mix)  # (B, S, C, F, N), (B, C, F, N) complex
        if self.config.wiener_iterations > 0 and not self.training:
            magnitudes = masks * spec.abs().unsqueeze(1)  # (B, S, C, F, N)
            if self.needs_residual:
                # Sources that do not cover the mixture (piano alone): a multichannel Wiener filter over
                # one source is the identity (it hands back the mixture), so the rest of the mixture joins
                # as one more source, |X| minus the estimates (Open-Unmix's `residual`), and is dropped after
                estimates = self._wiener(with_residual(magnitudes, spec), spec)[:, :-1]
            else:
                estimates = self._wiener(magnitudes, spec)  # (B, S, C, F, N)
        else:
            estimates = masks * spec.unsqueeze(1)  # (B, S, C, F, N): mask x magnitude, mixture phase
        return istft(estimates, self.config.n_fft, self.config.hop_length, mix.shape[-1])

    @property
    def needs_residual(self) -> bool:
        """Whether the sources leave part of the mixture out (piano alone, vocals alone; not the four MUSDB18
        stems, nor vocals with accompaniment): the Wiener filter then needs the rest as an extra source."""
        return not covers_mixture(self.config.sources)

    def _wiener(self, magnitudes: Tensor, mix_spec: Tensor) -> Tensor:
        """(B, S, C, F, N) magnitudes, (B, C, F, N) complex mixture -> complex estimates (mss.models.wiener)."""
        return wiener_filter(magnitudes, mix_spec, self.config.wiener_iterations)
