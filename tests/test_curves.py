"""Learning-curve figures from metrics.csv files."""

from __future__ import annotations

from PIL import Image

from srgrad.train.curves import plot_curves, plot_runs


def write_metrics(path, offset: float):
    lines = ["step,loss,lr,data_ms,step_ms,val_psnr,val_ssim,gates"]
    for step in range(25, 501, 25):
        val = f"{30 + offset + step / 500:.3f}" if step % 100 == 0 else ""
        lines.append(f"{step},{10 - step / 100 + offset:.3f},0.0005,1,300,{val},,")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plot_runs_writes_a_two_panel_figure(tmp_path):
    runs = {"grad": write_metrics(tmp_path / "a.csv", 0.0),
            "identity": write_metrics(tmp_path / "b.csv", 0.5)}
    png = plot_runs(runs, tmp_path / "fig" / "pair.png", title="pair")
    with Image.open(png) as im:
        assert im.size[0] > im.size[1] > 200


def test_plot_curves_skips_a_missing_file(tmp_path):
    assert plot_curves(tmp_path / "none.csv", tmp_path / "x.png") is None
    assert plot_curves(write_metrics(tmp_path / "m.csv", 0), tmp_path / "x.png").exists()
