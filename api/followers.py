"""How many connections follow each job (its event stream, long-polls): a cap per job."""

from __future__ import annotations

from collections.abc import Callable

from api.errors import ApiError
from shared.errors import ErrorCode

__all__ = ["JobFollowers"]


class JobFollowers:
    """The connections following each job in this API process (event streams, long-polls), so
    one job's token cannot hold an unbounded number open (issue 30: ~500 of them at a 1,024 fd
    limit made the API answer everyone else 500). Counted per process because what runs out
    (file descriptors, the loop's time) is the process's; no Redis state to leak if it dies."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def open(self, job_id: str, limit: int) -> Callable[[], None]:
        """Count one more follower of `job_id`, or raise 429 `too_many_streams` when `limit`
        are open. Returns the function that ends it (calling it again does nothing)."""
        if self._open.get(job_id, 0) >= limit:
            raise ApiError(
                429,
                ErrorCode.TOO_MANY_STREAMS,
                f"This job already has {limit} connections following it; close one first.",
                headers={"Retry-After": "5"},
            )
        self._open[job_id] = self._open.get(job_id, 0) + 1
        ended = False

        def close() -> None:
            nonlocal ended
            if ended:
                return
            ended = True
            left = self._open[job_id] - 1
            if left:
                self._open[job_id] = left
            else:
                del self._open[job_id]

        return close

    def count(self, job_id: str) -> int:
        return self._open.get(job_id, 0)
