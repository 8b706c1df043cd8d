"""The connections following answers are capped per job and per client (issue 30, item 6): one
job's stream token held unlimited SSE connections, ~500 of which at a 1,024 fd limit made the
API answer everyone else 500."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import httpx
import pytest

from tests.fake_llm import FakeLLM
from tests.faults import wait_for
from tests.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

QUESTION = "How do I send the arm to its home pose?"


def test_streams_and_long_polls_are_capped_per_job_and_per_client(
    make_stack: Callable[..., Stack],
) -> None:
    with FakeLLM(latency_first_token=30.0) as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        # The API runs in this process, on these settings.
        stack.settings.max_job_followers = 3
        stack.settings.max_client_followers = 5
        first, second = stack.chat(QUESTION), stack.chat(QUESTION)
        with (
            httpx.Client(base_url=stack.base_url, timeout=30) as http,
            contextlib.ExitStack() as held,
        ):

            def follow(url: str) -> httpx.Response:
                return held.enter_context(http.stream("GET", url))

            streams = [follow(first["events_url"]) for _ in range(3)]
            assert [s.status_code for s in streams] == [200] * 3
            extra = http.get(first["events_url"])
            assert extra.status_code == 429, extra.text
            assert extra.json()["code"] == "too_many_streams"
            assert int(extra.headers["Retry-After"]) > 0
            assert http.get(f"{first['status_url']}&wait=5").status_code == 429
            assert http.get(first["status_url"]).status_code == 200  # a plain poll is no follower

            # The client's cap counts its streams of every job.
            assert [follow(second["events_url"]).status_code for _ in range(2)] == [200] * 2
            assert http.get(f"{second['status_url']}&wait=5").status_code == 429

            # Another client is served.
            other = httpx.HTTPTransport(local_address="127.0.0.2")
            with (
                httpx.Client(base_url=stack.base_url, timeout=30, transport=other) as elsewhere,
                elsewhere.stream("GET", second["events_url"]) as theirs,
            ):
                assert theirs.status_code == 200

            streams[0].close()
            # A closed stream gives its place back (once the API has seen the disconnect).
            wait_for(
                lambda: http.get(f"{first['status_url']}&wait=0.1").status_code == 200,
                timeout=20,
                what="the closed stream's place",
            )
