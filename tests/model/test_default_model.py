"""The shipped default model loads and classifies the sample thin section."""

from napari_thinseg._napari.sample_data import SEED_SAMPLE
from napari_thinseg.autolabel import autolabel
from napari_thinseg.imaging.files import read_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.predict import predict_image
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED


def test_default_model_predicts_the_seed_sample():
    model, config, weights = ck.load_model(ck.default_model_prefix())
    assert weights.endswith("thinseg_default.10")
    assert config.class_scheme == SEED
    assert config.trained_on["ignore_zero"] is True
    image = read_image(SEED_SAMPLE)[..., :3]
    pred = run(predict_image(model, config, image, confidence=True))
    assert pred.labels.shape == image.shape[:2]
    assert pred.labels.min() >= 1  # 0 is never predicted
    # it learnt the blue-epoxy labels it was trained on (this image was in
    # its training set): porosity and most pixels agree
    reference = autolabel(image, method="epoxy")
    assert (pred.labels == reference).mean() > 0.8
    porosity = (pred.labels == SEED.pore_id).mean()
    assert abs(porosity - (reference == SEED.pore_id).mean()) < 0.03
    assert 0.0 <= pred.confidence.min() <= pred.confidence.max() <= 1.0
