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
