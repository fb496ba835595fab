"""The shipped default model loads and classifies the sample thin section."""

from napari_thinseg._napari.sample_data import SEED_SAMPLE
from napari_thinseg.autolabel.rule import EpoxyWindow, autolabel
from napari_thinseg.imaging.files import read_image
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED


def test_default_model_predicts_the_seed_sample():
    model, config, weights = ck.load_model(ck.default_model_prefix())
    assert weights.endswith("thinseg_default.4")
    assert config.class_scheme == SEED
    assert config.trained_on["ignore_zero"] is True
    image = read_image(SEED_SAMPLE)[..., :3]
    pred = run(predict_image(model, config, image, confidence=True))
    assert pred.labels.shape == image.shape[:2]
    assert pred.labels.min() >= 1  # 0 is never predicted
    # it learnt the blue-epoxy labels it was trained on (this image was in
    # its training set, labelled with the fixed epoxy window of the time):
    # porosity and most pixels agree
    reference = autolabel(image, method="epoxy", epoxy=EpoxyWindow())
    assert (pred.labels == reference).mean() > 0.8
    porosity = (pred.labels == SEED.pore_id).mean()
    assert abs(porosity - (reference == SEED.pore_id).mean()) < 0.03
    assert 0.0 <= pred.confidence.min() <= pred.confidence.max() <= 1.0


def test_sandstone_model_classes_minerals(sandstone_model):
    """The shipped mineral model: the sandstone scheme, 11 outputs, and on
    a synthetic sandstone of its training set it finds the pores and the
    quartz (held-out numbers are in its model card)."""
    from napari_thinseg.dataset.synth import synthetic_sandstone
    from napari_thinseg.inference.metrics import (
        confusion_matrix,
        iou_from_confusion,
    )
    from napari_thinseg.schemes import SANDSTONE

    model, config, weights = ck.load_model(sandstone_model)
    assert config.class_scheme == SANDSTONE and config.n_classes == 11
    assert config.trained_on["transfer"]["from_classes"] == 6
    image, labels = synthetic_sandstone((480, 512), seed=200)
    pred = run(predict_image(model, config, image)).labels
    iou = iou_from_confusion(confusion_matrix(labels, pred, 11))
    assert iou[SANDSTONE.id_of("pore")] > 0.7  # 0.86 as shipped
    assert iou[SANDSTONE.id_of("quartz")] > 0.65  # 0.83 as shipped
    porosity = (pred == 1).mean() - (labels == 1).mean()
    assert abs(porosity) < 0.05
