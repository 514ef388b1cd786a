"""Every recipe in recipes/ loads, and every run it would start is a valid training config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from srgrad.errors import ConfigError
from srgrad.train.config import check_keys, load_toml, make_config, tomllib
from srgrad.train.study import STUDY_KEYS, load_study

REPO = Path(__file__).resolve().parent.parent
RECIPES = sorted((REPO / "recipes").glob("*.toml"))
TABLES = {"study", "train", "variants"}
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def tables(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def test_there_are_recipes():
    assert len(RECIPES) >= 10


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_has_only_known_tables_and_study_keys(path):
    data = tables(path)
    assert set(data) <= TABLES, f"{path.name}: unknown table(s) {sorted(set(data) - TABLES)}"
    unknown = set(data.get("study", {})) - set(STUDY_KEYS)
    assert not unknown, f"{path.name}: unknown [study] key(s) {sorted(unknown)}"
    if "base" in data.get("study", {}):
        assert (path.parent / data["study"]["base"]).is_file()


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_run_of_the_study_is_a_valid_config(path):
    if "study" not in tables(path):
        pytest.skip("not a study recipe")
    study = load_study(path)
    assert study.baseline in study.variants and study.seeds
    assert study.decision.strip(), "a study states its decision rule (or that it had none)"
    for variant in study.variants:
        for seed in study.seeds:
            config = study.run_config(variant, seed, Path("unused") / f"{variant}_s{seed}")
            make_config({}, check_keys(config, f"{path.name} [variants.{variant}]"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_train_table_alone_is_a_valid_config_for_srgrad_train(path):
    """`srgrad train --config RECIPE` reads the recipe's own [train] table (not its base's)."""
    if "train" not in tables(path):
        pytest.skip("no [train] table of its own (it inherits its base's)")
    make_config(load_toml(path), {})


def test_an_unknown_key_fails(tmp_path):
    source = (REPO / "recipes" / "pair-x2.toml").read_text()
    for table, bad in (("[train]", "[train]\nitrs = 5"),
                       ("[variants.sedsr]", "[variants.sedsr]\nalhpa = 3.0")):
        path = tmp_path / "bad.toml"
        path.write_text(source.replace(table, bad, 1))
        with pytest.raises(ConfigError, match="unknown key"):
            load_study(path)
    path.write_text(source.replace("[train]", "[train]\nitrs = 5", 1))
    with pytest.raises(ConfigError, match="unknown key 'itrs'"):
        load_toml(path)


def test_recipes_cited_in_the_docs_exist():
    cited = {m for doc in DOCS for m in re.findall(r"recipes/[\w.-]+\.toml", doc.read_text())}
    missing = sorted(c for c in cited if not (REPO / c).is_file())
    assert not missing, f"docs cite missing recipes: {missing}"
