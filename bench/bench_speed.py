"""The four speed benchmarks of the README, one after the other.

(a) ``bench_end_to_end.py``: files in, label PNGs out, ``thinseg predict``
    against keras-segmentation's ``predict_multiple`` (target >= 2.0x);
(b) ``bench_predict.py``: tile mode on a 4000 x 4000 image against the
    bare float32 network's pixels per second (target >= 1.6x);
(c) ``bench_model.py``: the train step (and predict) against
    keras-segmentation's ``train_on_batch`` (target >= 1.5x);
(d) ``bench_autolabel.py``: auto-label MPix/s per method (targets
    >= 150 / 50 MPix/s and >= 8x / 3x the plain float rule).

Each prints its own ratios, measured side by side in one run; run them on
an otherwise idle machine. Not run by CI; about 25 minutes on 2 CPU
cores.

    .venv/bin/python bench/bench_speed.py
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHES = (
    ("(a) end to end", ["bench_end_to_end.py"]),
    ("(b) tile mode", ["bench_predict.py", "--size", "4000"]),
    ("(c) train step", ["bench_model.py", "--ours", "float32,bfloat16"]),
    ("(d) auto-label", ["bench_autolabel.py"]),
)


def main() -> int:
    failed = 0
    for title, command in BENCHES:
        print(f"== {title}: {' '.join(command)}", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, *command], cwd=HERE)
        minutes = (time.perf_counter() - started) / 60
        print(f"== {title}: exit {code}, {minutes:.1f} min\n", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
