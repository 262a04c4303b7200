"""The circuit breaker's state machine, on a clock the test moves."""

import pytest

from pipelines.source.breaker import CircuitBreaker, Go, Reject, State, Wait


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def breaker(clock, **kw):
    return CircuitBreaker(window=10, min_calls=5, failure_ratio=0.5, cooldown=10, hold=30, clock=clock, **kw)


def test_stays_closed_below_the_failure_ratio(clock):
    b = breaker(clock)
    for failed in [True, False, False, True, False, False, True, False, False, False]:
        assert b.before_call() == Go()
        b.record(failed)
    assert b.state is State.CLOSED


def test_needs_min_calls_before_opening(clock):
    b = breaker(clock)
    for _ in range(4):
        b.record(True)
    assert b.state is State.CLOSED
    b.record(True)
    assert b.state is State.OPEN and b.times_opened == 1


def test_open_holds_then_rejects_and_trials_after_each_cooldown(clock):
    b = breaker(clock)
    for _ in range(5):
        b.record(True)
    decision = b.before_call()
    assert isinstance(decision, Wait) and 0 < decision.seconds <= 10  # a short blip is waited out
    clock.now += 10  # t=10: the cooldown is over
    assert b.before_call() == Go(trial=True)  # half-open: one trial
    assert isinstance(b.before_call(), Wait)  # others keep waiting while it runs
    clock.now += 15  # t=25: the slow trial fails
    b.record(True, trial=True)
    assert b.state is State.OPEN
    clock.now += 6  # t=31: the outage is older than the 30 s hold, the next trial is at t=35
    assert isinstance(b.before_call(), Reject)  # calls go to tier 2 at once
    clock.now += 4  # t=35
    assert b.before_call() == Go(trial=True)
    b.record(False, trial=True)  # the API answers again
    assert b.state is State.CLOSED and b.before_call() == Go()
    assert b.times_opened == 1  # one outage, however many trials


def test_late_results_of_calls_sent_before_opening_are_ignored(clock):
    b = breaker(clock)
    for _ in range(5):
        b.record(True)
    b.record(False)  # a call that was already in flight
    assert b.state is State.OPEN


def test_a_new_outage_after_recovery_counts_again(clock):
    b = breaker(clock)
    for _ in range(5):
        b.record(True)
    clock.now += 10
    assert b.before_call() == Go(trial=True)
    b.record(False, trial=True)
    for _ in range(5):
        b.record(True)
    assert b.state is State.OPEN and b.times_opened == 2


@pytest.mark.parametrize(
    ("kw", "message"), [({"failure_ratio": 0}, "failure_ratio"), ({"min_calls": 20, "window": 10}, "min_calls")]
)
def test_bad_settings_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        CircuitBreaker(**kw)
