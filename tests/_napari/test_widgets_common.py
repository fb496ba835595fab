from napari_thinseg._napari.widgets._common import time_left_status
from napari_thinseg.progress import Progress


def test_time_left_status_counts_from_the_first_event():
    now = [100.0]
    shown = []
    show = time_left_status(shown.append, "plane", clock=lambda: now[0])
    show(Progress(1, 5, "plane 1"))
    now[0] += 3.0
    show(Progress(2, 5, "plane 2"))
    now[0] += 3.0
    show("not a progress event")  # other yields are left alone
    show(Progress(3, 5, "plane 3"))
    now[0] += 6.0
    show(Progress(5, 5, "plane 5"))
    assert shown == [
        "plane 1 of 5",  # no rate yet
        "plane 2 of 5 (about 9 s left)",
        "plane 3 of 5 (about 6 s left)",
        "plane 5 of 5",  # done
    ]


def test_the_status_line_holds_the_height_of_its_lines(qtbot):
    """A layout short of room squeezed a plain wrapped label to one line
    (the Train tab's result, cut in half, with the Predict dock above
    it); the status line's minimum height follows its text and width."""
    from napari_thinseg._napari.widgets._common import status_label

    label = status_label()
    qtbot.addWidget(label)
    label.resize(400, 20)
    label.show()
    label.setText("epoch 1/4")
    one_line = label.minimumHeight()
    assert one_line == label.heightForWidth(400) > 0
    label.setText(
        "training done (epoch 4); held-out strokes: 61 % -> 78 % agree; "
        "kept the fine-tuned model; last checkpoint /data/models/thinseg"
    )
    two_lines = label.minimumHeight()
    assert two_lines == label.heightForWidth(400) > one_line
    label.resize(200, two_lines)  # a narrower dock: more lines
    qtbot.wait(10)
    assert label.minimumHeight() == label.heightForWidth(200) > two_lines
