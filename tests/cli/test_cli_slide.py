"""``thinseg predict`` / ``stats`` for whole slides and on clusters (the
labels compared with the default model's, predicted in this process)."""

import numpy as np
import pytest
import tifffile
from _slides import slide_file
from test_cli import assert_bad_input, thinseg

from napari_thinseg.imaging.files import read_annotation, write_annotation
from napari_thinseg.imaging.lazy import open_lazy, read_region
from napari_thinseg.imaging.pyramid import open_levels, thinseg_attrs
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.progress import run


@pytest.fixture
def slide(tmp_path):
    path, image = slide_file(tmp_path)
    # the scan records its pixel size: the labels keep it
    tifffile.imwrite(
        path,
        image,
        tile=(128, 128),
        photometric="rgb",
        resolution=(1e4 / 1.6, 1e4 / 1.6),
        resolutionunit="CENTIMETER",
    )
    return path, image


def test_a_slide_goes_into_an_ome_zarr_and_a_bigtiff(
    slide, tmp_path, default_model
):
    path, image = slide
    model, config = default_model
    flat = run(predict_image(model, config, image, tile=256)).labels
    zarr_out = tmp_path / "labels.ome.zarr"
    tif_out = tmp_path / "labels.tif"
    for out in (zarr_out, tif_out):
        proc = thinseg(
            "predict",
            "--input_path",
            path,
            "--output_path",
            out,
            "--tile",
            "256",
        )
        assert proc.returncode == 0, proc.stderr
        assert "tiles" in proc.stdout and str(out) in proc.stdout
    np.testing.assert_array_equal(open_levels(zarr_out)[0][:], flat)
    assert thinseg_attrs(zarr_out)["class_scheme"]["name"] == "seed"
    tiff = open_lazy(tif_out)
    np.testing.assert_array_equal(read_region(tiff.data), flat)
    assert len(tiff.levels) == len(open_levels(zarr_out))
    assert tiff.pixel_size_um == pytest.approx(1.6)
    assert open_lazy(zarr_out).pixel_size_um == pytest.approx(1.6)
    assert not list(tmp_path.glob("*.partial"))
    # stats reads the pyramid a block at a time, with its pixel size, as
    # it reads the same labels from a PNG
    png = write_annotation(tmp_path / "labels.png", flat, pixel_size_um=1.6)
    proc = thinseg(
        "stats", zarr_out, png, "--no_sizes", "--csv", tmp_path / "s.csv"
    )
    assert proc.returncode == 0, proc.stderr
    rows = (tmp_path / "s.csv").read_text().splitlines()
    assert rows[1].split(",")[2:6] == rows[2].split(",")[2:6]
    assert rows[1].split(",")[3] == "1.6"


def test_photos_on_two_workers_get_the_labels_of_one_process(
    tmp_path, default_model
):
    from napari_thinseg.dataset.synth import synthetic_sandstone
    from napari_thinseg.imaging.files import read_image, write_png

    model, config = default_model
    photos = tmp_path / "photos"
    for k in range(3):
        image, _ = synthetic_sandstone((200, 260), seed=k)
        write_png(photos / f"p{k}.png", image)
    there = tmp_path / "there"
    proc = thinseg(
        "predict",
        "--input_path",
        photos,
        "--output_path",
        there,
        "--workers",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    for k in range(3):
        image = read_image(photos / f"p{k}.png")
        np.testing.assert_array_equal(
            read_annotation(there / f"p{k}.png"),
            run(predict_image(model, config, image)).labels,
        )
    # one photo on the cluster: its tiles as tasks
    one = tmp_path / "one.png"
    proc = thinseg(
        "predict",
        "--input_path",
        photos / "p1.png",
        "--output_path",
        one,
        "--workers",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "on 2 workers" in proc.stdout
    np.testing.assert_array_equal(
        read_annotation(one), read_annotation(there / "p1.png")
    )
    csv = {}
    for name, extra in (("a", ("--workers", "2")), ("b", ())):
        csv[name] = tmp_path / f"{name}.csv"
        proc = thinseg(
            "stats", there, "--no_sizes", "--csv", csv[name], *extra
        )
        assert proc.returncode == 0, proc.stderr
    assert csv["a"].read_text() == csv["b"].read_text()


def test_slide_refusals_are_one_line(slide, tmp_path):
    path, _ = slide
    out = tmp_path / "labels.ome.zarr"
    assert_bad_input(
        thinseg(
            "predict",
            "--input_path",
            path,
            "--output_path",
            out,
            "--colored",
        ),
        "--colored writes PNGs",
    )
    assert_bad_input(
        thinseg("predict", "--input_path", tmp_path, "--output_path", out),
        "takes one image",
    )
    assert_bad_input(
        thinseg(
            "predict",
            "--input_path",
            path,
            "--output_path",
            out,
            "--workers",
            "2",
            "--scheduler",
            "tcp://x:1",
        ),
        "not allowed with",
    )
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert_bad_input(
        thinseg("predict", "--input_path", path, "--output_path", out),
        "already exists",
    )
    assert (out / "keep.txt").read_text() == "mine"
    # the Whole slide tab's rule (imaging.pyramid.check_slide_output)
    before = path.read_bytes()
    assert_bad_input(
        thinseg(
            "predict",
            "--input_path",
            path,
            "--output_path",
            path,
            "--overwrite",
        ),
        "that is the slide itself",
    )
    assert path.read_bytes() == before


def test_a_folder_run_resumes_skipping_the_label_files_written(
    tmp_path, default_model, capsys
):
    from napari_thinseg.cli import main
    from napari_thinseg.dataset.synth import synthetic_sandstone
    from napari_thinseg.imaging.files import write_png

    photos, out = tmp_path / "photos", tmp_path / "labels"
    for k in range(3):
        write_png(photos / f"p{k}.png", synthetic_sandstone((64, 96), k)[0])
    args = ["predict", "--input_path", str(photos), "--output_path", str(out)]
    assert main(args) == 0
    first = {p.name: p.read_bytes() for p in out.iterdir()}
    # a stopped run: p2 never written, its write interrupted
    (out / "p2.png").unlink()
    leftover = out / ".p2.png.x1y2.part"
    leftover.write_bytes(b"half")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    said = capsys.readouterr().out
    assert "predicted 1 image(s) (2 already written, kept)" in said
    assert f"{leftover}: left by an interrupted write" in said
    assert {p.name: p.read_bytes() for p in out.glob("p*")} == first
    assert main([*args, "--resume"]) == 0
    assert "all 3 label file(s) already written" in capsys.readouterr().out
    # a label file that does not read back is refused, and kept
    (out / "p1.png").write_bytes(first["p1.png"][:40])
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p1.png" in err[0] and "torn" in err[0]
    assert (out / "p1.png").read_bytes() == first["p1.png"][:40]
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "--resume", "--overwrite"])
    assert "not allowed with" in capsys.readouterr().err
