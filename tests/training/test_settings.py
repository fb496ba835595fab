"""The crop-size rule both shells apply (training.settings.crop_size)."""

from types import SimpleNamespace

from napari_thinseg.training.settings import crop_size


def test_given_sides_win_then_the_start_model_then_the_budget():
    start = SimpleNamespace(input_height=320, input_width=480)
    proposal = SimpleNamespace(input_height=224, input_width=256)
    assert crop_size() == (416, 608)  # keras-segmentation's
    assert crop_size(proposal=proposal) == (224, 256)
    assert crop_size(start_config=start, proposal=proposal) == (320, 480)
    assert crop_size((256, None), start, proposal) == (256, 480)
    assert crop_size((None, 96), None, proposal) == (224, 96)
