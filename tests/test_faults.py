"""Faults while writing checkpoints: kill -9, Stop, Ctrl-C.

Each test proves that whatever moment training or saving is cut short at,
the latest checkpoint is a complete, loadable epoch, and no temporary file
is taken for a checkpoint or left lying around.
"""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _checkpoint_writer import shifted

from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model import weights as wt
from napari_thinseg.model.backend import tensorflow
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import build
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainResult, TrainSettings, train

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="SIGKILL and SIGINT are POSIX signals"
)

WRITER = Path(__file__).with_name("_checkpoint_writer.py")
SRC = Path(__file__).parents[1] / "src"


def temp_files(prefix) -> set[str]:
    """Names of the temporary (``.part``) files next to ``prefix``."""
    folder = Path(prefix).parent
    return {n for n in os.listdir(folder) if n.endswith(".part")}


def child_env() -> dict:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + path if path else "")
    return env


def default_sigint():
    """Children get Python's KeyboardInterrupt even when the test runs in
    a background job (which starts with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Child:
    """A subprocess whose stdout lines arrive in a queue."""

    def __init__(self, args, log: Path, **kwargs):
        self.log = open(log, "ab")  # noqa: SIM115  (closed in finish)
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=child_env(),
            preexec_fn=default_sigint,
            **kwargs,
        )
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def fail(self, message: str):
        """Fail the test, not leaving the child running."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        pytest.fail(f"{message}; stdout {self.seen}; stderr {self.log.name}")

    def wait_for(self, start: str, timeout: float = 120.0) -> str:
        """The next line starting with ``start`` (fails on exit/timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=deadline - time.monotonic())
            except (queue.Empty, ValueError):
                self.fail(f"no {start!r} line in {timeout} s")
            if line is None:
                self.fail(f"exit {self.proc.wait()} before {start!r}")
            self.seen.append(line)
            if line.startswith(start):
                return line

    def finish(self, timeout: float = 120.0) -> list[str]:
        """Every stdout line, once the child has exited."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"still running {timeout} s later")
        self.log.close()
        while (line := self.lines.get(timeout=30)) is not None:
            self.seen.append(line)
        return self.seen


def assert_interrupted_line(stderr: str):
    """The CLI's one line, last, and no traceback or ignored exception."""
    assert stderr.splitlines()[-1:] == ["thinseg: interrupted"], stderr
    assert stderr.count("thinseg:") == 1, stderr
    for word in ("Traceback", "KeyboardInterrupt", "Exception ignored"):
        assert word not in stderr, stderr


def saved_epochs(lines) -> list[int]:
    return [int(x.split()[1]) for x in lines if x.startswith("saved ")]


# -- kill -9 during a save ---------------------------------------------------
KERAS_KILLS = 2  # children saving a real Keras model (TensorFlow: slow start)
FAST_KILLS = 20  # children saving the same layers from h5py (fast start)
MID_WRITE_KILLS = 3  # kill more (up to 40 in all) until this many hit a write


def test_kill_9_at_random_moments_never_breaks_the_latest_checkpoint(
    tmp_path,
):
    """SIGKILL a process in a save loop >= 20 times at random moments.

    Proves: after every kill the latest checkpoint is the last epoch the
    writer reported, or the next one (renamed, not yet reported); it holds
    exactly that epoch's weights and loads into the model; temporary files
    are never listed as checkpoints, and the next save removes those a
    killed writer left.
    """
    seed = int(os.environ.get("THINSEG_FAULT_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    why = f"(THINSEG_FAULT_SEED={seed})"
    prefix = tmp_path / "ck" / "vgg_unet"
    config = ModelConfig(3, 32, 32)
    tensorflow()
    import keras

    keras.utils.set_random_seed(0)
    model = build(config)
    ck.write_config(prefix, config)
    ck.save_checkpoint(prefix, 0, model)
    base = [arrays for _, arrays in wt.read_weights(f"{prefix}.0")]

    save_time = 0.3  # seconds, until the children have measured it
    latest = 0
    landed = {"before start": 0, "mid-write": 0, "between writes": 0}
    # mid-write: between mkstemp and the rename; between writes: encoding
    # the weights, renamed but not reported, or idle
    unreported = 0  # kills between a rename and its "saved" line
    cleaned = 0
    k = 0
    while k < KERAS_KILLS + FAST_KILLS or (
        landed["mid-write"] < MID_WRITE_KILLS and k < 40
    ):
        leftovers = temp_files(prefix)
        args = [sys.executable, str(WRITER), str(prefix)]
        if k < KERAS_KILLS:
            args.append("--keras")
        child = Child(args, tmp_path / "writer.log")
        moment = rng.random()
        if k >= KERAS_KILLS and moment < 0.1:
            time.sleep(rng.uniform(0, 0.3))  # before, or at the first save
        elif moment < 0.3:
            child.wait_for("ready")  # the first save cleans up
            time.sleep(rng.uniform(0, 1.5 * save_time))
        else:
            line = child.wait_for("saved")
            save_time = float(line.split()[2])
            time.sleep(rng.uniform(0, 1.5 * save_time))
        child.proc.send_signal(signal.SIGKILL)
        lines = child.finish()
        assert child.proc.returncode == -signal.SIGKILL, why

        reported = saved_epochs(lines)
        last = reported[-1] if reported else latest
        found = ck.list_checkpoints(prefix)
        assert all(p == f"{prefix}.{n}" for n, p in found.items()), found
        epoch = max(found)
        assert epoch in (last, last + 1), (lines, sorted(found), why)
        unreported += epoch == last + 1
        if reported:  # its first save removed what earlier kills left
            assert not leftovers & temp_files(prefix), why
            cleaned += len(leftovers)
        fresh = temp_files(prefix) - leftovers
        if "ready" not in lines:
            landed["before start"] += 1
        elif fresh:
            assert len(fresh) == 1, fresh
            landed["mid-write"] += 1
        else:
            landed["between writes"] += 1

        weights = wt.read_weights(found[epoch])
        for (_, got), arrays in zip(weights, base, strict=True):
            for g, w in zip(got, shifted(arrays, epoch), strict=True):
                np.testing.assert_array_equal(g, w, err_msg=why)
        wt.assign_weights(model, weights, found[epoch])  # shapes, finite
        assert ck.find_latest_checkpoint(prefix) == found[epoch]
        latest = epoch
        for n in [n for n in found if 0 < n < epoch - 1]:
            os.unlink(found[n])  # keep the disk use small
        k += 1

    # a clean run after the last kill: nothing left behind
    child = Child(
        [sys.executable, str(WRITER), str(prefix), "--count", "1"],
        tmp_path / "writer.log",
    )
    assert saved_epochs(child.finish()) == [latest + 1]
    assert child.proc.returncode == 0
    assert not temp_files(prefix)
    loaded, _, path = ck.load_model(prefix)
    assert path == f"{prefix}.{latest + 1}"
    layers = [ly for ly in loaded.layers if ly.weights]
    for layer, arrays in zip(layers, base, strict=True):
        want = shifted(arrays, latest + 1)
        for g, w in zip(layer.get_weights(), want, strict=True):
            np.testing.assert_array_equal(g, w)
    print(
        f"{k} kills: {landed}, {unreported} renamed but not reported; temp "
        f"files cleaned: {cleaned} {why}"
    )
    # the dangerous moment was met (a third of the kills meet it)
    assert landed["mid-write"] >= MID_WRITE_KILLS, (landed, why)


def test_save_removes_only_dead_writers_temp_files(tmp_path):
    """The next save deletes the prefix's temporary files when no writer
    holds the folder's lock, and nothing else; while another writer is
    mid-write (holding the lock), it leaves them alone."""
    import fcntl

    tensorflow()
    model = build(ModelConfig(3, 32, 32))
    folder = tmp_path / "w"
    folder.mkdir()
    prefix = folder / "p"
    ours = [".p.3.abcd_f12.part", ".p.12.x0y1z2w3.part"]
    ours += [".p_config.json.abcdefgh.part"]
    others = [
        ".p2.3.abcdefgh.part",  # prefix p2
        ".p.1.5.abcdefgh.part",  # prefix p.1, epoch 5
        ".p.3.abcdefgh.part.bak",
        "p.3.abcdefgh.part",
        ".p.x.abcdefgh.part",
        ".p.3.abcdefg.part",
        ".q.3.abcdefgh.part",
        "notes.txt",
    ]
    for name in ours + others:
        (folder / name).write_bytes(b"half a checkpoint")

    def names():
        return {p.name for p in folder.iterdir()}

    busy = os.open(folder, os.O_RDONLY)  # a live writer's lock
    try:
        fcntl.flock(busy, fcntl.LOCK_SH)
        ck.save_checkpoint(prefix, 4, model)
        assert names() == set(ours + others) | {"p.4"}
    finally:
        os.close(busy)
    ck.save_checkpoint(prefix, 5, model)
    assert names() == set(others) | {"p.4", "p.5"}
    assert sorted(ck.list_checkpoints(prefix)) == [4, 5]

    (folder / ours[2]).write_bytes(b"{")
    ck.write_config(prefix, ModelConfig(3, 32, 32))  # cleans up too
    assert names() == set(others) | {"p.4", "p.5", "p_config.json"}
    assert ck.read_config(prefix).n_classes == 3


# -- Stop in the middle of an epoch ------------------------------------------
def test_stop_mid_epoch_keeps_previous_epoch(tmp_path):
    """Stop during epoch 1's batches: the generator returns a clean,
    stopped result; epoch 0 stays the latest checkpoint and loads; epoch 1
    is neither saved nor half-written, although the model moved on."""
    prefix = tmp_path / "ck" / "p"
    rgb, labels = synthetic_sandstone((64, 64), seed=1)
    pairs = [Pair("s", rgb, to_seed_labels(labels))]
    settings = TrainSettings(
        epochs=3, steps_per_epoch=3, input_height=32, input_width=32
    )
    events = []

    def stop():
        return len(events) == 5  # epoch 0: 3 batches + end; epoch 1: one

    gen = train(pairs, SEED, settings, checkpoints_path=prefix, stop=stop)
    result = run(gen, events.append)
    with pytest.raises(StopIteration):
        next(gen)  # finished for good
    assert [(e.epoch, e.epoch_end) for e in events] == [
        (0, False),
        (0, False),
        (0, False),
        (0, True),
        (1, False),
    ]
    assert isinstance(result, TrainResult) and result.stopped
    assert [h["epoch"] for h in result.history] == [0]
    assert result.checkpoint == f"{prefix}.0"
    assert ck.find_latest_checkpoint(prefix) == f"{prefix}.0"
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "p.0",
        "p_config.json",
    ]
    model, config, path = ck.load_model(prefix)
    assert path == f"{prefix}.0" and config.n_classes == SEED.n_classes
    saved = [ly.get_weights() for ly in model.layers if ly.weights]
    moved = [ly.get_weights() for ly in result.model.layers if ly.weights]
    assert all(np.isfinite(a).all() for w in saved for a in w)
    assert any(
        not np.array_equal(a, b)
        for s, m in zip(saved, moved, strict=True)
        for a, b in zip(s, m, strict=True)
    ), "epoch 1's batch did not change the model; the test proves nothing"


# -- Ctrl-C in the thinseg command -------------------------------------------
def test_ctrl_c_during_saves_leaves_no_temp_file(tmp_path):
    """KeyboardInterrupt (what Ctrl-C raises) at 20 random moments of a
    loop of saves, in this process: each time the latest checkpoint is the
    last save that returned or the one under way, complete and loadable,
    and no temporary file is left behind, not even for the next save."""
    seed = int(os.environ.get("THINSEG_FAULT_SEED", time.time_ns() % 2**32))
    rng = random.Random(seed)
    why = f"(THINSEG_FAULT_SEED={seed})"
    prefix = tmp_path / "p"
    config = ModelConfig(3, 32, 32)
    tensorflow()
    model = build(config)
    ck.write_config(prefix, config)
    ck.save_checkpoint(prefix, 0, model)
    layers = [ly for ly in model.layers if ly.weights]
    base = [ly.get_weights() for ly in layers]

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGALRM, interrupt)
    epoch = returned = 0
    save_time = 0.3
    try:
        for _ in range(20):
            # the loop runs until the alarm, so it always interrupts a save
            signal.setitimer(signal.ITIMER_REAL, rng.uniform(0, save_time))
            try:
                while True:
                    epoch += 1
                    # the alarm is held off while the weights change (a
                    # KeyboardInterrupt inside TensorFlow's C conversion
                    # comes out as a SystemError); one due then lands as
                    # the save starts
                    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
                    try:
                        for layer, arrays in zip(layers, base, strict=True):
                            layer.set_weights(shifted(arrays, epoch))
                    finally:
                        signal.pthread_sigmask(
                            signal.SIG_UNBLOCK, {signal.SIGALRM}
                        )
                    start = time.perf_counter()
                    ck.save_checkpoint(prefix, epoch, model)
                    save_time = time.perf_counter() - start
                    returned = epoch
            except KeyboardInterrupt:
                pass
            assert not temp_files(prefix), why
            latest = max(ck.list_checkpoints(prefix))
            assert latest in (returned, returned + 1), why
            weights = wt.read_weights(f"{prefix}.{latest}")
            for (_, got), arrays in zip(weights, base, strict=True):
                for g, w in zip(got, shifted(arrays, latest), strict=True):
                    np.testing.assert_array_equal(g, w, err_msg=why)
            epoch = returned = latest
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)
    ck.load_model(prefix)


def test_ctrl_c_in_train_command(tmp_path):
    """SIGINT to ``python -m napari_thinseg train`` after its first saved
    epoch, twice (the second run resumes): exit 130, one line
    "thinseg: interrupted" on stderr, every finished epoch's checkpoint
    loads, and no temporary file is left."""
    from napari_thinseg.cli import main

    ds = tmp_path / "ds"
    assert main(["synth", "--out", str(ds), "-n", "2", "--size", "64x64"]) == 0
    prefix = tmp_path / "ck" / "vgg_unet_1"
    args = [sys.executable, "-m", "napari_thinseg", "train"]
    args += ["--train_images", str(ds / "images_prepped_train")]
    args += ["--train_annotations", str(ds / "annotations_prepped_train")]
    args += ["--checkpoints_path", str(prefix), "--epochs", "1000"]
    args += ["--input_height", "32", "--input_width", "32"]
    args += ["--steps_per_epoch", "2", "--batch_size", "1"]
    rng = random.Random()
    reported: list[int] = []
    for attempt in range(2):
        child = Child(
            args + (["--auto_resume_checkpoint"] if attempt else []),
            tmp_path / f"train{attempt}.log",
            cwd=tmp_path,
        )
        child.wait_for("epoch ")  # first epoch saved: training is under way
        time.sleep(rng.uniform(0, 0.5) if attempt else 0)  # mid-epoch or save
        child.proc.send_signal(signal.SIGINT)
        lines = child.finish()
        stderr = (tmp_path / f"train{attempt}.log").read_text()
        assert child.proc.returncode == 130, (lines, stderr)
        assert_interrupted_line(stderr)
        done = [int(x.split()[1].rstrip(":")) for x in lines if "saved" in x]
        assert done and done == sorted(done), lines
        reported += done

        found = ck.list_checkpoints(prefix)
        assert set(reported) <= set(found), (lines, sorted(found))
        # the save under way when SIGINT came either finished or vanished
        assert max(found) <= max(reported) + 1
        assert sorted(found) == list(range(max(found) + 1))
        assert not temp_files(prefix)
        names = {p.name for p in prefix.parent.iterdir()}
        assert names == {f"{prefix.name}.{n}" for n in found} | {
            f"{prefix.name}_config.json"
        }
        model, _, path = ck.load_model(prefix)  # the latest
        assert path == found[max(found)]
        for epoch in sorted(found):  # every finished epoch: complete
            wt.assign_weights(model, wt.read_weights(found[epoch]))


INTERRUPT_DURING_IMPORT = """
import os, signal, sys, threading, time
from napari_thinseg.cli import main

def interrupt():
    while "tensorflow" not in sys.modules:
        time.sleep(0.001)
    time.sleep(0.05)  # TensorFlow takes seconds to load
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt, daemon=True).start()
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_while_tensorflow_loads(tmp_path):
    """Ctrl-C while TensorFlow loads still prints the one line."""
    from napari_thinseg.cli import main

    ds = tmp_path / "ds"
    assert main(["synth", "--out", str(ds), "-n", "1", "--size", "64x64"]) == 0
    args = [sys.executable, "-c", INTERRUPT_DURING_IMPORT, "train"]
    args += ["--train_images", str(ds / "images_prepped_train")]
    args += ["--train_annotations", str(ds / "annotations_prepped_train")]
    args += ["--checkpoints_path", str(tmp_path / "ck" / "p")]
    args += ["--input_height", "32", "--input_width", "32"]
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=child_env(),
        preexec_fn=default_sigint,
        timeout=300,
    )
    assert proc.returncode == 130, proc.stderr
    assert_interrupted_line(proc.stderr)
    ck_folder = tmp_path / "ck"
    assert not ck_folder.exists() or not temp_files(ck_folder / "p")
