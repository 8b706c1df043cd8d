"""One job's followers are capped (issue 30, item 6): its stream token held unlimited SSE
connections, ~500 of which at a 1,024 fd limit made the API answer everyone else 500."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import httpx
import pytest

from tests.fake_llm import FakeLLM
from tests.faults import wait_for
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_one_jobs_token_holds_at_most_the_cap_of_streams_and_long_polls(
    make_stack: Callable[..., Stack],
) -> None:
    with FakeLLM(latency_first_token=30.0) as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        stack.settings.max_job_followers = 3  # the API runs in this process, on these settings
        accepted = stack.chat("How do I send the arm to its home pose?")
        with (
            httpx.Client(base_url=stack.base_url, timeout=30) as http,
            contextlib.ExitStack() as held,
        ):
            streams = [
                held.enter_context(http.stream("GET", accepted["events_url"])) for _ in range(3)
            ]
            assert [s.status_code for s in streams] == [200, 200, 200]
            extra = http.get(accepted["events_url"])
            assert extra.status_code == 429, extra.text
            assert extra.json()["code"] == "too_many_streams"
            assert int(extra.headers["Retry-After"]) > 0
            long_poll = http.get(f"{accepted['status_url']}&wait=5")
            assert long_poll.status_code == 429
            # Everyone else is served, and a plain poll of the job too.
            assert stack.http.get(accepted["status_url"]).status_code == 200
            other = stack.chat("How do I calibrate the gripper?")
            with stack.http.stream("GET", other["events_url"]) as own:
                assert own.status_code == 200
            streams[0].close()
            # A closed stream gives its place back (once the API has seen the disconnect).
            wait_for(
                lambda: http.get(f"{accepted['status_url']}&wait=0.1").status_code == 200,
                timeout=20,
                what="the closed stream's place",
            )
