"""Loss and validation-SDR curves of a run, drawn from its metrics history (matplotlib's object API: no
pyplot, no backend switched for the process)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure


def plot_curves(history: list[dict], path: str | Path) -> Path:
    """Two panels: train/valid loss per epoch, and validation SDR per source and mean (dB)."""
    path = Path(path)
    figure = Figure(figsize=(11, 4), layout="constrained")
    loss_axis, sdr_axis = figure.subplots(1, 2)
    epochs = [record["epoch"] for record in history]
    loss_axis.plot(epochs, [record["train_loss"] for record in history], marker="o", label="train")
    valid = [r for r in history if r.get("valid_loss") is not None]
    if valid:
        loss_axis.plot(
            [r["epoch"] for r in valid], [r["valid_loss"] for r in valid], marker="o", label="valid"
        )
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("L1 loss")
    loss_axis.set_yscale("log")
    loss_axis.grid(True, alpha=0.3)
    loss_axis.legend()
    validated = [r for r in history if r.get("valid_sdr")]
    if validated:
        names = [name for name in validated[-1]["valid_sdr"] if name != "mean"]
        xs = [r["epoch"] for r in validated]
        for name in names:
            sdr_axis.plot(
                xs, [r["valid_sdr"].get(name, float("nan")) for r in validated], label=name, alpha=0.7
            )
        sdr_axis.plot(
            xs, [r["valid_sdr"]["mean"] for r in validated], color="black", linewidth=2, label="mean"
        )
        baseline = validated[-1].get("valid_sdr_mixture", {}).get("mean")
        if baseline is not None:
            sdr_axis.axhline(baseline, color="grey", linestyle="--", label="mixture")
        real = [r for r in validated if "mean" in (r.get("real_sdr") or {})]
        if real:  # the real MUSDB18 clips (mss.data.real_clips): not selected on
            sdr_axis.plot(
                [r["epoch"] for r in real],
                [r["real_sdr"]["mean"] for r in real],
                color="tab:red",
                linestyle=":",
                linewidth=2,
                label="real clips (mean)",
            )
    else:  # e.g. a target silent in every validation song: no SDR to draw
        sdr_axis.text(0.5, 0.5, "no validation SDR", ha="center", va="center", transform=sdr_axis.transAxes)
    sdr_axis.set_xlabel("epoch")
    sdr_axis.set_ylabel("validation SDR (dB)")
    sdr_axis.grid(True, alpha=0.3)
    if validated:
        sdr_axis.legend(fontsize=8)
    figure.savefig(path, dpi=100)
    return path
