"""The adaptive rate (AIMD) and the gradient concurrency limit, on deterministic clocks."""

import math

import pytest

from pipelines.source.ratecontrol import (
    INF,
    GradientLimit,
    RatePolicy,
    RateState,
    current_rate,
    reserve,
    sent_rate,
    throttled,
)


def test_requests_are_paced_evenly_at_the_ceiling():
    state, policy = RateState(), RatePolicy(ceiling=10)
    waits = [reserve(state, policy, now=100.0) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    # after an idle second the next request goes at once: no burst was saved up
    assert reserve(state, policy, now=102.0) == 0.0
    assert reserve(state, policy, now=102.0) == pytest.approx(0.1)


def test_no_ceiling_means_no_pacing_until_the_api_says_otherwise():
    state, policy = RateState(), RatePolicy()
    assert all(reserve(state, policy, now=5.0) == 0.0 for _ in range(1000))
    assert current_rate(state, policy, 5.0) == INF


def test_a_429_pauses_everyone_for_retry_after_and_cuts_the_rate_once_per_event():
    state, policy = RateState(), RatePolicy(ceiling=100, backoff=0.5)
    for i in range(100):  # 100 requests sent over the second before the 429
        reserve(state, policy, now=10.0 + i / 100)
    assert sent_rate(state, 11.0) == pytest.approx(100, abs=1)
    assert throttled(state, policy, now=11.0, retry_after=2.0) is True
    assert current_rate(state, policy, 11.0) == pytest.approx(50)
    # the 429s of requests already in flight belong to the same event: paused, not cut again
    assert throttled(state, policy, now=11.05, retry_after=2.0) is False
    assert current_rate(state, policy, 11.05) == pytest.approx(50 * (1 + 0.02 * 0.05))
    assert reserve(state, policy, now=11.1) == pytest.approx(13.05 - 11.1)


def test_the_cut_starts_from_what_was_really_sent_when_no_ceiling_is_known():
    state, policy = RateState(), RatePolicy(backoff=0.8)
    for i in range(40):
        reserve(state, policy, now=3.0 + i / 40)
    throttled(state, policy, now=4.0, retry_after=1.0)
    assert current_rate(state, policy, 4.0) == pytest.approx(0.8 * 40, rel=0.05)


def test_the_rate_grows_back_linearly_up_to_the_ceiling_and_never_below_the_floor():
    state, policy = RateState(rate=80.0, since=0.0), RatePolicy(ceiling=100, growth=0.05, floor=5)
    assert current_rate(state, policy, 2.0) == pytest.approx(88)
    assert current_rate(state, policy, 100.0) == 100
    low = RateState(rate=5.0, since=0.0)
    throttled(low, policy, now=0.5, retry_after=1.0)
    assert current_rate(low, policy, 0.5) == 5


def test_policy_rejects_nonsense():
    with pytest.raises(ValueError, match="backoff"):
        RatePolicy(backoff=1.5)
    with pytest.raises(ValueError, match="ceiling"):
        RatePolicy(ceiling=0)


class TokenBucketApi:
    """The sample API's limiter: R per second, a one-second burst, 429 + Retry-After when empty."""

    def __init__(self, rate: float) -> None:
        self.rate, self.tokens, self.stamp = rate, rate, 0.0

    def take(self, now: float) -> float | None:
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return max(1.0, math.ceil((1 - self.tokens) / self.rate))


def simulate(ceiling: float, true_rate: float = 200, seconds: float = 60, latency: float = 0.02, window: int = 16):
    """A client keeping ``window`` requests in flight against the bucket, on a simulated clock."""
    api, state, policy = TokenBucketApi(true_rate), RateState(), RatePolicy(ceiling=ceiling)
    ready = [0.0] * window  # when each of the client's slots may reserve its next request
    accepted = refused = 0
    while min(ready) < seconds:
        slot = ready.index(min(ready))
        now = ready[slot]
        send_at = now + reserve(state, policy, now)
        retry_after = api.take(send_at)
        if retry_after is None:
            accepted += 1
        else:
            refused += 1
            throttled(state, policy, send_at + latency, retry_after)
        ready[slot] = send_at + latency
    return accepted / seconds, refused / (accepted + refused)


@pytest.mark.parametrize("ceiling", [400.0, INF], ids=["twice the true rate", "no rate at all"])
def test_the_rate_converges_under_the_apis_without_being_told(ceiling):
    throughput, refused_share = simulate(ceiling)
    assert refused_share <= 0.02
    assert throughput >= 0.9 * 200


def test_told_the_true_rate_it_never_throttles():
    throughput, refused_share = simulate(200.0)
    assert refused_share == 0
    assert throughput >= 0.98 * 200


def feed(limit: GradientLimit, rtt: float, start: float, seconds: float, per_second: int = 200) -> float:
    now = start
    for _ in range(int(seconds * per_second)):
        now += 1 / per_second
        limit.sample(rtt, now)
    return now


def test_steady_latency_keeps_the_limit_at_its_maximum():
    limit = GradientLimit(maximum=16)
    feed(limit, 0.02, 0.0, 10)
    assert limit.allowed() == 16


def test_tripled_latency_brings_the_limit_down_and_recovery_brings_it_back():
    limit = GradientLimit(maximum=16, minimum=2)
    now = feed(limit, 0.02, 0.0, 10)
    now = feed(limit, 0.06, now, 8)
    assert limit.allowed() <= 0.6 * 16
    feed(limit, 0.02, now, 10)
    assert limit.allowed() >= 0.9 * 16


def test_the_limit_stays_within_its_bounds():
    limit = GradientLimit(maximum=8, minimum=5)
    feed(limit, 0.01, 0.0, 2)
    feed(limit, 1.0, 2.0, 10)  # a hundred times slower: the gradient alone would settle at 4
    assert limit.allowed() == 5
    with pytest.raises(ValueError):
        GradientLimit(maximum=2, minimum=3)
