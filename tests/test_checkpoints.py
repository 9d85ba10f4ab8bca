"""Checkpoints: the round trip, export options (precision, level, chunk, shifts, post-filter) recorded and
obeyed, the refusals, the committed defaults, and the one-way import between format and registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from helpers import shift_batch_norm_statistics, tiny_model

from mss.checkpoint import (
    DEFAULT_CHECKPOINTS,
    default_checkpoint,
    load_checkpoint,
    save_checkpoint,
    write_checkpoint,
)
from mss.errors import CheckpointError
from mss.models import REGISTRY, count_parameters, load_model, model_preset
from mss.separate import separate

ARCHS = sorted(REGISTRY)
tiny = tiny_model


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip(arch, tmp_path):
    model = shift_batch_norm_statistics(tiny(arch, sources=("vocals", "other")))  # they must be saved too
    path = save_checkpoint(
        tmp_path / "ck" / "model.pt",
        model,
        training_config={"lr": 1e-3, "targets": ("vocals",)},
        step=7,
        epoch=2,
        metrics={"sdr": 1.5},
        extra={"note": "x"},
    )
    raw = torch.load(path, weights_only=True)
    assert raw["arch"] == arch and raw["format_version"] == 1 and raw["step"] == 7 and raw["epoch"] == 2
    assert raw["model_config"]["sources"] == ["vocals", "other"] and raw["note"] == "x"
    assert raw["training_config"] == {"lr": 1e-3, "targets": ["vocals"]}
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # the atomic write left no temp file
    loaded = load_model(path)
    assert not loaded.training and loaded.config == model.config and loaded.sources == ("vocals", "other")
    mix = torch.randn(2, 2, 3000, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        assert torch.equal(model(mix), loaded(mix))


@pytest.mark.parametrize("arch", ARCHS)
def test_half_precision_export_halves_the_file_and_keeps_outputs(arch, tmp_path):
    from mss.checkpoint import main as checkpoint_main

    model = tiny(arch)
    full = save_checkpoint(tmp_path / "full.pt", model, metrics={"sdr": 2.0}, step=3)
    assert checkpoint_main([str(full), str(tmp_path / "half.pt")]) == 0
    half = tmp_path / "half.pt"
    raw = torch.load(half, weights_only=True)
    assert raw["weights_dtype"] == "float16" and raw["metrics"] == {"sdr": 2.0} and raw["step"] == 3
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())
    params = count_parameters(model)
    assert half.stat().st_size < full.stat().st_size - params  # 2 bytes saved per weight at least
    loaded = load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    mix = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference, estimate = model(mix), loaded(mix)
    # float16 weights: relative error of the output around 1e-3, far below any audible difference
    assert (reference - estimate).norm() / reference.norm() < 1e-2


def _export_refuses(source, option: str, bads, message: str, tmp_path, capsys) -> None:
    """Exporting ``source`` with each value of ``bads`` for ``option`` exits with status 2 and ``message``, and
    writes nothing."""
    from mss.checkpoint import main as checkpoint_main

    for bad in bads:
        with pytest.raises(SystemExit) as exit_info:
            checkpoint_main([str(source), str(tmp_path / "x.pt"), option, bad])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_export_level_db_switches_a_raw_level_unet_and_records_it(tmp_path, capsys):
    """--level-db on export: the same weights, level_db in the model config (the output now follows the
    input's level), the change recorded; refused for Demucs and for a level above 0 dBFS, naming why."""
    from mss.checkpoint import main as checkpoint_main

    raw = tiny("unet", level_db=None)
    source = save_checkpoint(tmp_path / "raw.pt", raw, step=7)
    assert checkpoint_main([str(source), str(tmp_path / "level.pt"), "--level-db", "-16"]) == 0
    exported = load_checkpoint(tmp_path / "level.pt")
    assert exported["model_config"]["level_db"] == -16.0 and exported["export_changes"] == {"level_db": -16.0}
    assert exported["step"] == 7
    model = load_model(tmp_path / "level.pt")
    assert model.config == dataclasses.replace(raw.config, level_db=-16.0)
    mix = torch.randn(1, 2, 4000, generator=torch.Generator().manual_seed(2)) * 0.05
    with torch.inference_mode():
        quiet, loud = model(mix * 0.1) / 0.1, model(mix)
    assert (quiet - loud).abs().max() < 1e-4 * loud.abs().max()
    # a re-export keeps the record
    assert checkpoint_main([str(tmp_path / "level.pt"), str(tmp_path / "again.pt")]) == 0
    assert load_checkpoint(tmp_path / "again.pt")["export_changes"] == {"level_db": -16.0}
    demucs = save_checkpoint(tmp_path / "demucs.pt", tiny("demucs"))
    _export_refuses(demucs, "--level-db", ("-16",), "applies to UNet checkpoints", tmp_path, capsys)
    _export_refuses(source, "--level-db", ("3",), "at most 0", tmp_path, capsys)


def _separates_as_told(exported, plain, seconds: int, **told) -> None:
    """``exported`` separates by default exactly as ``plain`` (same weights) does when ``told`` the changed
    setting, and not as ``plain`` does by default (16 kHz noise of ``seconds``)."""
    mix = np.random.default_rng(seconds).standard_normal((2, seconds * 16000)).astype(np.float32) * 0.1
    by_default = separate(exported, mix, 16000)
    for name, stem in separate(plain, mix, 16000, **told).items():
        np.testing.assert_array_equal(by_default[name], stem)
    assert any(not np.array_equal(by_default[n], s) for n, s in separate(plain, mix, 16000).items())


def test_export_segment_s_sets_the_chunk_a_model_separates_in_and_records_it(tmp_path, capsys):
    """--segment-s on export: same weights, the model's chunk length changed (separate() then cuts the song into
    chunks of it), recorded beside any earlier change; refused for a length that is not positive seconds."""
    from mss.checkpoint import main as checkpoint_main

    for arch in ("unet", "demucs"):
        model = tiny(arch)
        source = save_checkpoint(tmp_path / f"{arch}.pt", model, step=3)
        assert checkpoint_main([str(source), str(tmp_path / f"{arch}-2s.pt"), "--segment-s", "2.5"]) == 0
        exported = load_checkpoint(tmp_path / f"{arch}-2s.pt")
        assert exported["model_config"]["segment_s"] == 2.5
        assert exported["export_changes"] == {"segment_s": 2.5}
        loaded = load_model(tmp_path / f"{arch}-2s.pt")
        assert loaded.segment_s == 2.5 and model.segment_s == 1.0
        assert loaded.config == dataclasses.replace(model.config, segment_s=2.5)
        for key, value in model.state_dict().items():  # float16 export of the same weights
            expected = value.to(torch.float16).float() if value.is_floating_point() else value
            assert torch.equal(loaded.state_dict()[key], expected), key
        # it separates as the unchanged export does when told the chunk length, and not as in its old chunks
        assert checkpoint_main([str(source), str(tmp_path / f"{arch}-plain.pt")]) == 0
        plain = load_model(tmp_path / f"{arch}-plain.pt")
        _separates_as_told(loaded, plain, seconds=4, segment_s=2.5)
    raw = save_checkpoint(tmp_path / "raw.pt", tiny("unet", level_db=None))
    both = [str(raw), str(tmp_path / "both.pt"), "--level-db", "-16", "--segment-s", "2"]
    assert checkpoint_main(both) == 0
    assert load_checkpoint(tmp_path / "both.pt")["export_changes"] == {"level_db": -16.0, "segment_s": 2.0}
    _export_refuses(
        raw,
        "--segment-s",
        ("0", "-1", "nan", "inf", "61"),
        "--segment-s must be seconds in (0, 60]",
        tmp_path,
        capsys,
    )


def test_export_shifts_sets_the_default_shift_trick_and_records_it(tmp_path, capsys):
    """--shifts on export: same weights, separate() then averages that many shifted separations by default (as
    asking for them does), recorded beside any earlier change; refused outside [0, MAX_SHIFTS]."""
    from mss.checkpoint import main as checkpoint_main

    for arch in ("unet", "demucs"):
        model = tiny(arch)
        source = save_checkpoint(tmp_path / f"{arch}.pt", model, step=3)
        target = tmp_path / f"{arch}-shifts.pt"
        assert checkpoint_main([str(source), str(target), "--shifts", "3", "--segment-s", "1.5"]) == 0
        exported = load_checkpoint(target)
        assert exported["model_config"]["shifts"] == 3
        assert exported["export_changes"] == {"segment_s": 1.5, "shifts": 3}
        loaded = load_model(target)
        assert loaded.shifts == 3 and model.shifts == 0
        assert loaded.config == dataclasses.replace(model.config, segment_s=1.5, shifts=3)
        assert checkpoint_main([str(source), str(tmp_path / f"{arch}-plain.pt"), "--segment-s", "1.5"]) == 0
        plain = load_model(tmp_path / f"{arch}-plain.pt")
        _separates_as_told(loaded, plain, seconds=3, shifts=3)
    _export_refuses(
        source, "--shifts", ("-1", "17"), "--shifts must be an integer in [0, 16]", tmp_path, capsys
    )


def test_export_wiener_sets_the_default_post_filter_and_records_it(tmp_path, capsys):
    """--wiener on export: same weights, separate() then runs that many EM iterations of the Wiener post-filter
    by default (as asking for them does; 0 switches a filtering model's off), recorded; refused outside [0, 8]."""
    from mss.checkpoint import main as checkpoint_main

    for arch in ("unet", "demucs"):
        model = tiny(arch, **({"wiener_n_fft": 256} if arch == "demucs" else {}))
        source = save_checkpoint(tmp_path / f"{arch}.pt", model, step=3)
        target = tmp_path / f"{arch}-wiener.pt"
        assert checkpoint_main([str(source), str(target), "--wiener", "1", "--shifts", "2"]) == 0
        exported = load_checkpoint(target)
        assert exported["export_changes"] == {"shifts": 2, "wiener_iterations": 1}
        loaded = load_model(target)
        assert loaded.wiener_iterations == 1 and model.wiener_iterations == 0
        assert loaded.config == dataclasses.replace(model.config, shifts=2, wiener_iterations=1)
        assert checkpoint_main([str(source), str(tmp_path / f"{arch}-plain.pt"), "--shifts", "2"]) == 0
        plain = load_model(tmp_path / f"{arch}-plain.pt")
        _separates_as_told(loaded, plain, seconds=3, wiener_iterations=1)
        assert checkpoint_main([str(target), str(tmp_path / f"{arch}-off.pt"), "--wiener", "0"]) == 0
        _separates_as_told(load_model(tmp_path / f"{arch}-off.pt"), loaded, seconds=3, wiener_iterations=0)
    _export_refuses(
        source, "--wiener", ("-1", "9", "one"), "--wiener must be an integer in [0, 8]", tmp_path, capsys
    )


def test_the_small_demucs_shifts_by_default_and_older_checkpoints_do_not(tmp_path):
    """The small Demucs preset carries the shift trick (what ships separates with it), the small UNet's one plain
    pass since the twelfth stage (its 2048-point STFT made 2 shifts too slow); a checkpoint saved before the
    field existed loads with shifts=0, one plain pass, as it always separated."""
    assert (model_preset("unet", "small").shifts, model_preset("demucs", "small").shifts) == (0, 3)
    assert model_preset("unet", "tiny").shifts == model_preset("demucs", "tiny").shifts == 0
    # and the small UNet its Wiener post-filter (one EM iteration), Demucs none
    small = (
        model_preset("unet", "small").wiener_iterations,
        model_preset("demucs", "small").wiener_iterations,
    )
    assert small == (1, 0)
    checkpoint = load_checkpoint(save_checkpoint(tmp_path / "old.pt", tiny("unet", shifts=2)))
    del checkpoint["model_config"]["shifts"]
    write_checkpoint(tmp_path / "old.pt", checkpoint)
    assert load_model(tmp_path / "old.pt").shifts == 0
    checkpoint["model_config"]["shifts"] = (
        99  # a file edited by hand: refused by name, not as a weights mismatch
    )
    write_checkpoint(tmp_path / "bad.pt", checkpoint)
    with pytest.raises(
        CheckpointError, match=r"bad.pt: its stored unet config is not valid: UNetConfig.shifts must"
    ):
        load_model(tmp_path / "bad.pt")


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"definitely not a zip file" * 10)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an mss checkpoint"):
        load_model(foreign)
    good = save_checkpoint(tmp_path / "good.pt", tiny("demucs"))
    for key, value, message in [
        ("arch", "wavenet", "unknown architecture"),
        ("format_version", 99, "format"),
    ]:
        payload = torch.load(good, weights_only=True)
        payload[key] = value
        torch.save(payload, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / "bad.pt")
    payload = torch.load(good, weights_only=True)
    payload["model_config"]["channels"] = 5  # weights no longer fit the config
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "bad.pt")


def test_default_checkpoints():
    assert set(DEFAULT_CHECKPOINTS) == set(REGISTRY)
    assert (
        default_checkpoint("unet").name == "unet.pt"
        and default_checkpoint("demucs").parent.name == "checkpoints"
    )
    with pytest.raises(CheckpointError, match="no default checkpoint"):
        default_checkpoint("wavenet")


def test_checkpoint_format_and_registry_import_one_way(tmp_path):
    """mss.checkpoint (the format) never imports mss.models (the registry), not even inside a function;
    each imports cleanly first in a fresh interpreter, and an export needs no model class."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import mss.checkpoint

    tree = ast.parse(Path(mss.checkpoint.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name.startswith("mss.models")}, imported
    source = save_checkpoint(tmp_path / "full.pt", tiny("unet"), metrics={"sdr": 1.0})
    scripts = {
        "mss.checkpoint": f"""
import sys
import mss.checkpoint
mss.checkpoint.export_checkpoint({str(source)!r}, {str(tmp_path / "half.pt")!r})
assert "mss.models" not in sys.modules, "mss.checkpoint pulled in mss.models"
import mss.models
print(mss.models.load_model({str(tmp_path / "half.pt")!r}).arch)
""",
        "mss.models": f"""
import mss.models
import mss.checkpoint
print(mss.models.load_model({str(source)!r}).arch)
""",
    }
    for first, script in scripts.items():
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and result.stdout.strip() == "unet", (first, result.stderr[-2000:])
