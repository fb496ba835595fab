"""Whole slides that survive interruptions: a ``thinseg predict`` killed
with SIGKILL half-way resumes from its ``.partial`` into the pyramid an
uninterrupted run writes, computing only the tiles it lacked; a tile
written but not yet counted is computed again; a ``.partial`` of another
model, tile plan or input is refused in one line and kept."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _slides import slide_file

from napari_thinseg.cli import main
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.lazy import open_lazy
from napari_thinseg.imaging.pyramid import (
    RUN_RECORD,
    LabelsPyramid,
    open_levels,
    partial_path,
)
from napari_thinseg.inference import slides as ps
from napari_thinseg.model.checkpoints import load_model
from napari_thinseg.progress import run

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGKILL is a POSIX signal"
)

SRC = Path(__file__).parents[2] / "src"
TILE = 256


def pyramid_for(out: Path, slide, config, overwrite=False):
    """The pyramid ``thinseg predict`` makes for ``slide`` at ``out``."""
    return LabelsPyramid.create(
        out,
        slide.shape[:2],
        config.class_scheme,
        slide.pixel_size_um,
        overwrite=overwrite,
        source=str(slide.path),
    )


def assert_same_pyramid(a: Path, b: Path) -> None:
    """Every level equal, the same attributes and array metadata, and
    nothing else in either (no resume record, no temporary file)."""
    levels_a, levels_b = open_levels(a), open_levels(b)
    assert len(levels_a) == len(levels_b)
    for x, y in zip(levels_a, levels_b, strict=True):
        np.testing.assert_array_equal(x[:], y[:])
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*"))
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*"))
    metadata = [n for n in names if Path(n).name.startswith(".z")]
    for name in metadata:  # .zattrs, .zgroup, every level's .zarray
        assert json.loads((a / name).read_text()) == json.loads(
            (b / name).read_text()
        )
    assert RUN_RECORD not in names
    assert not [n for n in names if n.endswith(".partial")]


def count_tiles(monkeypatch) -> list:
    """The tiles the network runs on from now on."""
    computed = []
    real = ps.tile_classes

    def counted(forward, image, tile, plan):
        computed.append(tile.index)
        return real(forward, image, tile, plan)

    monkeypatch.setattr(ps, "tile_classes", counted)
    return computed


@pytest.fixture(scope="module")
def reference(default_model, tmp_path_factory):
    """The slide and its pyramid from an uninterrupted run (tile 256)."""
    model, config = default_model
    folder = tmp_path_factory.mktemp("reference")
    path, _ = slide_file(folder)
    slide = open_lazy(path)
    out = pyramid_for(folder / "whole.ome.zarr", slide, config)
    result = run(ps.predict_slide(model, config, slide, out, tile=TILE))
    out.finish()
    return path, out.path, result.tiles


def kill_half_way(cmd: list, record: Path, timeout: float = 240) -> list:
    """Run ``cmd``, SIGKILL it once its resume ``record`` counts half of
    the tiles done; the tiles done then."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode()
            if record.exists():
                found = json.loads(record.read_text())
                if len(found["done"]) >= found["run"]["tiles"][3] // 2:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    break
            time.sleep(0.01)
        else:
            raise AssertionError("the run never got half-way")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return json.loads(record.read_text())["done"]


def test_kill_9_half_way_then_resume_is_identical(
    reference, tmp_path, monkeypatch, capsys
):
    path, whole, n = reference
    out = tmp_path / "labels.ome.zarr"
    args = ["predict", "--input_path", str(path), "--output_path", str(out)]
    args += ["--tile", str(TILE)]
    done = kill_half_way(
        [sys.executable, "-m", "napari_thinseg", *args],
        partial_path(out) / RUN_RECORD,
    )
    assert n // 2 <= len(done) < n
    assert not out.exists() and partial_path(out).is_dir()
    # the same command again picks up where the killed one stopped
    computed = count_tiles(monkeypatch)
    assert main(args) == 0
    said = capsys.readouterr().out
    assert f"{len(done)} of {n} tiles kept" in said
    assert f"{n} tiles, {len(done)} kept" in said
    assert sorted(computed) == sorted(set(range(n)) - set(done))
    assert_same_pyramid(out, whole)
    assert not partial_path(out).exists()
    # --resume skips a finished slide; without it, it is refused
    assert main([*args, "--resume"]) == 0
    assert "already predicted" in capsys.readouterr().out
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err


class Killed(BaseException):
    """What a SIGKILL would do, at a chosen moment."""


def stand_in(model, config, plan):
    """A fast stand-in for the network: class 2 where blue is high."""

    def forward(tiles):
        blue = tiles[..., 2:3].astype(np.float32) / 255
        return np.concatenate([np.zeros_like(blue), 1 - blue, blue], -1)

    return forward


def test_a_tile_written_but_not_counted_is_computed_again(
    default_model, tmp_path, monkeypatch
):
    model, config = default_model
    monkeypatch.setattr(ps, "slide_forward", stand_in)
    path, _ = slide_file(tmp_path, shape=(1100, 1300))  # two levels
    slide = open_lazy(path)
    whole = pyramid_for(tmp_path / "whole.ome.zarr", slide, config)
    n = run(ps.predict_slide(model, config, slide, whole, tile=TILE)).tiles
    whole.finish()
    assert len(whole.levels) == 2
    out = pyramid_for(tmp_path / "labels.ome.zarr", slide, config)
    real = LabelsPyramid.mark_done
    calls = []

    def dies_at_the_fourth(self, index, region):
        calls.append(index)
        if len(calls) == 4:  # its labels are in the store, not counted
            y0, y1, x0, x1 = region
            # and torn, as a kill half-way through writing would leave it
            self.write(y0, x0, np.full((y1 - y0, x1 - x0), 9, np.uint8))
            raise Killed
        real(self, index, region)

    monkeypatch.setattr(LabelsPyramid, "mark_done", dies_at_the_fourth)
    with pytest.raises(Killed):
        run(ps.predict_slide(model, config, slide, out, tile=TILE))
    monkeypatch.setattr(LabelsPyramid, "mark_done", real)
    # a chunk zarr was writing when killed
    stray = out.store_path / "1" / "0" / f"0.{'ab' * 16}.partial"
    stray.write_bytes(b"torn")
    again = pyramid_for(out.path, slide, config)
    assert again.resumed and again.done == set(calls[:3])
    assert not stray.exists()
    computed = count_tiles(monkeypatch)
    events = []
    result = run(
        ps.predict_slide(model, config, slide, again, tile=TILE),
        events.append,
    )
    assert result.kept == 3
    assert sorted(computed) == sorted(set(range(n)) - set(calls[:3]))
    assert events[0].step == events[0].kept == 3
    assert f"3 of {n} kept" in events[0].message
    assert [e.step for e in events[1:]] == list(range(4, n + 1))
    again.finish()
    assert_same_pyramid(again.path, whole.path)


def test_a_partial_of_another_run_is_refused_and_kept(
    default_model, sandstone_model, tmp_path, capsys
):
    model, config = default_model
    # a small slide: the stopped run recorded itself before any tile
    small = tmp_path / "small.tif"
    pixels = slide_file(tmp_path)[1][:384, :320]
    tifffile.imwrite(small, pixels, tile=(128, 128), photometric="rgb")
    slide = open_lazy(small)
    out = tmp_path / "labels.ome.zarr"
    job = ps.predict_slide(
        model, config, slide, pyramid_for(out, slide, config), tile=TILE
    )
    next(job)
    job.close()
    record = (partial_path(out) / RUN_RECORD).read_text()
    other, other_config, _ = load_model(sandstone_model)

    cases = {
        "other tiles (256x256, now 192x192)": (model, config, 192),
        "another model": (other, config, TILE),
    }
    for words, (m, c, tile) in cases.items():
        with pytest.raises(ThinsegError) as exc:
            run(
                ps.predict_slide(
                    m, c, slide, pyramid_for(out, slide, config), tile=tile
                )
            )
        message = str(exc.value)
        assert words in message and "use overwrite to discard" in message
        assert str(partial_path(out)) in message and "\n" not in message
    # the file changed since (a new scan under the same name)
    tifffile.imwrite(small, pixels[::-1], tile=(128, 128), photometric="rgb")
    changed = open_lazy(small)
    with pytest.raises(ThinsegError, match="another input"):
        run(
            ps.predict_slide(
                model,
                config,
                changed,
                pyramid_for(out, changed, config),
                tile=TILE,
            )
        )
    # other labels altogether: refused before any model is asked
    with pytest.raises(ThinsegError, match="another class scheme"):
        pyramid_for(out, slide, other_config)
    with pytest.raises(ThinsegError, match="384 x 320 px, not 100 x 320"):
        LabelsPyramid.create(out, (100, 320), config.class_scheme)
    # nothing was lost on the way; the CLI says it in one line, exit 2
    assert (partial_path(out) / RUN_RECORD).read_text() == record
    args = ["predict", "--input_path", str(small), "--output_path", str(out)]
    assert main([*args, "--tile", "192"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other tiles" in err[0]
    assert "overwrite" in err[0]
    # overwrite starts over
    fresh = pyramid_for(out, changed, config, overwrite=True)
    assert not fresh.resumed and not (partial_path(out) / RUN_RECORD).exists()
