"""Progress events, the drive loop and the time-left estimate."""

import pytest

from napari_thinseg.progress import (
    ItemProgress,
    Progress,
    Stopped,
    TimeLeft,
    as_message,
    relay,
    run,
    time_left_text,
)


def test_run_returns_the_result_and_hands_over_every_event():
    def job():
        for k in range(3):
            yield Progress(k + 1, 3, f"step {k + 1}")
        return "done"

    events = []
    assert run(job(), events.append) == "done"
    assert [e.step for e in events] == [1, 2, 3]


def test_time_left_from_the_rate_since_the_first_event():
    now = [100.0]
    left = TimeLeft(clock=lambda: now[0])
    assert left.update(0, 10) is None  # no rate yet
    now[0] += 5.0
    assert left.update(1, 10) == pytest.approx(45.0)
    now[0] += 5.0
    assert left.update(2, 10) == pytest.approx(40.0)
    assert left.update(10, 10) == 0.0
    # a new run (steps start again) starts a new estimate
    assert left.update(0, 4) is None


def test_time_before_the_first_event_does_not_count():
    now = [0.0]
    left = TimeLeft(clock=lambda: now[0])
    now[0] = 60.0  # a minute of loading TensorFlow
    assert left.update(3, 13) is None
    now[0] = 62.0
    assert left.update(4, 13) == pytest.approx(18.0)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (None, ""),
        (0.0, ""),
        (0.7, "about 1 s left"),
        (42.4, "about 42 s left"),
        (150, "about 2 min left"),
        (4000, "about 1 h 07 min left"),
    ],
)
def test_time_left_text(seconds, text):
    assert time_left_text(seconds) == text


def _three_steps():
    for k in range(3):
        yield Progress(k + 1, 3, f"step {k + 1}")
    return "result"


def test_relay_yields_the_sub_jobs_events_wrapped_and_returns_its_result():
    def outer():
        got = yield from relay(_three_steps(), lambda p: ItemProgress(1, 2, p))
        yield from relay(_three_steps(), as_message("again"))
        return got

    events = []
    assert run(outer(), events.append) == "result"
    assert [(e.index, e.progress.step) for e in events[:3]] == [
        (1, 1),
        (1, 2),
        (1, 3),
    ]
    assert [(e.step, e.message) for e in events[3:]] == [
        (1, "again"),
        (2, "again"),
        (3, "again"),
    ]


def test_relay_closes_the_sub_job_once_stop_turns_true():
    closed = []

    def job():
        try:
            yield from _three_steps()
        finally:
            closed.append(True)

    seen = []
    relayed = relay(job(), stop=lambda: len(seen) >= 1)
    with pytest.raises(Stopped):
        for event in relayed:
            seen.append(event)
    assert len(seen) == 1 and closed == [True]
