"""`srgrad eval` end to end through a small Typer app, its reports, grids and error lines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file

from srgrad.cli import eval_cmd
from srgrad.data.resize import bicubic_downscale, modcrop
from srgrad.evaluation.compare import detail_crop
from srgrad.evaluation.report import REFERENCES
from srgrad.models.registry import build_model, model_config
from srgrad.models.weights import FORMAT, save_weights

from helpers import CONVENTIONS_DOC, cli_app, error_lines, install_shipped, one_error, runner
from test_infer import overflowing_weights

app = cli_app(("eval", eval_cmd.evaluate))


def invoke(*args: str | Path):
    return runner.invoke(app, ["eval", *map(str, args)])


def make_set(root: Path, name: str = "Set5", sizes=((40, 36), (30, 44)), scale: int = 2) -> Path:
    """A benchmark-layout set: HR PNGs and their LR made with srgrad's MATLAB bicubic."""
    rng = np.random.default_rng(len(name))
    set_dir = root / "benchmark" / name
    for i, (h, w) in enumerate(sizes):
        yy, xx = np.mgrid[0:h, 0:w]
        smooth = 128 + 80 * np.sin(xx / 3.0 + i)[..., None] * np.cos(yy / 4.0)[..., None]
        hr = np.clip(smooth + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
        for folder, img in ((set_dir / "HR", hr),
                            (set_dir / "LR_bicubic" / f"X{scale}",
                             bicubic_downscale(modcrop(hr, scale), scale))):
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"im{i}" if folder.name == "HR" else f"im{i}x{scale}"
            Image.fromarray(img).save(folder / f"{stem}.png")
    return root


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """Random sedsr-grad x2 weights, installed as the only shipped weights."""
    return install_shipped(monkeypatch, tmp_path / "shipped", {2: 0}) / "sedsr-grad_x2.safetensors"


# --- (1) the whole path: bicubic reproduces the published numbers -------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_published_numbers(tmp_path, shared_datasets, scale):
    if not (shared_datasets / "benchmark" / "Set14" / "HR").is_dir():
        pytest.skip(f"shared Set14 not found under {shared_datasets} (set SRGRAD_SHARED_DATASETS)")
    out = tmp_path / "out.json"
    result = invoke("--model", "bicubic", "--root", shared_datasets, "--datasets", "set5,set14",
                    "--scale", scale, "--report", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["convention"]["name"] == "y"
    assert "rgb2ycbcr" in report["convention"]["description"]
    assert {"srgrad_version", "command", "machine"} <= report.keys()
    assert report["command"].startswith("srgrad eval --model bicubic")
    assert len(report["per_image"]) == 5 + 14
    for row in report["results"]:
        psnr, ssim = REFERENCES[scale]["bicubic"][row["dataset"]]
        assert row["model"] == "bicubic" and row["scale"] == scale
        assert abs(row["psnr"] - psnr) <= 0.03, row
        assert abs(row["ssim"] - ssim) <= 0.0015, row
    assert "EDSR-baseline" in result.output and "Set14" in result.output


def test_reference_table_matches_conventions_doc():
    doc = CONVENTIONS_DOC
    if not doc.is_file():
        pytest.skip(f"{doc} not found")
    names = {"Set5": "set5", "Set14": "set14", "B100": "b100", "Urban100": "urban100"}
    rows = [line.split("|")[1:-1] for line in doc.read_text().splitlines()
            if line.startswith("| x") and "/" in line]
    header = [c.strip() for c in next(line for line in doc.read_text().splitlines()
                                       if line.startswith("| scale")).split("|")[3:-1]]
    assert len(rows) == 9
    for row in rows:
        scale, method = int(row[0].strip()[1:]), row[1].strip()
        for name, cell in zip(header, row[2:], strict=True):
            psnr, ssim = (float(v) for v in cell.split("/"))
            assert REFERENCES[scale][method][names[name]] == (psnr, ssim)


# --- (2) report formats -----------------------------------------------------------------

def test_reports_json_md_csv(tmp_path):
    root = make_set(tmp_path / "data")
    paths = [tmp_path / "r" / f"report.{ext}" for ext in ("json", "md", "csv")]
    result = invoke("--model", "bicubic", "--root", root, "--datasets", "set5",
                    *[a for p in paths for a in ("--report", p)])
    assert result.exit_code == 0, result.output
    report = json.loads(paths[0].read_text())
    assert [r["image"] for r in report["per_image"]] == ["im0", "im1"]
    (mean,) = report["results"]
    assert mean["images"] == 2 and mean["dataset"] == "set5"
    assert mean["psnr"] == pytest.approx(np.mean([r["psnr"] for r in report["per_image"]]), 1e-4)
    md = paths[1].read_text()
    assert "| data set | bicubic PSNR / SSIM | bicubic Δ |" in md and "| Set5 | im1 |" in md
    assert "arXiv 1707.02921" in md
    rows = list(csv.DictReader(io.StringIO(paths[2].read_text())))
    assert [r["row"] for r in rows] == ["mean", "image", "image"]
    assert float(rows[0]["psnr"]) == pytest.approx(mean["psnr"], abs=1e-3)
    assert not list((tmp_path / "r").glob(".*"))  # no temporary files left behind


def strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity, which Python's json module writes and
    reads unless told not to, are refused."""
    def refuse(name: str):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_an_exact_reconstruction_says_that_it_makes_the_mean_infinite(tmp_path):
    """A flat image is reconstructed exactly by bicubic: its PSNR is inf, and so is its set's
    mean (the field's convention), said in one warning line; every report stays valid."""
    folder = tmp_path / "flat"
    folder.mkdir()
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(folder / "gray.png")
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    Image.fromarray(noise).save(folder / "noise.png")
    paths = [tmp_path / f"r.{ext}" for ext in ("json", "md", "csv")]
    result = invoke("--model", "bicubic", "--datasets", folder,
                    *[a for p in paths for a in ("--report", p)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning")]
    assert warned == [f"warning: infinite PSNR (exact reconstruction) for bicubic on {folder} "
                      "x2: gray; each makes its data set's mean PSNR infinite (null in JSON "
                      "reports); a --report lists every image's score"], result.output
    report = strict_json(paths[0].read_text())
    assert [(r["image"], r["psnr"]) for r in report["per_image"]][0] == ("gray", None)
    assert report["per_image"][1]["psnr"] > 0 and report["results"][0]["psnr"] is None
    assert "| flat | gray | inf / 1.0000 |" in paths[1].read_text()
    psnrs = [float(r["psnr"]) for r in csv.DictReader(io.StringIO(paths[2].read_text()))]
    assert psnrs[:2] == [np.inf, np.inf] and np.isfinite(psnrs[2])  # mean, gray, noise


def test_weights_whose_output_is_not_finite_stop_the_eval_in_one_line(tmp_path, shipped):
    huge = overflowing_weights(shipped, tmp_path / "huge.safetensors")
    report = tmp_path / "r.json"
    result = invoke("--weights", huge, "--root", make_set(tmp_path / "data"), "--datasets",
                    "set5", "--report", report)
    one_error(result, "error: huge on im0: the model's output is not finite (NaN or inf): the "
                      "weights are unusable or overflow in fp32; use other weights")
    assert "warning" not in result.output and not report.exists()


def test_report_extension_checked_before_work(tmp_path):
    result = invoke("--model", "bicubic", "--root", tmp_path, "--report", tmp_path / "r.txt")
    assert result.exit_code == 2
    assert error_lines(result.output) == [
        f"error: --report {tmp_path / 'r.txt'}: unknown format '.txt'; use .json, .md, .csv"]


# --- (3) models side by side, saved outputs and comparison grids -------------------------

def test_models_side_by_side_with_images_and_grids(tmp_path, shipped):
    root = make_set(tmp_path / "data")
    extra = save_weights(build_model("sedsr", 2), model_config("sedsr", 2),
                         tmp_path / "mine.safetensors")
    result = invoke("--model", "bicubic,sedsr-grad", "--weights", extra, "--root", root,
                    "--datasets", "set5", "--save-images", tmp_path / "sr",
                    "--compare", tmp_path / "cmp", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["model"] for r in report["results"]] == ["bicubic", "sedsr-grad", "mine"]
    assert len(report["per_image"]) == 6
    for label in ("bicubic", "sedsr-grad", "mine"):
        assert label in result.output
        for i, (h, w) in enumerate(((40, 36), (30, 44))):
            with Image.open(tmp_path / "sr" / label / "Set5" / "x2" / f"im{i}.png") as im:
                assert im.size == (w, h)
    grids = sorted((tmp_path / "cmp" / "Set5").iterdir())
    assert [g.name for g in grids] == ["im0_x2.png", "im1_x2.png"]
    with Image.open(grids[0]) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1]


def test_self_ensemble_labels_and_folder_dataset(tmp_path, shipped):
    make_set(tmp_path / "data")
    folder = tmp_path / "data" / "benchmark" / "Set5" / "HR"
    result = invoke("--model", "sedsr-grad", "--self-ensemble", "--datasets", folder,
                    "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["self_ensemble"] and report["results"][0]["model"] == "sedsr-grad+"
    assert report["results"][0]["dataset"] == str(folder)


def test_a_folder_in_the_benchmark_layout_is_scored_as_a_set(tmp_path):
    """HR/ beside LR_bicubic/X2 and X4: its 2 HR images with their X2 LR, not 6 images."""
    root = make_set(tmp_path / "data", "Mine")
    set_dir = root / "benchmark" / "Mine"
    make_set(tmp_path / "x4", "Mine", scale=4)
    (tmp_path / "x4" / "benchmark" / "Mine" / "LR_bicubic" / "X4").rename(
        set_dir / "LR_bicubic" / "X4")
    paths = [tmp_path / "r.json", tmp_path / "r.md"]
    result = invoke("--model", "bicubic", "--datasets", set_dir, "--report", paths[0],
                    "--report", paths[1])
    assert result.exit_code == 0, result.output
    report = json.loads(paths[0].read_text())
    assert [r["image"] for r in report["per_image"]] == ["im0", "im1"]
    assert report["results"][0]["images"] == 2
    assert report["sources"] == [{
        "dataset": str(set_dir), "scale": 2, "images": 2, "hr": str(set_dir / "HR"),
        "lr": str(set_dir / "LR_bicubic" / "X2"), "lr_given": 2}]
    line = f"Mine x2: 2 images, HR from {set_dir / 'HR'}; LR from {set_dir / 'LR_bicubic' / 'X2'}"
    assert line in result.output
    assert f"- {line}" in paths[1].read_text()


def test_subfolders_of_a_plain_folder_only_with_recursive(tmp_path):
    make_set(tmp_path / "data")
    folder = tmp_path / "photos"
    (tmp_path / "data" / "benchmark" / "Set5" / "HR").rename(folder)
    (folder / "more").mkdir()
    (folder / "im1.png").rename(folder / "more" / "im1.png")
    result = invoke("--model", "bicubic", "--datasets", folder, "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert f"skipped: 1 image(s) in subfolders of {folder}; pass --recursive" in result.output
    assert f"photos x2: 1 image, HR from {folder}; LR made from the HR by MATLAB bicubic" in (
        result.output)
    result = invoke("--model", "bicubic", "--datasets", folder, "--recursive",
                    "--save-images", tmp_path / "sr", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"] for r in report["per_image"]] == ["im0", "more/im1"]
    assert "--recursive" in report["command"] and "skipped" not in result.output
    assert f"photos x2: 2 images, HR from {folder};" in result.output
    assert (tmp_path / "sr" / "bicubic" / "photos" / "x2" / "more" / "im1.png").is_file()


def test_two_folders_of_one_name_keep_their_own_rows_and_images(tmp_path):
    make_set(tmp_path / "data")
    a, b = tmp_path / "a" / "imgs", tmp_path / "b" / "imgs"
    a.parent.mkdir()
    b.mkdir(parents=True)
    (tmp_path / "data" / "benchmark" / "Set5" / "HR").rename(a)
    (a / "im1.png").rename(b / "im1.png")
    result = invoke("--model", "bicubic", "--datasets", f"{a},{b},{a}",
                    "--save-images", tmp_path / "sr", "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "imgs x2: 1 image" in result.output and "imgs#2 x2: 1 image" in result.output
    rows = json.loads((tmp_path / "r.json").read_text())["per_image"]
    assert sorted((r["dataset"], r["image"]) for r in rows) == [(str(a), "im0"),
                                                                 (str(b), "im1")]
    saved = tmp_path / "sr" / "bicubic"
    assert sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*.png")) == [
        "imgs#2/x2/im1.png", "imgs/x2/im0.png"]


def test_default_datasets_skip_missing_sets(tmp_path):
    root = make_set(tmp_path / "data", "Set14")
    result = invoke("--model", "bicubic", "--root", root)
    assert result.exit_code == 0, result.output
    assert "skipped: Set5 not found" in result.output and "Set14" in result.output


def test_detail_crop_finds_the_textured_corner():
    hr = np.full((64, 80, 3), 100, np.uint8)
    hr[40:56, 52:68] = np.random.default_rng(0).integers(0, 255, (16, 16, 3))
    y0, x0, h, w = detail_crop(hr)
    assert (h, w) == (16, 16) and abs(y0 - 40) <= 1 and abs(x0 - 52) <= 1


# --- (4) one-line errors ------------------------------------------------------------------

def test_missing_dataset_names_download_command(tmp_path):
    result = invoke("--model", "bicubic", "--root", tmp_path, "--datasets", "set5")
    one_error(result, "Set5 not found", f"srgrad download benchmark --root {tmp_path}")


def test_unreadable_image_names_the_file(tmp_path):
    root = make_set(tmp_path / "data")
    bad = root / "benchmark" / "Set5" / "HR" / "im1.png"
    bad.write_bytes(b"not a png")
    result = invoke("--model", "bicubic", "--root", root, "--datasets", "set5")
    one_error(result, f"{bad}: not an image Pillow can read")


@pytest.mark.parametrize("size", [(1, 1), (14, 30)], ids=["1x1", "under-the-ssim-window"])
def test_an_image_too_small_to_score_names_the_file(tmp_path, size):
    """x2, convention y: SSIM's 11x11 window after a 2-pixel shave needs 16x16 pixels."""
    folder = tmp_path / "photos"
    make_set(tmp_path / "data")
    (tmp_path / "data" / "benchmark" / "Set5" / "HR").rename(folder)
    small = folder / "small.png"
    Image.fromarray(np.zeros(size + (3,), np.uint8)).save(small)
    line = one_error(invoke("--model", "bicubic", "--datasets", folder),
                     "too small to score at x2", "at least 16x16")
    assert line.startswith(f"error: {small}: ")


def test_unwritable_report_is_found_before_any_work(tmp_path, monkeypatch):
    root = make_set(tmp_path / "data")
    monkeypatch.setattr(eval_cmd, "run_eval", lambda *a, **k: pytest.fail("evaluation ran"))
    (tmp_path / "file").write_text("a file, not a folder")
    report = tmp_path / "file" / "r.json"
    result = invoke("--model", "bicubic", "--root", root, "--datasets", "set5",
                    "--report", tmp_path / "ok.md", "--report", report)
    one_error(result, f"--report {report}: output folder {report.parent} cannot be made: "
              f"{report.parent} is a file, so no folder can be made under it")
    (tmp_path / "dir.json").mkdir()
    result = invoke("--model", "bicubic", "--root", root, "--datasets", "set5",
                    "--report", tmp_path / "dir.json")
    one_error(result, f"--report {tmp_path / 'dir.json'} is a folder; name a .json file")


def test_weights_that_do_not_fit_their_config_are_one_line(tmp_path):
    config = model_config("sedsr", 2)
    state = dict(build_model("sedsr", 2).state_dict())
    state["tail.weight"] = state["tail.weight"][:, :16].contiguous()
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad), metadata={"format": FORMAT, "config": json.dumps(config.to_dict())})
    root = make_set(tmp_path / "data")
    result = invoke("--weights", bad, "--root", root, "--datasets", "set5")
    one_error(result, f"{bad} does not match its sedsr config: tensor tail.weight has shape "
                      "[3, 16, 3, 3], the config needs [3, 32, 3, 3]")


def test_unknown_model_suggests_closest():
    one_error(invoke("--model", "sedsr-grd"), "unknown model 'sedsr-grd'",
              "did you mean 'sedsr-grad'?")
    one_error(invoke("--model", "bicubc"), "did you mean 'bicubic'?")


def test_no_weights_for_scale_lists_what_exists(tmp_path, shipped):
    result = invoke("--model", "sedsr-grad,sedsr", "--scale", "3", "--root", tmp_path)
    one_error(result, "no shipped weights for sedsr-grad x3, sedsr x3",
              "(shipped: sedsr-grad x2)")
