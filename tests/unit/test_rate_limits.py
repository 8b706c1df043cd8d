"""Rate limits (issue 30, item 6): a sliding minute, not a fixed one, and an IPv6 client keyed
by its /64 (api/limits.py)."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from api import limits
from api.deps import AppState
from api.errors import ApiError
from api.limits import check_rate_limits, client_key

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


class Clock:
    """The rate limiter's clock, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


async def test_a_burst_across_a_minute_boundary_is_held_to_the_limit(
    client: httpx.AsyncClient, state: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a fixed window, 30 questions in the last second of a minute and 30 in the first of
    the next were all accepted at 30/min."""
    state.settings.rate_limit_ip_per_minute = 30
    state.settings.rate_limit_session_per_minute = 0
    boundary = 1_000_020.0 * 60
    clock = Clock(boundary - 0.75)
    monkeypatch.setattr(limits, "time", SimpleNamespace(time=clock.time))

    async def ask() -> int:
        response = await client.post("/v1/chat", json={"message": "how do I install?"})
        return response.status_code

    before = [await ask() for _ in range(30)]
    clock.now = boundary + 0.75
    after = [await ask() for _ in range(30)]
    assert before == [202] * 30
    assert after == [429] * 30
    clock.now = boundary + 60 + 30  # half of the first burst's minute has slid out
    assert await ask() == 202


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", "unknown"),
    ],
)
def test_an_ipv6_client_is_its_64(address: str, key: str) -> None:
    assert client_key(address) == key


@pytest.mark.usefixtures("one_rate_window")
async def test_addresses_of_one_64_share_a_limit(state: AppState) -> None:
    state.settings.rate_limit_ip_per_minute = 2
    await check_rate_limits(state, client_ip="2001:db8:1:2::1", session_id=None)
    await check_rate_limits(state, client_ip="2001:db8:1:2::2", session_id=None)
    with pytest.raises(ApiError) as refused:
        await check_rate_limits(state, client_ip="2001:db8:1:2:9999::3", session_id=None)
    assert refused.value.status == 429
    # Another /64 is another client.
    await check_rate_limits(state, client_ip="2001:db8:1:3::1", session_id=None)
