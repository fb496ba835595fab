import numpy as np
import pytest
import tifffile

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import (
    check_labels,
    list_images,
    read_annotation,
    read_image,
    write_annotation,
    write_png,
)


def test_read_png_and_16_bit_tiff(tmp_path):
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    write_png(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)
    g16 = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000
    tifffile.imwrite(tmp_path / "b.tif", g16)
    back = read_image(tmp_path / "b.tif")
    assert back.dtype == np.uint16 and np.array_equal(back, g16)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"this is a text file, not an image", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a readable"),
    ],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ThinsegError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_tiny_image_refused(tmp_path):
    write_png(tmp_path / "one.png", np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ThinsegError, match="1x1 pixels, too small"):
        read_image(tmp_path / "one.png")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(ThinsegError, match="no such file"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ThinsegError, match="holds no images"):
        list_images([tmp_path])


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ("b.png", "a.JPG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in list_images([tmp_path])] == ["a.JPG", "b.png"]


def test_labels_to_png_checks(tmp_path):
    labels = np.array([[0, 1], [2, 255]], np.int64)
    path = write_annotation(tmp_path / "l.png", labels)
    back = read_annotation(path)
    assert back.dtype == np.uint8 and np.array_equal(back, labels)
    with pytest.raises(ThinsegError, match="> 255"):
        check_labels(np.array([[256]]))
    with pytest.raises(ThinsegError, match="negative"):
        check_labels(np.array([[-1]]))
    with pytest.raises(ThinsegError, match="integers"):
        check_labels(np.array([[0.5]]))
    assert check_labels(np.array([[2.0]])).tolist() == [[2]]


def test_write_refuses_existing_and_unwritable(tmp_path):
    path = write_annotation(tmp_path / "l.png", np.ones((2, 2), np.uint8))
    before = path.read_bytes()
    with pytest.raises(ThinsegError, match="already exists"):
        write_annotation(path, np.zeros((2, 2), np.uint8))
    assert path.read_bytes() == before
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(
        ThinsegError, match="cannot create folder|not a folder"
    ):
        write_annotation(blocker / "sub" / "l.png", np.ones((2, 2), np.uint8))
    # /proc refuses new files even to root, unlike a chmod-ed folder
    with pytest.raises(ThinsegError, match="cannot"):
        write_annotation("/proc/thinseg/l.png", np.ones((2, 2), np.uint8))
    assert not list(tmp_path.glob(".*.part"))


def test_written_files_get_the_usual_permissions(tmp_path):
    import os

    path = write_png(tmp_path / "a.png", np.zeros((2, 2), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_output_paths_refuse_two_inputs_of_one_stem(tmp_path):
    from napari_thinseg.imaging.files import output_paths

    ins = [tmp_path / "a.png", tmp_path / "b.jpg"]
    assert output_paths(ins, tmp_path / "out") == [
        tmp_path / "out" / "a.png",
        tmp_path / "out" / "b.png",
    ]
    with pytest.raises(ThinsegError, match="a.tif: same name as .*a.png"):
        output_paths([*ins, tmp_path / "a.tif"], tmp_path / "out")
