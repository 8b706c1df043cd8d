"""How many connections follow jobs (event streams, long-polls): caps per job and per client."""

from __future__ import annotations

from collections.abc import Callable

from api.errors import ApiError
from shared.errors import ErrorCode

__all__ = ["Followers"]


class Followers:
    """The connections following jobs in this API process (event streams, long-polls), counted
    per job and per client, so neither one job's token nor one client's many jobs can hold an
    unbounded number open (issue 30: ~500 on one token at a 1,024 fd limit made the API answer
    everyone else 500). Counted per process because what runs out (file descriptors, the
    loop's time) is the process's; no Redis state to leak if it dies."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def open(
        self, *, job_id: str, client: str, per_job: int, per_client: int
    ) -> Callable[[], None]:
        """Count one more follower of `job_id` from `client` (a `client_key`), or raise 429
        `too_many_streams` when `per_job` follow that job or `per_client` are that client's.
        Returns the function that ends it (calling it again does nothing)."""
        keys = (f"job:{job_id}", f"client:{client}")
        for key, limit in zip(keys, (per_job, per_client), strict=True):
            if self._open.get(key, 0) >= limit:
                raise ApiError(
                    429,
                    ErrorCode.TOO_MANY_STREAMS,
                    f"Too many connections follow this {key.partition(':')[0]}'s answers "
                    f"(at most {limit}); close one first.",
                    headers={"Retry-After": "5"},
                )
        for key in keys:
            self._open[key] = self._open.get(key, 0) + 1
        ended = False

        def close() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            for key in keys:
                left = self._open[key] - 1
                if left:
                    self._open[key] = left
                else:
                    del self._open[key]

        return close
