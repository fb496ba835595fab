"""``thinseg synth``: synthetic thin sections with exact labels, as a
keras-segmentation dataset."""

from __future__ import annotations

from ..errors import ThinsegError
from ._common import drive, size


def _synth_pairs(n, size, seed, scheme_name):
    from ..dataset.folders import Pair
    from ..dataset.synth import synthetic_sandstone, to_seed_labels

    for k in range(n):
        rgb, labels = synthetic_sandstone(size, seed=seed + k)
        if scheme_name == "seed":
            labels = to_seed_labels(labels)
        yield Pair(f"synth_{seed + k:04d}", rgb, labels)


def cmd_synth(args) -> int:
    from ..dataset.folders import export_dataset
    from ..schemes import get_scheme

    if args.n < 1:
        raise ThinsegError(f"-n must be at least 1, got {args.n}")
    scheme = get_scheme(args.scheme)
    pairs = list(_synth_pairs(args.n, args.size, args.seed, args.scheme))
    result = drive(
        export_dataset(
            pairs,
            args.out,
            scheme,
            args.test_fraction,
            args.seed,
            args.overwrite,
        ),
        "synth",
    )
    print(
        f"wrote {len(result.train)} training and {len(result.test)} test "
        f"synthetic thin section(s) to {args.out}"
    )
    return 0


def add_commands(sub) -> None:
    """Register ``synth`` on the ``thinseg`` subparsers."""
    p = sub.add_parser(
        "synth",
        help="write synthetic thin sections with exact labels",
        description="A keras-segmentation dataset of synthetic sandstones.",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("-n", type=int, default=1)
    p.add_argument("--size", type=size, default=(512, 512), metavar="HxW")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scheme", choices=("sandstone", "seed"), default="sandstone"
    )
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_synth)
