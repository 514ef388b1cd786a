"""Odd images in a training folder: a 1x1 image is skipped with the note every image smaller
than a patch gets; a decompression bomb stops the run with one line naming it (srgrad does
not train on a folder it cannot read whole)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srgrad.errors import DataError
from srgrad.train.data import load_training_pairs


def save(path, shape) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, shape, np.uint8)).save(path)


def test_a_1x1_image_is_skipped_with_a_note(tmp_path, capsys):
    save(tmp_path / "ok.png", (40, 40, 3))
    save(tmp_path / "dot.png", (1, 1, 3))
    pairs = load_training_pairs([tmp_path / "dot.png", tmp_path / "ok.png"], 2, 8,
                                tmp_path / "cache", torch.device("cpu"), 1)
    assert [tuple(hr.shape) for _, hr in pairs] == [(3, 40, 40)]
    assert ("warning: skipped 1 image(s) smaller than the 8px LR patch (e.g. dot.png)"
            in capsys.readouterr().err)


def test_a_decompression_bomb_stops_with_one_line(tmp_path, monkeypatch):
    save(tmp_path / "ok.png", (20, 20, 3))
    save(tmp_path / "bomb.png", (40, 40, 3))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 700)  # Pillow's limit, scaled down
    with pytest.raises(DataError) as info:
        load_training_pairs([tmp_path / "ok.png", tmp_path / "bomb.png"], 2, 8,
                            tmp_path / "cache", torch.device("cpu"), 1)
    assert str(info.value).startswith(f"{tmp_path / 'bomb.png'}: 40x40 = 1,600 pixels is over "
                                      "the 700 pixel limit (decompression-bomb guard)")
