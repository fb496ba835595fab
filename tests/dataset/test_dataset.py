import imageio.v3 as iio
import numpy as np
import pytest

from napari_thinseg.dataset.folders import (
    Pair,
    export_dataset,
    is_dataset,
    pair_files,
    read_dataset,
    safe_stem,
    split_names,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.progress import run
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme


def _pairs(n=5, shape=(6, 8)):
    rng = np.random.default_rng(1)
    return [
        Pair(
            f"thin section {k}",
            rng.integers(0, 256, (*shape, 3), dtype=np.uint8),
            rng.integers(0, 6, shape, dtype=np.uint8),
        )
        for k in range(n)
    ]


def test_export_then_read_round_trip(tmp_path):
    pairs = _pairs()
    gen = export_dataset(pairs, tmp_path, SEED, test_fraction=0.4)
    steps = []
    result = run(gen, lambda e: steps.append(e.step))
    assert steps == [1, 2, 3, 4, 5]
    assert len(result.test) == 2 and len(result.train) == 3
    assert (tmp_path / "images_prepped_train").is_dir()
    assert (tmp_path / "annotations_prepped_test").is_dir()
    assert ClassScheme.load(tmp_path / "classes.json") == SEED

    samples, scheme = read_dataset(tmp_path)
    assert scheme == SEED
    by_name = {p.name: p for p in pairs}
    assert sorted(s.name for s in samples) == sorted(by_name)
    for s in samples:
        pair = by_name[s.name]
        assert s.split == ("test" if s.name in result.test else "train")
        assert np.array_equal(iio.imread(s.image_path), pair.image)
        ann = iio.imread(s.annotation_path)
        assert ann.dtype == np.uint8 and ann.ndim == 2
        assert np.array_equal(ann, pair.labels)


def test_split_is_deterministic_and_order_free():
    names = [f"n{k}" for k in range(10)]
    a = split_names(names, 0.3, seed=7)
    assert len(a) == 3
    assert a == split_names(list(reversed(names)), 0.3, seed=7)
    assert split_names(names, 0.0) == set()
    assert len(split_names(["a", "b"], 0.9)) == 1  # never everything
    with pytest.raises(ThinsegError, match="test fraction"):
        split_names(names, 1.0)


def test_export_converts_16_bit_and_gray(tmp_path):
    img16 = np.full((4, 4, 3), 65535, np.uint16)
    gray = np.full((4, 4), 0.5)
    labels = np.ones((4, 4), np.uint8)
    run(
        export_dataset(
            [Pair("a", img16, labels), Pair("b", gray, labels)], tmp_path
        )
    )
    a = iio.imread(tmp_path / "images_prepped_train/a.png")
    b = iio.imread(tmp_path / "images_prepped_train/b.png")
    assert a.dtype == np.uint8 and a.max() == 255
    assert b.shape == (4, 4, 3) and b[0, 0].tolist() == [128, 128, 128]


def test_mismatched_shapes_write_nothing(tmp_path):
    pairs = _pairs(2)
    bad = Pair("bad", np.zeros((6, 8, 3), np.uint8), np.zeros((6, 7)))
    with pytest.raises(
        ThinsegError, match="bad: image is 6x8 but its labels are 6x7"
    ):
        run(export_dataset([*pairs, bad], tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_refuses_labels_outside_scheme_and_over_255(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ThinsegError, match=r"values \[7\] are not classes"):
        run(export_dataset([Pair("a", img, np.full((4, 4), 7))], tmp_path))
    with pytest.raises(ThinsegError, match="> 255"):
        run(export_dataset([Pair("a", img, np.full((4, 4), 300))], tmp_path))


def test_existing_files_need_overwrite(tmp_path):
    pairs = _pairs(2)
    run(export_dataset(pairs, tmp_path))
    ann = tmp_path / "annotations_prepped_train" / "thin section 0.png"
    before = ann.read_bytes()
    changed = [Pair(p.name, p.image, np.zeros_like(p.labels)) for p in pairs]
    with pytest.raises(ThinsegError, match="already exists"):
        run(export_dataset(changed, tmp_path))
    assert ann.read_bytes() == before
    with pytest.raises(ThinsegError, match="another class scheme"):
        run(
            export_dataset(
                [Pair("new", pairs[0].image, pairs[0].labels)],
                tmp_path,
                SANDSTONE,
            )
        )
    run(export_dataset(changed, tmp_path, overwrite=True))
    assert iio.imread(ann).max() == 0


def test_names_are_made_safe_and_unique(tmp_path):
    assert safe_stem("a/b:c") == "a_b_c"
    assert safe_stem("..") == "image"
    img, lab = np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)
    with pytest.raises(ThinsegError, match="both be named"):
        run(
            export_dataset(
                [Pair("a/b", img, lab), Pair("a:b", img, lab)], tmp_path
            )
        )
    with pytest.raises(ThinsegError, match="nothing to export"):
        run(export_dataset([], tmp_path))


def test_unwritable_target(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ThinsegError, match="cannot create folder"):
        run(export_dataset(_pairs(1), tmp_path / "file" / "ds"))


def test_layout_detection_and_orphans(tmp_path):
    assert not is_dataset(tmp_path)
    (tmp_path / "images").mkdir()
    assert not is_dataset(tmp_path)
    (tmp_path / "annotations").mkdir()
    assert is_dataset(tmp_path)
    iio.imwrite(tmp_path / "images/x.png", np.zeros((4, 4, 3), np.uint8))
    iio.imwrite(tmp_path / "annotations/y.png", np.zeros((4, 4), np.uint8))
    samples, orphans = pair_files(
        tmp_path / "images", tmp_path / "annotations"
    )
    assert [(s.name, s.annotation_path) for s in samples] == [("x", None)]
    assert [o.name for o in orphans] == ["y.png"]
    with pytest.raises(ThinsegError, match="not a dataset folder"):
        read_dataset(tmp_path / "images")
