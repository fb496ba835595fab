import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.predict import evaluate, predict_image
from napari_thinseg.progress import run


class RedModel:
    """Stands in for the network: class 2 where red > 128, else class 1,
    at half resolution, as softmax-like probabilities."""

    def __init__(self, config):
        self.c = config
        self.calls = []

    def predict_on_batch(self, x):
        self.calls.append(x.shape)
        assert x.shape[1:] == (self.c.input_height, self.c.input_width, 3)
        red = x[:, ::2, ::2, 0] + 123.68
        probs = np.full((*red.shape, self.c.n_classes), 0.02, np.float32)
        probs[..., 1] = np.where(red > 128, 0.1, 0.8)
        probs[..., 2] = np.where(red > 128, 0.8, 0.1)
        probs /= probs.sum(-1, keepdims=True)
        return probs.reshape(len(x), -1, self.c.n_classes)


def half_red(h, w, edge):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :edge, 0] = 200
    image[:, edge:, 0] = 50
    return image


def test_tiles_are_seamless_at_full_size():
    config = ModelConfig(4, 32, 64)
    model = RedModel(config)
    image = half_red(150, 230, 101)  # not a multiple of any tile size
    gen = predict_image(model, config, image, batch_size=3)
    events = []
    pred = run(gen, events.append)
    assert events[-1].step == events[-1].total == len(events)
    assert sum(s[0] for s in model.calls) > 12  # many overlapping tiles
    assert pred.labels.shape == (150, 230) and pred.labels.dtype == np.uint8
    expected = np.where(np.arange(230) < 101, 2, 1)
    wrong = pred.labels != expected[None, :]
    # only the columns at the colour edge may differ (half-res output)
    assert not wrong[:, :99].any() and not wrong[:, 103:].any()


def test_small_image_is_padded_not_stretched():
    config = ModelConfig(4, 64, 64)
    model = RedModel(config)
    pred = run(predict_image(model, config, half_red(20, 30, 10)))
    assert pred.labels.shape == (20, 30)
    assert (pred.labels[:, :8] == 2).all() and (pred.labels[:, 12:] == 1).all()


def test_resize_mode_like_keras_segmentation():
    config = ModelConfig(4, 32, 32)
    pred = run(
        predict_image(
            RedModel(config),
            config,
            half_red(64, 96, 48),
            mode="resize",
            confidence=True,
        )
    )
    assert pred.labels.shape == (64, 96)
    assert (pred.labels[:, :40] == 2).all() and (
        pred.labels[:, 56:] == 1
    ).all()
    assert pred.confidence.shape == (64, 96)
    assert 0 < pred.confidence.min() <= pred.confidence.max() < 1


def test_confidence_is_one_minus_normalised_entropy():
    config = ModelConfig(4, 32, 32)
    pred = run(
        predict_image(
            RedModel(config), config, half_red(32, 32, 16), confidence=True
        )
    )
    p = np.array([0.02, 0.1, 0.8, 0.02]) / 0.94
    expected = 1 + (p * np.log(p)).sum() / np.log(4)
    np.testing.assert_allclose(pred.confidence[:, :12], expected, rtol=1e-4)


def test_ignore_zero_models_never_predict_zero():
    config = ModelConfig(4, 32, 32, trained_on={"ignore_zero": True})

    class ZeroModel(RedModel):
        def predict_on_batch(self, x):
            out = super().predict_on_batch(x)
            out[..., 0] = 5.0
            return out

    pred = run(predict_image(ZeroModel(config), config, half_red(32, 32, 16)))
    assert pred.labels.min() >= 1


def test_bad_requests():
    config = ModelConfig(4, 32, 32)
    model = RedModel(config)
    with pytest.raises(ThinsegError, match="unknown mode"):
        run(predict_image(model, config, half_red(8, 8, 4), mode="squash"))
    with pytest.raises(ThinsegError, match="stack"):
        run(predict_image(model, config, np.zeros((5, 8, 8), np.uint8)))
    with pytest.raises(ThinsegError, match="1x1"):
        run(predict_image(model, config, np.zeros((1, 1, 3), np.uint8)))


def test_evaluate_numbers_by_hand():
    config = ModelConfig(6, 32, 32)
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 200  # predicted class 2 everywhere
    truth = np.ones((64, 64), np.uint8)
    truth[:, :32] = 2
    result = run(evaluate(RedModel(config), config, [("a", image, truth)]))
    assert result["class_wise_IU"] == pytest.approx([0, 0, 0.5, 0, 0, 0])
    assert result["mean_IU"] == pytest.approx(0.5 / 6)
    assert result["frequency_weighted_IU"] == pytest.approx(0.25)
    full = result["full_resolution"]
    assert full["pixel_accuracy"] == pytest.approx(0.5)
    assert full["class_wise_IoU"][2] == pytest.approx(0.5)
    assert full["class_wise_IoU"][3] is None
    assert full["mean_IoU_present"] == pytest.approx(0.25)
    assert full["confusion_matrix"][1][2] == 64 * 32
