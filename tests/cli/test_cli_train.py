"""``thinseg train / predict / evaluate_model / verify_dataset`` as a
keras-segmentation user types them (tiny sizes)."""

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from test_cli import assert_bad_input, thinseg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny dataset and a model trained on it with the seed's command."""
    root = tmp_path_factory.mktemp("kseg")
    proc = thinseg(
        "synth",
        "--out",
        root / "dataset1",
        "-n",
        "2",
        "--size",
        "64x96",
        "--scheme",
        "seed",
    )
    assert proc.returncode == 0, proc.stderr
    ds = root / "dataset1"
    proc = thinseg(
        "train",
        "--checkpoints_path=weights/vgg_unet_1",
        "--train_images=dataset1/images_prepped_train/",
        "--train_annotations=dataset1/annotations_prepped_train/",
        "--n_classes=6",
        "--epoch=1",
        "--input_height=64",
        "--input_width=96",
        "--model_name=vgg_unet",
        "--steps_per_epoch=2",
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    return root, ds, root / "weights" / "vgg_unet_1"


def test_seed_train_command_writes_checkpoints(trained):
    root, _, prefix = trained
    config = json.loads(
        (root / "weights" / "vgg_unet_1_config.json").read_text()
    )
    assert config["model_class"] == "vgg_unet"
    assert (
        config["n_classes"],
        config["input_height"],
        config["input_width"],
    ) == (6, 64, 96)
    assert (config["output_height"], config["output_width"]) == (32, 48)
    assert (root / "weights" / "vgg_unet_1.0").is_file()


def test_resume_and_refuse(trained, tmp_path):
    root, ds, prefix = trained
    args = [
        "train",
        "--checkpoints_path",
        prefix,
        "--train_images",
        ds / "images_prepped_train",
        "--train_annotations",
        ds / "annotations_prepped_train",
        "--n_classes",
        "6",
        "--input_height",
        "64",
        "--input_width",
        "96",
        "--steps_per_epoch",
        "1",
    ]
    assert_bad_input(thinseg(*args, "--epochs", "2"), "already exist")
    proc = thinseg(
        *args,
        "--epochs",
        "2",
        "--auto_resume_checkpoint",
        "--optimizer_name",
        "adam",
        "--do_augment",
    )
    assert proc.returncode == 0, proc.stderr
    assert "epoch 1" in proc.stdout
    assert (prefix.parent / "vgg_unet_1.1").is_file()


def test_predict_file_and_folder(trained, tmp_path):
    _, ds, prefix = trained
    image = ds / "images_prepped_train" / "synth_0000.png"
    out = tmp_path / "one.png"
    proc = thinseg(
        "predict",
        "--checkpoints_path",
        prefix,
        "--input_path",
        image,
        "--output_path",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    labels = iio.imread(out)
    assert labels.dtype == np.uint8 and labels.shape == (64, 96)
    assert labels.max() <= 5
    assert "note:" not in proc.stdout
    # the same photo as 12-bit data in a 16-bit TIFF: the same labels, and
    # a note of the scaling (issue 12: it was a black image)
    import tifffile

    twelve = tmp_path / "twelve.tif"
    rgb = iio.imread(image)[..., :3].astype(np.uint16)
    tifffile.imwrite(twelve, rgb * 16 + rgb // 16)  # 0..4095 for 0..255
    proc = thinseg(
        "predict",
        "--checkpoints_path",
        prefix,
        "--input_path",
        twelve,
        "--output_path",
        tmp_path / "twelve.png",
    )
    assert proc.returncode == 0, proc.stderr
    assert "note: twelve.tif: 12-bit data in a 16-bit image" in proc.stdout
    assert np.array_equal(iio.imread(tmp_path / "twelve.png"), labels)
    proc = thinseg(
        "predict",
        "--checkpoints_path",
        prefix,
        "--input_path",
        ds / "images_prepped_train",
        "--output_path",
        tmp_path / "many",
        "--colored",
        "--mode",
        "resize",
    )
    assert proc.returncode == 0, proc.stderr
    colored = iio.imread(tmp_path / "many" / "synth_0001.png")
    assert colored.shape == (64, 96, 3)
    assert_bad_input(
        thinseg(
            "predict",
            "--checkpoints_path",
            prefix,
            "--input_path",
            image,
            "--output_path",
            out,
        ),
        "already exists",
    )


def test_evaluate_model_prints_keras_segmentation_keys(trained):
    _, ds, prefix = trained
    proc = thinseg(
        "evaluate_model",
        "--checkpoints_path",
        prefix,
        "--images_path",
        ds / "images_prepped_train",
        "--segs_path",
        ds / "annotations_prepped_train",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {
        "frequency_weighted_IU",
        "mean_IU",
        "class_wise_IU",
        "full_resolution",
    } <= set(result)
    assert len(result["class_wise_IU"]) == 6
    full = result["full_resolution"]
    assert 0 <= full["pixel_accuracy"] <= 1
    assert np.array(full["confusion_matrix"]).sum() == 2 * 64 * 96


def test_verify_dataset(trained):
    _, ds, _ = trained
    args = [
        "verify_dataset",
        "--images_path",
        ds / "images_prepped_train",
        "--segs_path",
        ds / "annotations_prepped_train",
    ]
    proc = thinseg(*args, "--n_classes", "6")
    assert proc.returncode == 0 and "verified" in proc.stdout
    assert_bad_input(thinseg(*args, "--n_classes", "3"), ">= n_classes")


def test_model_command_bad_inputs(trained, tmp_path):
    _, ds, prefix = trained
    image = ds / "images_prepped_train" / "synth_0000.png"
    assert_bad_input(
        thinseg(
            "predict",
            "--checkpoints_path",
            tmp_path / "nothing",
            "--input_path",
            image,
            "--output_path",
            tmp_path / "o.png",
        ),
        "no such checkpoint config",
    )
    assert_bad_input(
        thinseg(
            "train",
            "--model_name",
            "pspnet_50",
            "--train_images",
            ds / "images_prepped_train",
            "--train_annotations",
            ds / "annotations_prepped_train",
            "--n_classes",
            "6",
        ),
        "pspnet_50",
    )
    (tmp_path / "imgs").mkdir()
    (tmp_path / "anns").mkdir()
    iio.imwrite(tmp_path / "imgs" / "a.png", np.zeros((8, 8, 3), np.uint8))
    assert_bad_input(
        thinseg(
            "train",
            "--train_images",
            tmp_path / "imgs",
            "--train_annotations",
            tmp_path / "anns",
            "--n_classes",
            "6",
            "--input_height",
            "64",
            "--input_width",
            "64",
        ),
        "a.png",
        "no annotation",
    )
    assert_bad_input(
        thinseg(
            "train",
            "--train_images",
            ds / "images_prepped_train",
            "--train_annotations",
            ds / "annotations_prepped_train",
            "--input_height",
            "100",
        ),
        "multiple of 32",
    )


def test_tile_and_precision_options(trained, tmp_path):
    """``--tile`` and ``--precision`` reach the prediction: the file is
    what the Python API gives with the same options."""
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.model.checkpoints import load_model
    from napari_thinseg.progress import run

    _, ds, prefix = trained
    image = ds / "images_prepped_train" / "synth_0000.png"
    out = tmp_path / "t.png"
    args = ["--checkpoints_path", prefix, "--input_path", image]
    proc = thinseg(
        "predict",
        *args,
        "--output_path",
        out,
        "--tile",
        "64x64",
        "--precision",
        "float32",
    )
    assert proc.returncode == 0, proc.stderr
    model, config, _ = load_model(prefix)
    expected = run(
        predict_image(
            model,
            config,
            iio.imread(image),
            tile=(64, 64),
            precision="float32",
        )
    ).labels
    np.testing.assert_array_equal(iio.imread(out), expected)
    assert_bad_input(
        thinseg("predict", *args, "--output_path", out, "--tile", "100"),
        "tile 100",
        "multiple of 32",
    )
    assert_bad_input(
        thinseg("predict", *args, "--output_path", out, "--precision", "f8"),
        "invalid choice",
    )
    assert_bad_input(
        thinseg("predict", *args, "--output_path", out, "--tile", "big"),
        "give N or HxW",
    )
    proc = thinseg(
        "evaluate_model",
        "--checkpoints_path",
        prefix,
        "--images_path",
        ds / "images_prepped_train",
        "--segs_path",
        ds / "annotations_prepped_train",
        "--tile",
        "64",
        "--precision",
        "bfloat16",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["full_resolution"]["pixel_accuracy"] >= 0


def test_train_precision_option(trained, tmp_path):
    _, ds, _ = trained
    proc = thinseg(
        "train",
        "--checkpoints_path",
        tmp_path / "f32",
        "--train_images",
        ds / "images_prepped_train",
        "--train_annotations",
        ds / "annotations_prepped_train",
        "--n_classes=6",
        "--epochs=1",
        "--input_height=32",
        "--input_width=32",
        "--steps_per_epoch=1",
        "--precision",
        "float32",
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "f32_config.json").read_text())
    assert config["trained_on"]["precision"] == "float32"


def test_predict_folder_with_a_bad_file_keeps_what_came_before(
    trained, tmp_path
):
    """Photos are read one ahead of the network and labels written behind
    it: a broken file is still one line (exit 2), and the labels of the
    photos before it are on disk, complete."""
    _, ds, prefix = trained
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a", "c"):
        src = ds / "images_prepped_train" / "synth_0000.png"
        (folder / f"{name}.png").write_bytes(src.read_bytes())
    (folder / "b.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "labels"
    proc = thinseg(
        "predict",
        "--checkpoints_path",
        prefix,
        "--input_path",
        folder,
        "--output_path",
        out,
    )
    assert_bad_input(proc, "b.png")
    labels = iio.imread(out / "a.png")
    assert labels.shape == (64, 96) and labels.max() <= 5
    assert not (out / "b.png").exists() and not (out / "c.png").exists()


def test_tta_option(trained, tmp_path):
    """``--tta`` reaches the prediction (and is refused in resize
    mode)."""
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.model.checkpoints import load_model
    from napari_thinseg.progress import run

    _, ds, prefix = trained
    image = ds / "images_prepped_train" / "synth_0000.png"
    out = tmp_path / "tta.png"
    args = ["--checkpoints_path", prefix, "--input_path", image]
    proc = thinseg("predict", *args, "--output_path", out, "--tta")
    assert proc.returncode == 0, proc.stderr
    model, config, _ = load_model(prefix)
    expected = run(predict_image(model, config, iio.imread(image), tta=True))
    np.testing.assert_array_equal(iio.imread(out), expected.labels)
    assert_bad_input(
        thinseg(
            "predict",
            *args,
            "--output_path",
            tmp_path / "r.png",
            "--mode",
            "resize",
            "--tta",
        ),
        "tile mode",
    )


def test_recipe_and_transfer_options(trained, tmp_path):
    """The recipe's flags reach training, and ``--base`` with other
    classes transfers (it used to be refused)."""
    root, ds, prefix = trained
    data = [
        f"--train_images={ds / 'images_prepped_train'}",
        f"--train_annotations={ds / 'annotations_prepped_train'}",
        "--epochs=2",
        "--steps_per_epoch=1",
        "--input_height=64",
        "--input_width=96",
    ]
    out = tmp_path / "recipe"
    proc = thinseg(
        "train",
        f"--checkpoints_path={out}",
        *data,
        "--validate",
        f"--val_images={ds / 'images_prepped_train'}",
        f"--val_annotations={ds / 'annotations_prepped_train'}",
        "--balance_classes",
        "--schedule=cosine",
        "--patience=1",
        "--average_weights=0.99",
    )
    assert proc.returncode == 0, proc.stderr
    trained_on = json.loads(Path(f"{out}_config.json").read_text())[
        "trained_on"
    ]
    assert trained_on["schedule"] == "cosine"
    assert trained_on["balance_classes"] is True
    assert len(trained_on["class_weights"]) == 6
    assert trained_on["average_weights"] == 0.99
    assert_bad_input(
        thinseg("train", f"--checkpoints_path={out}2", *data, "--patience=0"),
        "patience",
    )
    assert_bad_input(
        thinseg(
            "train", f"--checkpoints_path={out}2", *data, "--average_weights=1"
        ),
        "weight averaging takes a momentum",
    )
    proc = thinseg(
        "train",
        f"--checkpoints_path={tmp_path / 'more'}",
        *data,
        f"--base={prefix}",
        "--n_classes=8",
        "--freeze_blocks=2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "started from" in proc.stdout
    assert "kept the output weights of" in proc.stdout
    config = json.loads((tmp_path / "more_config.json").read_text())
    assert config["n_classes"] == 8
    # crop_size: the sides given win over the base model's (the Train tab's
    # rule too)
    assert (config["input_height"], config["input_width"]) == (64, 96)
    assert config["trained_on"]["transfer"]["from_classes"] == 6
    assert config["trained_on"]["frozen_blocks"] == 2
    # frozen random weights, or more blocks than the encoder has
    fresh = f"--checkpoints_path={tmp_path / 'frozen'}"
    assert_bad_input(
        thinseg("train", fresh, *data, "--freeze_blocks=2"),
        "frozen encoder blocks keep the weights",
    )
    assert_bad_input(
        thinseg(
            "train", fresh, *data, f"--base={prefix}", "--freeze_blocks=5"
        ),
        "frozen blocks must be 0 to 4",
    )
    assert not list(tmp_path.glob("frozen*"))


def test_model_option_selects_a_shipped_model(tmp_path, sandstone_model):
    """``--model sandstone`` predicts with the shipped mineral model:
    the file is what the Python API gives with it."""
    from napari_thinseg._napari.sample_data import SEED_SAMPLE
    from napari_thinseg.imaging.files import read_image
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.progress import run
    from napari_thinseg.schemes import SANDSTONE

    out = tmp_path / "minerals.png"
    args = ["--input_path", SEED_SAMPLE, "--output_path", out]
    proc = thinseg("predict", "--model", "sandstone", *args)
    assert proc.returncode == 0, proc.stderr
    assert "thinseg_sandstone" in proc.stdout
    model, config, _ = ck.load_model(ck.shipped_model_prefix("sandstone"))
    assert config.class_scheme == SANDSTONE
    image = read_image(SEED_SAMPLE)
    expected = run(predict_image(model, config, image)).labels
    np.testing.assert_array_equal(iio.imread(out), expected)
    assert_bad_input(
        thinseg("predict", "--model", "granite", *args), "invalid choice"
    )
    assert_bad_input(
        thinseg(
            "predict",
            "--model",
            "default",
            "--checkpoints_path",
            tmp_path / "m",
            *args,
        ),
        "not both",
    )


def test_minutes_propose_sizes_and_given_flags_win(trained, tmp_path):
    _, ds, _ = trained
    data = [
        f"--train_images={ds / 'images_prepped_train'}",
        f"--train_annotations={ds / 'annotations_prepped_train'}",
    ]
    out = tmp_path / "budget"
    proc = thinseg(
        "train",
        f"--checkpoints_path={out}",
        *data,
        "--minutes=0.5",
        "--batch_size=1",
        # given, so that an epoch ends within the budget on a busy machine
        # (a run stopped before its first epoch keeps no config)
        "--steps_per_epoch=2",
        "--epochs=1",
    )
    assert proc.returncode == 0, proc.stderr
    # 64 x 96 images: 64-pixel crops proposed; the flags given win
    assert "for 0.5 min:" in proc.stdout and "64x64" in proc.stdout
    config = json.loads(Path(f"{out}_config.json").read_text())
    assert (config["input_height"], config["input_width"]) == (64, 64)
    assert config["trained_on"]["batch_size"] == 1
    assert config["trained_on"]["steps_per_epoch"] == 2
    assert_bad_input(
        thinseg("train", f"--checkpoints_path={out}2", *data, "--minutes=0"),
        "--minutes",
    )


def test_train_from_a_base_on_strokes_fine_tunes_and_judges(tmp_path):
    """``--base`` and labels that are strokes: the fine-tune that keeps
    the model's view of unpainted pixels, judged on held-out strokes;
    the verdict printed and in the config."""
    from napari_thinseg._napari.sample_data import SEED_SAMPLE

    photo = iio.imread(SEED_SAMPLE)[:128, :160, :3]
    images, strokes = tmp_path / "images", tmp_path / "strokes"
    images.mkdir()
    strokes.mkdir()
    for k in range(2):
        iio.imwrite(images / f"p{k}.png", photo[:, ::-1] if k else photo)
        lab = np.zeros(photo.shape[:2], np.uint8)
        for j in range(3):  # three strokes of two classes a photo
            lab[10 + 40 * j : 16 + 40 * j, 10:40] = 5
            lab[10 + 40 * j : 16 + 40 * j, 100:130] = 3
        iio.imwrite(strokes / f"p{k}.png", lab)
    out = tmp_path / "tuned"
    proc = thinseg(
        "train",
        f"--train_images={images}",
        f"--train_annotations={strokes}",
        "--base=default",
        f"--checkpoints_path={out}",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--input_height=64",
        "--input_width=64",
    )
    assert proc.returncode == 0, proc.stderr
    assert "fine-tuning default on the strokes" in proc.stdout
    assert "held-out strokes: " in proc.stdout and " agree; kept the " in (
        proc.stdout
    )
    trained_on = json.loads(Path(f"{out}_config.json").read_text())[
        "trained_on"
    ]
    assert trained_on["optimizer"] == "adam" and trained_on["distill"] > 0
    held = trained_on["held_out"]
    assert held["kept"] in ("start", "fine-tuned")
    assert held["pixels"] > 0 and set(held["start"]["per_class"]) == {"3", "5"}
    assert Path(f"{out}.0").exists()
    # the strokes' forest teaches where it is sure, by default: recorded
    assert trained_on["forest_share"] == 0.5
    assert trained_on["forest_confidence"] == 0.8
    # --forest_share 0 trains on the start model's view alone; a share
    # past 1 is refused in one line (the recipe's rule)
    proc = thinseg(
        "train",
        f"--train_images={images}",
        f"--train_annotations={strokes}",
        "--base=default",
        f"--checkpoints_path={tmp_path / 'forest'}",
        "--epochs=1",
        "--steps_per_epoch=2",
        "--input_height=64",
        "--input_width=64",
        "--forest_share=0",
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "forest_config.json").read_text())
    assert "forest_share" not in config["trained_on"]
    assert_bad_input(
        thinseg(
            "train",
            f"--train_images={images}",
            f"--train_annotations={strokes}",
            "--base=default",
            f"--checkpoints_path={tmp_path / 'bad'}",
            "--forest_share=2",
        ),
        "forest_share must be 0 to 1",
    )
    # without a model to start from there is no fine-tune to teach
    assert_bad_input(
        thinseg(
            "train",
            f"--train_images={images}",
            f"--train_annotations={strokes}",
            f"--checkpoints_path={tmp_path / 'new'}",
            "--forest_confidence=0.5",
        ),
        "--forest_confidence is for a fine-tune from strokes",
    )
