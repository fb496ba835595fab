"""``thinseg train`` (``predict``, ``evaluate_model`` and ``verify_dataset``
are in :mod:`.predict`).

Drop-in for ``python -m keras_segmentation``: the same flags with the same
defaults, plus ours. TensorFlow is imported only when a command runs.
"""

from __future__ import annotations

from ..errors import ThinsegError
from ..schemes import scheme_near
from ..strokes.finetune import finetune_settings, wants_finetune
from ..training.recipe import SCHEDULES
from ..training.settings import crop_size
from ._common import count, positive_float, sigint_stops
from .predict import add_precision, add_xpl_folder

FOREST_FLAGS = ("forest_share", "forest_confidence")
"""The recipe's fields a fine-tune from strokes takes from flags."""


def _proposal(args, pairs):
    from ..model.backend import resolve_precision
    from ..training.recipe import propose, seconds_per_step, sgemm_gflops

    shapes = [p.labels.shape for p in pairs]
    precision = resolve_precision(args.precision)
    gflops = sgemm_gflops()

    frozen = args.freeze_blocks

    def estimate(height, width, batch):
        return seconds_per_step(
            height, width, batch, precision, gflops, frozen
        )

    proposal = propose(shapes, args.minutes, precision, gflops, frozen)
    return proposal, estimate


def cmd_train(args) -> int:
    from ..dataset.folders import pairs_from_folders
    from ..model import checkpoints as ck
    from ..training.loop import TrainSettings, train
    from ._common import drive

    if args.model_name != "vgg_unet":
        raise ThinsegError(
            f"model {args.model_name!r} is not available: napari-thinseg "
            "trains 'vgg_unet'"
        )
    scheme = scheme_near(args.train_images, args.scheme, args.n_classes)
    pairs = pairs_from_folders(
        args.train_images, args.train_annotations, args.train_xpl_images
    )
    validation = []
    if args.validate:
        if not (args.val_images and args.val_annotations):
            raise ThinsegError(
                "--validate needs --val_images and --val_annotations"
            )
        validation = pairs_from_folders(
            args.val_images, args.val_annotations, args.val_xpl_images
        )
    model = config = None
    if args.base:
        model, config, _ = ck.load_model(ck.model_prefix(args.base))
    if wants_finetune(model, pairs):
        return _finetune(args, pairs, scheme, model, config, validation)
    for flag in FOREST_FLAGS:
        if getattr(args, flag) is not None:
            raise ThinsegError(
                f"--{flag} is for a fine-tune from strokes: --base and "
                "labels that are strokes (0 = unpainted)"
            )
    sizes = {"epochs": 5, "batch_size": 2, "steps_per_epoch": 512}
    proposal = None
    if args.minutes is not None:
        proposal, estimate = _proposal(args, pairs)
        sizes = {k: getattr(proposal, k) for k in sizes}
    h, w = crop_size((args.input_height, args.input_width), config, proposal)
    for key in sizes:
        if getattr(args, key) is not None:
            sizes[key] = getattr(args, key)  # given flags win
    if args.minutes is not None:
        steps = sizes["epochs"] * sizes["steps_per_epoch"]
        seconds = steps * estimate(h, w, sizes["batch_size"])
        print(
            f"for {args.minutes:g} min: {steps} steps of "
            f"{sizes['batch_size']} crops {h}x{w}, estimated "
            f"{max(1, round(seconds / 60))} min on this machine"
        )
    settings = TrainSettings(
        input_height=h,
        input_width=w,
        minutes=args.minutes,
        **sizes,
        optimizer=args.optimizer_name or "adadelta",
        learning_rate=args.learning_rate,
        augment=args.do_augment,
        colour_augment=args.colour_augment,
        ignore_zero=not args.train_zero_class,
        seed=args.seed,
        encoder_weights="imagenet" if args.init == "imagenet" else None,
        precision=args.precision,
        balance_classes=args.balance_classes,
        schedule=args.schedule,
        keep_best=not args.keep_every_epoch,
        patience=args.patience,
        frozen_blocks=args.freeze_blocks,
        average_weights=args.average_weights,
    )

    with sigint_stops() as stop:
        result = drive(
            train(
                pairs,
                scheme,
                settings,
                validation=validation,
                checkpoints_path=args.checkpoints_path,
                model=model,
                config=config,
                load_weights=args.load_weights,
                auto_resume=args.auto_resume_checkpoint,
                overwrite=args.overwrite,
                n_classes=args.n_classes,
                stop=stop,
            ),
            "train",
            unit="batch",
            on_event=_report_epoch,
        )
    where = (
        f"; latest checkpoint {result.checkpoint}"
        if (result.checkpoint)
        else ""
    )
    if result.transfer is not None:
        print(
            f"started from {args.base} ({config.n_classes} classes): "
            + result.transfer.describe(scheme)
        )
    print(f"trained {len(result.history)} epoch(s){where}")
    return 0


def _report_epoch(ev, bar):
    if getattr(ev, "epoch_end", False):
        line = f"epoch {ev.epoch}: loss {ev.loss:.4f}"
        if ev.val_mean_iou is not None:
            line += f", validation mean IoU {ev.val_mean_iou:.3f}"
        if ev.checkpoint:
            line += f", saved {ev.checkpoint}"
        bar.write(line)
    elif hasattr(ev, "loss"):
        bar.set_postfix_str(
            f"epoch {ev.epoch} loss {ev.loss:.4f}", refresh=False
        )


def _finetune(args, pairs, scheme, model, config, validation) -> int:
    """``--base`` and strokes: the fine-tune that keeps what the model
    knows (:mod:`..strokes.finetune`), its recipe's defaults where no
    flag is given, judged on held-out strokes."""
    from dataclasses import replace

    from ..strokes.finetune import DEFAULT_MINUTES, RECIPE, finetune
    from ._common import drive

    changed = {
        flag: getattr(args, flag)
        for flag in FOREST_FLAGS
        if getattr(args, flag) is not None
    }
    recipe = replace(RECIPE, **changed)

    given = {
        "input_height": args.input_height,
        "input_width": args.input_width,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "steps_per_epoch": args.steps_per_epoch,
        "optimizer": args.optimizer_name,
        "learning_rate": args.learning_rate,
        "frozen_blocks": args.freeze_blocks or None,
        "average_weights": args.average_weights or None,
        "colour_augment": args.colour_augment or None,
        "balance_classes": args.balance_classes or None,
        "schedule": None if args.schedule == "constant" else args.schedule,
        "keep_best": False if args.keep_every_epoch else None,
        "patience": args.patience,
        "seed": args.seed,
    }
    sized = args.epochs is not None or args.steps_per_epoch is not None
    minutes = args.minutes or (None if sized else DEFAULT_MINUTES)
    settings = finetune_settings(
        [p.labels.shape for p in pairs],
        minutes or DEFAULT_MINUTES,
        precision=args.precision,
        **given,
    )
    if minutes is None:
        settings.minutes = None
    steps = settings.epochs * settings.steps_per_epoch
    budget = f" within {minutes:g} min" if minutes else ""
    print(
        f"fine-tuning {args.base} on the strokes{budget}: up to {steps} "
        f"steps of {settings.batch_size} crops {settings.input_height}x"
        f"{settings.input_width}, the unpainted pixels kept as the model "
        "sees them"
    )
    with sigint_stops() as stop:
        result = drive(
            finetune(
                pairs,
                scheme,
                model,
                config,
                settings=settings,
                validation=validation,
                checkpoints_path=args.checkpoints_path,
                overwrite=args.overwrite,
                n_classes=args.n_classes,
                stop=stop,
                recipe=recipe,
            ),
            "train",
            unit="batch",
            on_event=_report_epoch,
        )
    print(result.describe())
    if result.verdict is not None and result.checkpoint:
        print(f"saved {result.checkpoint}")
    return 0


def add_commands(sub) -> None:
    """Register the model commands on the ``thinseg`` subparsers."""
    p = sub.add_parser(
        "train",
        help="train the VGG-UNet (keras_segmentation's flags)",
        description="Train a VGG-UNet on a keras-segmentation dataset.",
    )
    p.add_argument("--model_name", default="vgg_unet")
    p.add_argument("--train_images", required=True)
    p.add_argument("--train_annotations", required=True)
    add_xpl_folder(p, "--train_xpl_images")
    p.add_argument(
        "--n_classes",
        type=int,
        default=None,
        help="default: from the class scheme",
    )
    p.add_argument("--input_height", type=int, default=None)
    p.add_argument("--input_width", type=int, default=None)
    p.add_argument(
        "--not_verify_dataset",
        action="store_true",
        help="accepted for compatibility; pairs are always "
        "checked while loading",
    )
    p.add_argument("--checkpoints_path", default=None)
    # None: keras-segmentation's default (5, 2, 512), or what --minutes
    # proposes when it is given
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--validate", action="store_true")
    p.add_argument("--val_images", default="")
    p.add_argument("--val_annotations", default="")
    add_xpl_folder(p, "--val_xpl_images")
    p.add_argument("--val_batch_size", type=int, default=2)
    p.add_argument("--load_weights", default=None)
    p.add_argument("--auto_resume_checkpoint", action="store_true")
    p.add_argument("--steps_per_epoch", type=int, default=None)
    p.add_argument(
        "--minutes",
        type=positive_float,
        default=None,
        help="a time budget: input size, batch and steps that fit it on "
        "this machine unless given (then keras-segmentation's defaults "
        "apply); training stops at the budget",
    )
    p.add_argument(
        "--optimizer_name",
        default=None,
        help="default adadelta (keras-segmentation's); adam for a "
        "fine-tune from strokes (--base and labels that are strokes)",
    )
    # ours
    p.add_argument(
        "--do_augment",
        action="store_true",
        help="flips, 90 degree turns, scale and colour jitter",
    )
    p.add_argument(
        "--colour_augment",
        action="store_true",
        help="colour casts of other microscopes: white balance, gamma, "
        "saturation, small hue turns (epoxy stays blue), blur, noise",
    )
    p.add_argument(
        "--ignore_zero_class",
        action="store_true",
        help="leave label 0 out of the loss (the default)",
    )
    p.add_argument(
        "--train_zero_class",
        action="store_true",
        help="train label 0 as a class (keras-segmentation's default)",
    )
    p.add_argument("--learning_rate", type=float, default=None)
    p.add_argument(
        "--balance_classes",
        action="store_true",
        help="weigh each class's loss by how rare it is (capped at 10x "
        "the median class)",
    )
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="constant",
        help="learning rate: constant, or warm-up then cosine decay",
    )
    p.add_argument(
        "--keep_every_epoch",
        action="store_true",
        help="with --validate, save every epoch and end with the last "
        "(keras-segmentation's way); by default only better epochs are "
        "saved and the best is the result",
    )
    p.add_argument(
        "--patience",
        type=count(1),
        default=None,
        help="with --validate, stop after this many epochs without a "
        "better validation mean IoU",
    )
    p.add_argument("--scheme", help="seed, sandstone or a classes.json")
    p.add_argument(
        "--init",
        choices=("random", "imagenet"),
        default="random",
        help="encoder initialisation",
    )
    p.add_argument(
        "--base",
        help="start from a shipped model ('default', 'sandstone') or a "
        "checkpoints path; for other classes its weights are transferred "
        "(classes of the same name keep their output weights, new ones "
        "start afresh)",
    )
    p.add_argument(
        "--freeze_blocks",
        type=count(0),
        default=0,
        metavar="N",
        help="with --base or --load_weights: the encoder's first N VGG "
        "blocks (of 4) keep their weights; fewer weights to fit from few "
        "images",
    )
    p.add_argument(
        "--forest_share",
        type=float,
        default=None,
        metavar="SHARE",
        help="fine-tune from strokes: the share (0 to 1; default 0.5) of "
        "an ilastik-style forest on the strokes in the unpainted pixels' "
        "targets where it is sure; 0 keeps the start model's view alone "
        "(docs/loop.md)",
    )
    p.add_argument(
        "--forest_confidence",
        type=float,
        default=None,
        metavar="P",
        help="fine-tune from strokes: the forest teaches only pixels it "
        "gives this probability or more (0 to 1; default 0.8; 0: all)",
    )
    p.add_argument(
        "--average_weights",
        type=float,
        default=0.0,
        metavar="MOMENTUM",
        help="keep a moving average of the weights (0.99, say): what "
        "validation sees, checkpoints hold and training gives; steadier "
        "than the last batch's weights (0: off)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing checkpoints at checkpoints_path",
    )
    add_precision(p)
    p.set_defaults(func=cmd_train)
