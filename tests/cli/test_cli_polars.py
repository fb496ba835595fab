"""Plane + crossed polars through the CLI, end to end, on small crops of
``../shared/data/polarised-sandstones`` (GPL-3.0 data: read from there,
never copied into the package; skipped when absent)."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from test_cli import assert_bad_input, thinseg

POLARISED = Path(__file__).parents[3] / "shared/data/polarised-sandstones"
FIELDS = ("2a", "4a", "9b")


@pytest.fixture(scope="module")
def polars_dataset(tmp_path_factory):
    """keras-segmentation folders of 96 x 128 crops of three fields, their
    crossed-polarised twins in images_xpl_prepped_train/."""
    if not POLARISED.is_dir():
        pytest.skip(f"{POLARISED} is absent (../shared not checked out)")
    root = tmp_path_factory.mktemp("polars")
    folders = {
        "ppl": root / "images_prepped_train",
        "xpl": root / "images_xpl_prepped_train",
        "annotations": root / "annotations_prepped_train",
    }
    for folder in folders.values():
        folder.mkdir()
    window = np.s_[400:496, 600:728]
    for name in FIELDS:
        for kind in ("ppl", "xpl"):
            image = iio.imread(POLARISED / kind / f"{name}.jpg")[window]
            iio.imwrite(folders[kind] / f"{name}.png", image)
        labels = iio.imread(POLARISED / "annotations" / f"{name}.png")
        iio.imwrite(folders["annotations"] / f"{name}.png", labels[window])
    return root, folders


@pytest.fixture(scope="module")
def polars_model(polars_dataset):
    root, folders = polars_dataset
    proc = thinseg(
        "train",
        f"--train_images={folders['ppl']}",
        f"--train_xpl_images={folders['xpl']}",
        f"--train_annotations={folders['annotations']}",
        "--checkpoints_path=polars/m",
        "--n_classes=6",
        "--base=default",
        "--input_height=64",
        "--input_width=64",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--batch_size=2",
        "--optimizer_name=adam",
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    assert "input widened from 3 to 6 channels" in proc.stdout
    return root / "polars" / "m"


def test_train_writes_a_six_channel_model(polars_model):
    config = json.loads(Path(f"{polars_model}_config.json").read_text())
    assert config["input_channels"] == 6
    assert config["trained_on"]["transfer"]["from_channels"] == 3


def test_predict_and_evaluate_with_crossed_polars(
    polars_dataset, polars_model, tmp_path
):
    root, folders = polars_dataset
    out = tmp_path / "labels"
    proc = thinseg(
        "predict",
        f"--checkpoints_path={polars_model}",
        f"--input_path={folders['ppl']}",
        f"--xpl_input_path={folders['xpl']}",
        f"--output_path={out}",
    )
    assert proc.returncode == 0, proc.stderr
    labels = iio.imread(out / "2a.png")
    assert labels.shape == (96, 128) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= set(range(6))
    proc = thinseg(
        "evaluate_model",
        f"--checkpoints_path={polars_model}",
        f"--images_path={folders['ppl']}",
        f"--xpl_images_path={folders['xpl']}",
        f"--segs_path={folders['annotations']}",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert 0.0 <= metrics["full_resolution"]["pixel_accuracy"] <= 1.0
    proc = thinseg(
        "verify_dataset",
        f"--images_path={folders['ppl']}",
        f"--xpl_images_path={folders['xpl']}",
        f"--segs_path={folders['annotations']}",
        "--n_classes=6",
    )
    assert proc.returncode == 0 and "3 pairs" in proc.stdout


def test_polars_input_mistakes_are_one_line(
    polars_dataset, polars_model, tmp_path
):
    root, folders = polars_dataset
    proc = thinseg(
        "predict",
        f"--checkpoints_path={polars_model}",
        f"--input_path={folders['ppl']}",
        f"--output_path={tmp_path / 'a'}",
    )
    assert_bad_input(proc, "--xpl_input_path")
    proc = thinseg(
        "predict",
        f"--input_path={folders['ppl']}",
        f"--xpl_input_path={folders['xpl']}",
        f"--output_path={tmp_path / 'b'}",
    )
    assert_bad_input(proc, "RGB photos only")
    lonely = tmp_path / "xpl"
    lonely.mkdir()
    iio.imwrite(lonely / "other.png", np.zeros((96, 128, 3), np.uint8))
    proc = thinseg(
        "predict",
        f"--checkpoints_path={polars_model}",
        f"--input_path={folders['ppl']}",
        f"--xpl_input_path={lonely}",
        f"--output_path={tmp_path / 'c'}",
    )
    assert_bad_input(proc, "2a.png", "no crossed-polarised image")
    assert not (tmp_path / "c").exists()
