"""Growing a trained Demucs (mss.models.demucs_growth.grow_state_dict): a wider decoder context and residual BiLSTM
blocks, from the weights of a smaller model, computing what it did; model settings on the training command
line (TrainConfig.model_set, mss.models.parse_model_settings)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from helpers import CPU, perturbed_tiny, tiny_args

from mss.checkpoint import save_checkpoint
from mss.errors import CheckpointError
from mss.models import build_model, load_model, parse_model_settings
from mss.models.demucs import DemucsConfig
from mss.models.demucs_growth import grow_state_dict
from training.config import TrainConfig
from training.resume import init_weights
from training.run import main
from training.trainer import make_trainer

GROWTHS = [
    dict(context=3),
    dict(lstm_residual=1),
    dict(channels=6),
    dict(channels=7, context=5, lstm_residual=2),
]


@pytest.mark.parametrize("changes", GROWTHS)
def test_a_grown_demucs_computes_what_the_smaller_one_did(changes):
    small = perturbed_tiny("demucs")
    grown = build_model("demucs", replace(small.config, **changes)).eval()
    mix = torch.randn(2, 2, 16000)
    assert not torch.allclose(grown(mix), small(mix), atol=1e-3)  # fresh weights: another function
    grown.load_state_dict(grow_state_dict(small.state_dict(), small.config, grown))
    with torch.no_grad():
        torch.testing.assert_close(grown(mix), small(mix), rtol=0, atol=1e-6)
    # what grew is really there and trainable: the context taps and the residual blocks
    context = changes.get("context", 1)
    for i, layer in enumerate(grown.decoder):
        assert layer[0].kernel_size == (context,), i
        if context > 1 and "channels" not in changes:  # side taps start at zero, the centre is the old kernel
            assert torch.equal(layer[0].weight[..., context // 2], small.decoder[i][0].weight[..., 0])
            assert layer[0].weight[..., 0].abs().max() == 0
    assert len(grown.lstm_extra) == changes.get("lstm_residual", 0)
    assert grown.encoder[0][0].out_channels == changes.get("channels", small.config.channels)
    count = sum(p.numel() for p in grown.parameters())
    assert count > sum(p.numel() for p in small.parameters())
    # the zero output layer still lets gradients into the residual blocks' LSTM through their output layer
    grown.train()
    grown(mix).abs().mean().backward()
    for block in grown.lstm_extra:
        assert block.linear.weight.grad.abs().max() > 0
    if "channels" in changes:  # the zero weights from new channels into the stems move at the first step
        last = grown.decoder[-1][2].weight  # ConvTranspose1d (in, out, kernel): the level-0 output layer
        new = slice(small.config.channels, None)
        assert last[new].abs().max() == 0 and last.grad[new].abs().max() > 0


def test_growth_keeps_the_function_with_a_deeper_lstm_another_growth_factor_float16_and_twice():
    """The layouts the tiny preset does not reach: a 2-layer BiLSTM (its second layer reads both directions),
    widths growing by 1.5 (rounded), float16 weights as exported checkpoints store them, and a grown model grown
    again; no random draw from the caller's generator."""
    small = perturbed_tiny("demucs", lstm_layers=2, growth=1.5)
    mix = torch.randn(1, 2, 16000)
    once = build_model("demucs", replace(small.config, channels=6, context=3)).eval()
    half = {key: value.half() for key, value in small.state_dict().items()}
    once.load_state_dict(grow_state_dict(half, small.config, once))
    twice = build_model("demucs", replace(once.config, channels=9, context=5, lstm_residual=1)).eval()
    state = torch.random.get_rng_state()
    grown = grow_state_dict(once.state_dict(), once.config, twice)
    assert torch.equal(torch.random.get_rng_state(), state)
    twice.load_state_dict(grown)
    with torch.no_grad():
        expected = build_model("demucs", small.config).eval()
        expected.load_state_dict({key: value.float() for key, value in half.items()})
        torch.testing.assert_close(once(mix), expected(mix), rtol=0, atol=1e-6)
        torch.testing.assert_close(twice(mix), expected(mix), rtol=0, atol=1e-6)


def test_growing_refuses_a_smaller_or_different_model():
    small = perturbed_tiny("demucs")
    grown = build_model("demucs", replace(small.config, context=3))
    with pytest.raises(ValueError, match=r"smaller or different.*context"):
        grow_state_dict(grown.state_dict(), grown.config, small)
    narrower = build_model("demucs", replace(small.config, channels=small.config.channels - 1))
    with pytest.raises(ValueError, match=r"smaller or different.*channels"):
        grow_state_dict(small.state_dict(), small.config, narrower)
    deeper = build_model("demucs", replace(small.config, depth=small.config.depth + 1))
    with pytest.raises(ValueError, match=r"smaller or different.*depth"):
        grow_state_dict(small.state_dict(), small.config, deeper)
    with pytest.raises(ValueError, match="has no weight"):
        state = dict(small.state_dict())
        del state["encoder.0.0.weight"]
        grow_state_dict(state, small.config, grown)


def test_demucs_growth_fields_are_checked_and_old_checkpoints_load_without_them(tmp_path):
    for bad in (
        dict(context=2),
        dict(context=0),
        dict(lstm_residual=-1),
        dict(lstm_residual=1, lstm_layers=0),
    ):
        with pytest.raises(ValueError, match="context|lstm_residual"):
            DemucsConfig(**bad)
    small = perturbed_tiny("demucs")
    path = save_checkpoint(tmp_path / "old.pt", small, step=1)
    saved = torch.load(path, weights_only=True)
    for key in ("context", "lstm_residual"):  # as written before the fields existed
        del saved["model_config"][key]
    torch.save(saved, path)
    loaded = load_model(path)
    assert (loaded.config.context, loaded.config.lstm_residual) == (1, 0)
    mix = torch.randn(1, 2, 8000)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mix), small(mix))


def test_model_settings_parse_by_field_type_and_name_what_is_wrong():
    assert parse_model_settings("demucs", ("context=3", "lstm-residual=1", "rescale=0.05")) == dict(
        context=3, lstm_residual=1, rescale=0.05
    )
    assert parse_model_settings("unet", ("input_norm=log1p", "dropout=0.1")) == dict(
        input_norm="log1p", dropout=0.1
    )
    for items, message in [
        (("context",), "expected field=value"),
        (("context=",), "expected field=value"),
        (("kontext=3",), "has no field 'kontext'"),
        (("context=three",), "context expects a int"),
        (("sources=vocals",), "cannot be set from the command line"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_model_settings("demucs", items)
    with pytest.raises(ValueError, match="model_set item 'context' must read field=value"):
        TrainConfig(model_set=("context",))


def test_a_run_grows_the_demucs_it_starts_from(tiny_dataset, tmp_path, capsys):
    """model_set builds the run's model; init_from a smaller Demucs grows it, says so, and the run's first
    weights compute what the checkpoint's did. A model that is not a growth of it is still refused."""
    small = perturbed_tiny("demucs")
    start = save_checkpoint(tmp_path / "small.pt", small, step=7)
    fields = dict(model="demucs", model_preset="tiny", sample_rate=16000, segment_s=1.0, samples_per_epoch=8)
    config = TrainConfig(**fields, batch_size=4, threads=1, progress=False, real_clips=False, ema_decay=0.9,
                         model_set=("context=3", "lstm_residual=1"))  # fmt: skip
    trainer = make_trainer(config, CPU, steps_per_epoch=2)
    assert (trainer.model.config.context, trainer.model.config.lstm_residual) == (3, 1)
    assert init_weights(trainer, start) == 7
    out = capsys.readouterr().out
    assert "trained with context=1; this run uses 3 (grown" in out and "lstm_residual=0" in out
    mix = torch.randn(1, 2, 16000)
    with torch.no_grad():
        for model in (trainer.model.eval(), trainer.ema.shadow.eval()):
            torch.testing.assert_close(model(mix), small(mix), rtol=0, atol=1e-6)

    shrink = TrainConfig(**(config.to_dict() | {"model_set": ()}))
    bigger = save_checkpoint(tmp_path / "grown.pt", trainer.model, step=7)
    with pytest.raises(CheckpointError, match=r"cannot start from .*grown\.pt.*smaller or different"):
        init_weights(make_trainer(shrink, CPU, steps_per_epoch=2), bigger)

    # through the command line: the run records the setting and exports the grown model
    args = tiny_args(tiny_dataset, tmp_path / "run", "demucs", 1, "--set", "model_set=context=3,lstm_residual=1",
                     "--set", f"init_from={start}")  # fmt: skip
    assert main(args) == 0
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert recorded["model_set"] == ["context=3", "lstm_residual=1"]
    best = load_model(tmp_path / "run" / "best.pt")
    assert (best.config.context, best.config.lstm_residual) == (3, 1)
    assert main(tiny_args(tiny_dataset, tmp_path / "bad", "demucs", 1, "--set", "model_set=kontext=3")) == 2


def test_a_run_resumes_only_with_the_model_it_began_with(tiny_dataset, tmp_path, capsys):
    """A run begun under another model (here context 3 through model_set, as the small Demucs preset grew on
    2026-12-07) is not resumed into the preset's model: the error names the fields and the way out."""
    out = tmp_path / "run"
    grown = ("--set", "model_set=context=3")
    assert main(tiny_args(tiny_dataset, out, "demucs", 1, *grown)) == 0
    capsys.readouterr()
    assert main(tiny_args(tiny_dataset, out, "demucs", 2, "--resume")) != 0
    message = capsys.readouterr().err
    assert "differing fields ['context']" in message and "--set model_set=" in message
    assert main(tiny_args(tiny_dataset, out, "demucs", 2, "--resume", *grown)) == 0
    assert load_model(out / "last.pt").config.context == 3
