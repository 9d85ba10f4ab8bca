"""int8 weight storage (mss.weight_codec) and the checkpoints that use it (python -m mss.checkpoint --int8)."""

from __future__ import annotations

import pytest
import torch
from helpers import trained_looking_tiny

from mss.checkpoint import load_checkpoint, main, save_checkpoint, write_checkpoint
from mss.errors import CheckpointError
from mss.models import load_model
from mss.weight_codec import decode, dequantise_rows, encode, quantisable, quantise_rows


def test_rows_round_trip_within_half_a_step_and_zero_rows_stay_zero():
    weights = torch.randn(6, 3, 5, generator=torch.Generator().manual_seed(0))
    weights[2] = 0.0
    values, scales = quantise_rows(weights)
    assert values.dtype == torch.int8 and values.shape == weights.shape and scales.shape == (6,)
    assert scales[2] == 0 and values[2].abs().sum() == 0
    back = dequantise_rows(values, scales)
    step = scales.reshape(-1, 1, 1)
    assert ((back - weights).abs() <= step / 2 + 1e-7).all()
    # each row's largest weight is exactly +-127 steps: it comes back to float rounding
    for row in (0, 1, 3, 4, 5):
        peak = weights[row].abs().argmax()
        assert values[row].flatten()[peak].abs() == 127
        assert torch.isclose(back[row].flatten()[peak], weights[row].flatten()[peak], rtol=1e-6)


def test_weights_that_are_not_finite_are_refused_naming_them(tmp_path):
    state = {"conv.weight": torch.randn(4, 16), "conv.bias": torch.tensor([0.0, float("inf"), 0.0, 0.0])}
    for dtype in ("int8", "float16"):
        with pytest.raises(ValueError, match=r"weight 'conv\.bias' holds inf or NaN values"):
            encode(state, dtype)
    assert torch.isinf(encode(state, "float32")[0]["conv.bias"]).any()  # float32 stores what it is given


def test_int8_encoding_keeps_small_tensors_and_counters_as_they_are():
    state = {
        "conv.weight": torch.randn(4, 2, 8),  # rows of 16: int8
        "conv.bias": torch.randn(4),  # 1-D: float16
        "input_scale": torch.randn(513, 1),  # one value per row: float16
        "norm.num_batches_tracked": torch.tensor(7),  # an integer counter: unchanged
    }
    assert [quantisable(v) for v in state.values()] == [True, False, False, False]
    weights, scales = encode(state, "int8")
    assert set(scales) == {"conv.weight"} and weights["conv.weight"].dtype == torch.int8
    assert weights["conv.bias"].dtype == weights["input_scale"].dtype == torch.float16
    assert weights["norm.num_batches_tracked"].dtype == torch.int64
    decoded = decode(weights, scales)
    assert decoded["conv.weight"].dtype == torch.float32
    torch.testing.assert_close(
        decoded["conv.weight"], state["conv.weight"], rtol=0, atol=float(scales["conv.weight"].max())
    )
    assert (
        encode(state, "float16")[1] == {} and encode(state, "float32")[0]["conv.bias"].dtype == torch.float32
    )
    with pytest.raises(ValueError, match="unknown weight dtype 'int4'"):
        encode(state, "int4")


def test_decoding_names_what_does_not_fit():
    weights, scales = encode({"a.weight": torch.randn(3, 16), "b.weight": torch.randn(2, 16)}, "int8")
    with pytest.raises(ValueError, match=r"'b\.weight' is int8 but has no scales"):
        decode(weights, {"a.weight": scales["a.weight"]})
    with pytest.raises(ValueError, match=r"scales without weights: \['c\.weight'\]"):
        decode(weights, {**scales, "c.weight": torch.ones(2)})
    with pytest.raises(ValueError, match=r"weight 'a\.weight': expected int8 rows and one scale per row"):
        decode(weights, {**scales, "a.weight": torch.ones(5)})


@pytest.mark.parametrize("arch", ["unet", "demucs"])
def test_an_int8_export_is_smaller_loads_as_float_and_separates_as_the_float16_one(arch, tmp_path):
    model = trained_looking_tiny(arch)
    full = save_checkpoint(tmp_path / "full.pt", model, metrics={"sdr": 2.0}, step=3)
    half, small = tmp_path / "half.pt", tmp_path / "int8.pt"
    assert main([str(full), str(half)]) == 0 and main([str(full), str(small), "--int8", "--shifts", "1"]) == 0
    raw = torch.load(small, weights_only=True)
    assert raw["weights_dtype"] == "int8" and set(raw["weight_scales"]) and raw["metrics"] == {"sdr": 2.0}
    assert raw["format_version"] == 2  # readers of format 1 refuse it rather than load int8 values as weights
    assert raw["model_config"]["shifts"] == 1
    raw_half = torch.load(half, weights_only=True)

    def stored_bytes(tensors):
        return sum(t.numel() * t.element_size() for t in tensors)

    # the tensors are compared (the tiny models' files are mostly zip overhead); their int8 rows are short, so
    # the float32 scales weigh: 62% of the float16 bytes for the tiny Demucs, against 50.4% for the committed one
    int8_bytes = stored_bytes(raw["state_dict"].values()) + stored_bytes(raw["weight_scales"].values())
    assert int8_bytes < 0.7 * stored_bytes(raw_half["state_dict"].values())
    loaded, reference = load_model(small), load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    mix = 0.1 * torch.randn(1, 2, 8000, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out, expected = loaded(mix), reference(mix)
    snr = 10 * torch.log10(expected.pow(2).sum() / (out - expected).pow(2).sum())
    assert snr > 25.0  # per-row int8: the outputs differ by less than 1/300 of their power
    # exporting it again as float16 keeps its (dequantised) weights, with no scales left over
    again = tmp_path / "again.pt"
    assert main([str(small), str(again)]) == 0
    raw_again = torch.load(again, weights_only=True)
    assert raw_again["weights_dtype"] == "float16" and "weight_scales" not in raw_again
    assert raw_again["format_version"] == 1  # readable by the code before int8 files existed
    with torch.no_grad():
        torch.testing.assert_close(load_model(again)(mix), out, rtol=0, atol=1e-2 * float(out.abs().max()))


def test_an_int8_checkpoint_without_its_scales_is_refused_naming_the_file(tmp_path, capsys):
    full = save_checkpoint(tmp_path / "full.pt", trained_looking_tiny("demucs"))
    small = tmp_path / "int8.pt"
    assert main([str(full), str(small), "--int8"]) == 0
    # what load_checkpoint hands back is float and says so: written again as it is, it reads the same
    loaded = load_checkpoint(small)
    assert (
        loaded["weights_dtype"] == "float32"
        and loaded["stored_dtype"] == "int8"
        and "weight_scales" not in loaded
        and loaded["format_version"] == 1
    )
    rewritten = write_checkpoint(tmp_path / "rewritten.pt", loaded)
    for key, value in load_checkpoint(rewritten)["state_dict"].items():
        assert torch.equal(value, loaded["state_dict"][key])
    # int8 tensors are decoded whatever the label says
    relabelled = torch.load(small, weights_only=True)
    relabelled["weights_dtype"] = "float16"
    read = load_checkpoint(write_checkpoint(tmp_path / "relabelled.pt", relabelled))["state_dict"]
    assert all(v.dtype != torch.int8 for v in read.values()) and torch.equal(
        read["encoder.0.0.weight"], loaded["state_dict"]["encoder.0.0.weight"]
    )
    raw = torch.load(small, weights_only=True)
    raw.pop("weight_scales")
    broken = write_checkpoint(tmp_path / "broken.pt", raw)
    with pytest.raises(
        CheckpointError, match=r"broken\.pt: its int8 weights cannot be read: .* has no scales"
    ):
        load_checkpoint(broken)
    with pytest.raises(SystemExit):
        main([str(full), str(small), "--int8", "--full-precision"])
    assert "not allowed with argument" in capsys.readouterr().err
