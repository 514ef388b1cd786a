"""`srgrad study`: a recipe of variants x seeds runs resumably and reports paired differences."""

from __future__ import annotations

import json

import pytest

from srgrad.cli import app
from srgrad.train.study import load_study, mean_se

from helpers import error_lines, one_error
from test_train import make_images, runner


def recipe(tmp_path, data, baseline="identity") -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(f"""
[study]
name = "tiny"
seeds = [0, 1]
baseline = "{baseline}"
decision = "written first: the gradient variant must win"

[train]
model = "sedsr-grad"
data = [{json.dumps(str(data))}]
val = "holdout:2"
iters = 4
batch = 2
patch = 12
val_every = 2
log_every = 2
ckpt_every = 2
device = "cpu"
cache_dir = {json.dumps(str(tmp_path / "cache"))}

[variants.identity]
model = "sedsr"

[variants.grad]
alpha = 0.0
""")
    return str(path)


@pytest.mark.slow
def test_study_runs_every_variant_and_seed_and_reports_paired_differences(tmp_path):
    data = make_images(tmp_path / "data", count=6, size=(48, 48))
    root, report = tmp_path / "runs", tmp_path / "report.md"
    args = ["study", recipe(tmp_path, data), "--root", str(root), "--report", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("identity_s0", "identity_s1", "grad_s0", "grad_s1"):
        assert (root / "tiny" / name / "model_card.json").exists()
        assert (root / "tiny" / f"{name}.toml").exists()  # the exact recipe of that run
    text = report.read_text()
    assert "written first: the gradient variant must win" in text
    grad = next(line for line in text.splitlines() if line.startswith("| grad |"))
    cells = [c.strip() for c in grad.split("|")]
    assert cells[2].startswith("2 (at 4 it)") and "±" in cells[4]
    assert cells[-2].endswith("%")  # g's share, measured on held-out images
    card = root / "tiny" / "grad_s0" / "model_card.json"
    before = card.stat().st_mtime_ns
    assert runner.invoke(app, args).exit_code == 0  # finished runs are not trained again
    assert card.stat().st_mtime_ns == before
    test_set = make_images(tmp_path / "test-set", count=2, size=(48, 48))
    scored = runner.invoke(app, args + ["--report-only", "--test-sets", str(test_set)])
    assert scored.exit_code == 0, scored.output
    scores = json.loads((root / "tiny" / "grad_s1" / "test_scores.json").read_text())
    assert 10 < scores[str(test_set)]["psnr"] < 60
    row = next(line for line in report.read_text().splitlines()
               if line.startswith("| grad |") and "±" in line and "it)" not in line)
    assert row.count("(") == 1  # one test set: mean (paired difference ± SE)
    when = (root / "tiny" / "grad_s1" / "test_scores.json").stat().st_mtime_ns
    assert runner.invoke(app, args + ["--report-only", "--test-sets", str(test_set)]).exit_code == 0
    assert (root / "tiny" / "grad_s1" / "test_scores.json").stat().st_mtime_ns == when
    one_error(runner.invoke(app, args + ["--report-only", "--test-sets", "set6"]),
              "unknown dataset 'set6'")
    _records_rebuild_the_report_on_a_new_machine(root, args + ["--report-only"], report)


def _records_rebuild_the_report_on_a_new_machine(root, args, report):
    """The committed records (no weights) of a finished study, restored into an empty run
    root, give the same report, g's share included, and no run trains again."""
    import importlib.util
    import shutil
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "sync_study", Path(__file__).parents[1] / "scripts" / "sync_study.py")
    sync_study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync_study)
    assert runner.invoke(app, args).exit_code == 0
    before = report.read_text()
    records = root.parent / "records"
    sync_study.sync(root / "tiny", records)
    assert not list(records.glob("*.safetensors")) and not list(records.glob("*.pt"))
    shutil.rmtree(root)
    sync_study.restore(root / "tiny", records)
    assert runner.invoke(app, args).exit_code == 0
    assert report.read_text() == before
    assert not list((root / "tiny").rglob("*.safetensors"))


def test_recipe_errors_are_one_line(tmp_path):
    data = make_images(tmp_path / "data")
    bad = recipe(tmp_path, data, baseline="nope")
    one_error(runner.invoke(app, ["study", bad, "--report-only"]), "baseline that names one")
    with pytest.raises(Exception, match="unknown key"):
        path = tmp_path / "typo.toml"
        path.write_text(open(recipe(tmp_path, data)).read().replace("iters = 4", "iter = 4"))
        load_study(path)


def test_mean_se_is_the_seed_standard_error():
    mean, se = mean_se([1.0, 2.0, 3.0])
    assert mean == 2.0 and se == pytest.approx(1.0 / 3 ** 0.5)


def test_a_recipe_inherits_its_base_and_equal_time_scales_iterations(tmp_path):
    """`[study] base` inherits train and variants; equal_time_from gives every variant the
    baseline's wall-clock time, from the step times the equal-iteration study logged."""
    from srgrad.train.study import equal_time, run_folder

    data = make_images(tmp_path / "data")
    base = recipe(tmp_path, data)
    child = tmp_path / "equal.toml"
    child.write_text(f'[study]\nbase = "{base}"\nname = "tiny-equal"\n'
                     'equal_time_from = "tiny"\n')
    study = load_study(child)
    assert study.name == "tiny-equal" and set(study.variants) == {"identity", "grad"}
    assert study.train["iters"] == 4 and study.baseline == "identity"
    root = tmp_path / "runs"
    source = load_study(base)
    for variant, ms in (("identity", 100.0), ("grad", 200.0)):
        for seed in source.seeds:
            run = run_folder(root, source, variant, seed)
            run.mkdir(parents=True)
            (run / "metrics.csv").write_text(
                f"step,loss,lr,data_ms,step_ms,val_psnr,val_ssim,gates\n"
                f"2,1,1,1,{ms},30,0.9,\n")
    scaled = replace_iters(study, 1000)
    timed = equal_time(scaled, root)
    assert timed.variants["identity"]["iters"] == 1000
    assert timed.variants["grad"]["iters"] == 500  # twice the step time: half the steps
    with pytest.raises(Exception, match="no step times for"):
        equal_time(scaled, tmp_path / "elsewhere")


def replace_iters(study, iters):
    from dataclasses import replace

    return replace(study, train={**study.train, "iters": iters})


def test_gs_share_is_measured_with_each_variants_own_settings(tmp_path, monkeypatch):
    """An x3 variant of an x2 study is measured on x3 held-out pairs, not x2 ones."""
    from srgrad.train import study as study_mod

    data = make_images(tmp_path / "data")
    text = open(recipe(tmp_path, data)).read().replace("alpha = 0.0", "alpha = 0.0\nscale = 3")
    path = tmp_path / "x3.toml"
    path.write_text(text)
    seen = {}
    monkeypatch.setattr(study_mod, "summarize",
                        lambda run: study_mod.RunSummary(30.0, 100.0, [0.5], 4))
    monkeypatch.setattr(study_mod, "gradient_share", lambda run, train:
                        seen.setdefault(run.name, train.get("scale", 2)) and 0.01)
    for name in ("identity_s0", "grad_s0", "identity_s1"):  # grad_s1 is still running
        (tmp_path / "runs" / "tiny" / name).mkdir(parents=True)
        (tmp_path / "runs" / "tiny" / name / "model_card.json").write_text("{}")
    table = study_mod.study_table(load_study(path), tmp_path / "runs")
    assert seen == {"identity_s0": 2, "grad_s0": 3}
    assert "| grad | 1 (at 4 it)" in table  # only finished runs enter the means


def test_a_recipe_takes_some_of_its_bases_variants_and_refuses_unknown_study_keys(tmp_path):
    data = make_images(tmp_path / "data")
    base = recipe(tmp_path, data)
    child = tmp_path / "child.toml"
    child.write_text(f'[study]\nbase = "{base}"\nname = "child"\nvariants = ["identity"]\n')
    assert list(load_study(child).variants) == ["identity"]
    child.write_text(f'[study]\nbase = "{base}"\nvariants = ["identity", "gradd"]\n')
    with pytest.raises(Exception, match="'gradd', which has no"):
        load_study(child)
    child.write_text(f'[study]\nbase = "{base}"\nseed = [0, 1]\n')
    with pytest.raises(Exception, match="unknown \\[study\\] key 'seed'"):
        load_study(child)


@pytest.mark.slow
def test_test_sets_are_scored_as_each_run_finishes(tmp_path, monkeypatch):
    """A study cut off after its first run (a session's end) keeps that run's scores."""
    import srgrad.train.study as study_mod
    from srgrad.errors import ConfigError

    real = study_mod.run_one

    def cut_off(study, variant, seed, root, threads=1):
        if variant == "grad":
            raise ConfigError("the session ended")
        return real(study, variant, seed, root, threads)

    monkeypatch.setattr(study_mod, "run_one", cut_off)
    data = make_images(tmp_path / "data", count=6, size=(48, 48))
    test_set = make_images(tmp_path / "test-set", count=2, size=(48, 48))
    path = recipe(tmp_path, data).replace("tiny.toml", "one.toml")
    (tmp_path / "one.toml").write_text((tmp_path / "tiny.toml").read_text()
                                       .replace("seeds = [0, 1]", "seeds = [0]"))
    root = tmp_path / "runs"
    result = runner.invoke(app, ["study", path, "--root", str(root), "--test-sets", str(test_set)])
    assert result.exit_code != 0
    scores = json.loads((root / "tiny" / "identity_s0" / "test_scores.json").read_text())
    assert 10 < scores[str(test_set)]["psnr"] < 60


@pytest.mark.slow
def test_a_failed_run_is_one_line_and_the_others_still_run(tmp_path):
    data = make_images(tmp_path / "data", count=6, size=(48, 48))
    text = open(recipe(tmp_path, data)).read().replace("seeds = [0, 1]", "seeds = [0]")
    path = tmp_path / "broken.toml"
    path.write_text(text.replace("alpha = 0.0", 'alpha = 0.0\ndata = ["/no/such/folder"]'))
    root, report = tmp_path / "runs", tmp_path / "r.md"
    result = runner.invoke(app, ["study", str(path), "--root", str(root), "--report", str(report)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    log = root / "tiny" / "grad_s0.log"
    assert (f"failed: grad seed 0: training data folder /no/such/folder does not exist; --data "
            f"takes folders (exit 2; its log: {log})") in result.output
    assert error_lines(result.output) == [
        "error: 1 run(s) failed (the failed: lines above); the report covers the others; fix "
        "the cause and run the same command again"]
    assert (root / "tiny" / "identity_s0" / "model_card.json").exists()
    assert "| identity | 1 (at 4 it)" in report.read_text()


def test_gs_share_fills_in_the_default_data_folder(tmp_path, monkeypatch):
    """A recipe may leave data to its default (datasets/train); the share is measured there."""
    import shutil

    from srgrad.models.weights import shipped_weights_path
    from srgrad.train.study import gradient_share

    monkeypatch.chdir(tmp_path)
    make_images(tmp_path / "datasets" / "train", count=4, size=(48, 48))
    run = tmp_path / "run"
    run.mkdir()
    (run / "model_card.json").write_text("{}")
    shutil.copy(shipped_weights_path("sedsr-grad", 2), run / "sedsr-grad_x2.safetensors")
    share = gradient_share(run, {"model": "sedsr-grad", "val": "holdout:2"}, images=1)
    assert 0 < share < 0.01  # the shipped unit-norm g at alpha -3: about 0.05% of the skip


def test_one_seed_reports_means_without_a_nan_standard_error(tmp_path):
    from srgrad.train.study import Study, run_folder, study_table

    study = Study("one", [0], "identity", "rule", {"model": "sedsr"},
                  {"identity": {}, "grad": {"model": "sedsr-grad"}})
    for variant, psnr in (("identity", 32.175), ("grad", 31.907)):
        run = run_folder(tmp_path, study, variant, 0)
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text(f"step,step_ms,val_psnr,gates\n1000,10,{psnr},\n")
        (run / "model_card.json").write_text("{}")
    table = study_table(study, tmp_path)
    assert "nan" not in table
    assert "| grad | 1 (at 1000 it) | 31.907 | -0.268 |" in table


def test_controls_add_each_variants_paired_difference_to_its_own_control(tmp_path):
    from srgrad.train.study import Study, run_folder, study_table
    from srgrad.train.study_scores import scores_table

    study = Study("c", [0, 1], "identity", "rule", {"model": "sedsr"},
                  {"identity": {}, "scaled": {"model": "sedsr-scaled"},
                   "grad": {"model": "sedsr-grad"}}, controls={"grad": "scaled"})
    held_out = {"identity": (32.0, 32.1), "scaled": (31.8, 31.9), "grad": (31.81, 31.93)}
    for variant, scores in held_out.items():
        for seed, psnr in enumerate(scores):
            run = run_folder(tmp_path, study, variant, seed)
            run.mkdir(parents=True)
            (run / "metrics.csv").write_text(f"step,step_ms,val_psnr,gates\n9,10,{psnr},\n")
            (run / "model_card.json").write_text("{}")
            (run / "test_scores.json").write_text(json.dumps({"set5": {"psnr": psnr + 3}}))
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in study_table(study, tmp_path).splitlines() if line.startswith("| ")}
    assert rows["variant"][4] == "minus its control (paired)"
    assert rows["grad"][3] == "-0.180 ± 0.010"  # minus identity, paired by seed
    assert rows["grad"][4] == "+0.020 ± 0.010 (vs scaled)"
    assert rows["scaled"][4] == "" and rows["identity"][4] == ""
    tests = scores_table(study, tmp_path, ["set5"]).splitlines()
    assert "| grad | 34.870 (-0.180 ± 0.010; +0.020 ± 0.010 vs scaled) |" in tests
    assert "| scaled | 34.850 (-0.200 ± 0.000) |" in tests


def test_controls_name_variants_of_the_recipe(tmp_path):
    data = make_images(tmp_path / "data")
    text = open(recipe(tmp_path, data)).read()
    path = tmp_path / "controls.toml"
    path.write_text(text.replace('[study]\n', '[study]\ncontrols = { grad = "identity" }\n'))
    assert load_study(path).controls == {"grad": "identity"}
    child = tmp_path / "child.toml"
    child.write_text(f'[study]\nbase = "{path}"\nvariants = ["grad"]\nbaseline = "grad"\n')
    assert load_study(child).controls == {}  # the control is not run: no pair to report
    path.write_text(text.replace('[study]\n', '[study]\ncontrols = { grad = "scaled" }\n'))
    with pytest.raises(Exception, match="controls names 'scaled', which has no"):
        load_study(path)


@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("seeds = [0, 1]", "seeds = []", "[study] seeds must be a list of distinct"),
        ("seeds = [0, 1]", 'seeds = "0"', "[study] seeds must be a list of distinct"),
        ("seeds = [0, 1]", "seeds = [1, 1]", "[study] seeds must be a list of distinct"),
        ("seeds = [0, 1]", "seeds = [[0], [1]]", "[study] seeds must be a list of distinct"),
        ('name = "tiny"', 'name = "../escape"', "[study] name must be a plain folder name"),
        ('val = "holdout:2"', 'val = "none"', "validates on nothing"),
        ('val = "holdout:2"', 'val = "set5"', "validates on set5"),
        ("alpha = 0.0", 'alpha = "x"', "variant 'grad': --alpha (alpha in a TOML file) must be"),
        ("alpha = 0.0", "seed = 5", "[variants.grad]: seed is set by the study"),
        ("iters = 4", 'out = "elsewhere"', "[train]: out is set by the study"),
        ('[variants.identity]\nmodel = "sedsr"', "[variants]\nidentity = 3",
         "[variants.identity]: must be a table"),
        ('baseline = "identity"', 'baseline = ["identity"]',
         "[study] baseline must be a variant name, got ['identity']"),
        ('name = "tiny"', 'controls = "grad"', "[study] controls must be a table of variant"),
        ('name = "tiny"', "controls = { grad = 1 }", "[study] controls must be a table"),
        ('name = "tiny"', 'variants = "grad"', "[study] variants must be a list of variant"),
        ('name = "tiny"', "base = 3", "[study] base must be a recipe file name"),
        ('[study]\nname = "tiny"', 'study = 3\n[x]\nname = "tiny"', "study must be a table"),
    ],
)
def test_a_recipe_the_study_cannot_run_as_written_is_one_line(tmp_path, old, new, expected):
    data = make_images(tmp_path / "data")
    text = open(recipe(tmp_path, data)).read()
    assert old in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(old, new))
    one_error(runner.invoke(app, ["study", str(bad), "--root", str(tmp_path / "runs"),
                                  "--report-only"]), expected)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "escape").exists()


def test_unusable_root_report_and_jobs_are_refused_before_any_run(tmp_path):
    data = make_images(tmp_path / "data")
    path = recipe(tmp_path, data)
    a_file = tmp_path / "a.md"
    a_file.write_text("x")
    root = ["--root", str(tmp_path / "runs")]
    one_error(runner.invoke(app, ["study", path, "--root", str(a_file)]), "--root folder")
    one_error(runner.invoke(app, ["study", path, *root, "--report", f"{a_file}/r.md"]),
              f"--report {a_file}/r.md")
    one_error(runner.invoke(app, ["study", path, *root, "--report", "r.json"]), "use .md")
    assert runner.invoke(app, ["study", path, *root, "--jobs", "0"]).exit_code == 2
    assert not list((tmp_path / "runs").glob("*/*"))
