"""Named model sizes: ``tiny`` (tests), ``small`` (CPU training and fast CPU inference), ``large`` (GPU)."""

from __future__ import annotations

#: the UNet presets' level normalisation (UNetConfig.level_db): each chunk is seen at -16 dBFS RMS, about the
#: median training chunk's level (-15.7 dBFS on the sixth stage's data)
UNET_LEVEL_DB: float = -16.0

#: SHIFTS_NOTE (the eighth-stage UNet's; since the twelfth the UNet separates in one plain pass: FINE_NOTE): the small presets average as many shifted separations (``shifts``, mss.separate.shift_average) as
#: keep the default separation >= 20x real time on 2 CPU threads (``python -m mss.bench``): one UNet pass is
#: less than half of its plain separation's time (the rest is resampling and the high band, done once), and
#: with the shift trick chunks overlap by 1/8 instead of 1/4 (mss.chunking.SHIFTED_OVERLAP): two UNet passes ran
#: 22.4-24.9x, three Demucs passes 23.8-28.2x (float32; the 20-channel Demucs of then). checkpoints/history.md, "The shift trick by default".

#: WIENER_NOTE: the small UNet preset runs one EM iteration of the multichannel Wiener post-filter by default
#: (``wiener_iterations``, mss.models.wiener): on the eighth-stage unet.pt it gained 0.19 dB on 36 generated test
#: songs, most in bass and drums, for 0.1-0.35 s of a 3-minute song's 7 s (mss.models.wiener_em). Demucs' stays
#: off: it lost 0.03 there. With bf16 separation (mss.precision) the defaults ran UNet 29.6-30.4x and Demucs
#: 35.4-36.5x real time (the 20-channel Demucs; the 32-channel one of GROWTH_NOTE: 26.7-29.4x).
#: checkpoints/history.md, "The Wiener post-filter by default, and bf16 separation".

#: GROWTH_NOTE: the committed demucs.pt trained at 20 channels for 4 stages, then was grown (function-preserving)
#: to 32 channels with a 3-frame decoder context and fine-tuned 4,000 steps: union test 4.24 -> 4.41 dB against
#: the same recipe at 20 channels, one plain pass (checkpoints/history.md, "A wider Demucs: the ninth stage");
#: 10,000 steps more took it to 4.79 (the tenth stage; 4.78 in int8), 12,000 more to 5.06 in int8 (the eleventh),
#: 8,000 more, with HTS-sung vocals in 300 of 800 training songs, to 5.20 (the fourteenth).

#: FINE_NOTE: the committed unet.pt trained eight stages on a 1024-point STFT (21.5-Hz bins), then moved onto a
#: 2048-point one with pooled bins and a fine head (mss.models.unet_fine) and fine-tuned 3,204 steps: real train
#: clip 7.23 -> 8.05 dB (bass 6.69 -> 7.68; one 7-s song), 36 generated test songs 4.78 -> 4.97, one plain pass. A pass costs
#: about twice the 1024-point one's: with 2 shifts its defaults ran 19.6-21.0x real time (the 1024-point UNet's
#: 27.7-30.2x), too close to the floor, so it separates in one plain pass (27.7x, 29.4x; one shift ran as fast and
#: scored 0.10 lower on the embedded songs, 0.05 higher on the union). checkpoints/history.md, "Pooled bins and a fine head: the twelfth stage".

#: arch -> preset name -> config overrides (fields not named keep the config's defaults)
MODEL_PRESETS: dict[str, dict[str, dict]] = {
    "unet": {
        # milliseconds per forward pass; for tests only
        "tiny": dict(n_fft=256, hop_length=64, channels=4, depth=3, segment_s=1.0, level_db=UNET_LEVEL_DB),
        # tuned with `python -m mss.bench` for >= 20x real time on 2 CPU cores: five levels (16 ... 256
        # channels) instead of Jansson's six (the 512-wide bottom level costs ~20% of the time), and a
        # 50%-overlap STFT (46 ms window, 23 ms hop, Open-Unmix's hop in seconds): hop 256 ran 15x;
        # since the twelfth stage a 75%-overlap 2048-point STFT (93 ms window, the same hop) whose bins the network sees pooled in pairs, as the 1024-point
        # one it trained on for eight stages, with a head refining its masks on the fine bins below 3 kHz
        # (mss.models.unet_fine; FINE_NOTE)
        "small": dict(
            n_fft=2048,
            bin_pool=2,
            hop_length=512,
            channels=16,
            max_channels=256,
            depth=5,
            # the committed unet.pt's separation chunk (it trained on 12-s chunks last); a training run sets
            # its UNet's to its own training chunk (training.trainer.build_training_model)
            segment_s=12.0,
            level_db=UNET_LEVEL_DB,
            # one plain pass: with the 2048-point STFT two shifts ran 19.6-21.0x, at the floor, and one scored below
            # the plain pass; the 1024-point UNet averaged two (SHIFTS_NOTE, FINE_NOTE)
            shifts=0,
            # the multichannel Wiener post-filter by default, one EM iteration (Open-Unmix's; WIENER_NOTE)
            wiener_iterations=1,
        ),
        # Jansson et al. widths (16 ... 512) at 44.1 kHz with a 2048-point STFT
        "large": dict(
            sample_rate=44100,
            n_fft=2048,
            hop_length=512,
            channels=16,
            depth=6,
            dropout=0.5,
            segment_s=8.0,
            level_db=UNET_LEVEL_DB,
        ),
    },
    "demucs": {
        "tiny": dict(channels=4, depth=3, lstm_layers=1, segment_s=1.0),
        # tuned with `python -m mss.bench`: five levels put the BiLSTM at 22050 / 4^5 = 21.5 frames/s,
        # so it runs 4x fewer sequential steps than at depth 4 (the LSTM dominates CPU time otherwise).
        # One BiLSTM layer. Trained from scratch at 20 channels (3.5 M parameters; 24 channels with two layers,
        # 8.6 M, gave no better validation SDR per CPU-minute), then grown to 32 channels and a decoder
        # context of 3 (10.3 M, a 21 MB float16 checkpoint, 10.4 MB in int8; mss.models.demucs_growth), which gained 0.17 dB on
        # 36 generated test songs at equal steps: GROWTH_NOTE
        "small": dict(channels=32, context=3, depth=5, lstm_layers=1, segment_s=6.0, shifts=3),  # SHIFTS_NOTE
        # the Demucs paper's widths: 64 channels doubling over 6 levels, 2-layer BiLSTM, 44.1 kHz
        "large": dict(sample_rate=44100, channels=64, depth=6, lstm_layers=2, segment_s=8.0),
    },
}
