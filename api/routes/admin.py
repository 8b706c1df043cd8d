"""The maintainer's report (issue 20): GET /v1/admin/report behind the admin token, and the
/admin page that draws it (one static HTML file: no external requests, works offline).

The report is built by a worker (it embeds questions and searches the index, which the API
never does): this endpoint queues a report job on the chat queue and waits for its result,
as POST /v1/retrieve does.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import AdminDep, StateDep
from api.enqueue import run_and_wait
from api.errors import ApiError
from api.routes.widget import STATIC_DIR
from api.schemas import ErrorBody
from shared.errors import ErrorCode
from shared.jobs import JobKind
from shared.queues import TaskName
from shared.report_model import Report, parse_since, report_period

__all__ = ["router"]

router = APIRouter(tags=["admin"])


@router.get(
    "/v1/admin/report",
    response_model=Report,
    responses={
        401: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
        504: {"model": ErrorBody, "description": "The report did not finish in time"},
    },
)
async def get_report(
    state: StateDep,
    _admin: AdminDep,
    since: Annotated[
        str, Query(max_length=12, description="Look-back: 24h, 7d, 2w", examples=["7d"])
    ] = "7d",
    site: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Only this site")
    ] = None,
) -> Report:
    """Knowledge gaps, feedback and usage over the look-back (no session ids, tokens or IPs)."""
    try:
        period = report_period(parse_since(since), site)
    except ValueError as error:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, str(error).replace("--", "")) from error
    result = await run_and_wait(
        state,
        JobKind.REPORT,
        TaskName.REPORT,
        request=period,
        timeout_s=state.settings.report_timeout_s,
        timeout_code=ErrorCode.REPORT_TIMEOUT,
        timeout_message=f"The report did not finish within {state.settings.report_timeout_s:g} s "
        "(BOOKCHAT_REPORT_TIMEOUT_S); is a worker consuming the chat queue?",
        retry_after_s=10,
    )
    return Report.model_validate(result)


@functools.cache
def _page() -> tuple[bytes, str]:
    """The page and its Content-Security-Policy: only its own inline script (by hash) and
    style, and requests to this origin, so it can make no external request."""
    body = (STATIC_DIR / "admin.html").read_bytes()
    scripts = re.findall(rb"<script>(.*?)</script>", body, flags=re.DOTALL)
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in scripts
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; form-action 'none'; frame-ancestors 'none'; "
        "base-uri 'none'"
    )
    return body, policy


@router.get("/admin", include_in_schema=False)
async def admin_page() -> Response:
    """The report page. It holds no data: it asks for the admin token and fetches the report."""
    body, policy = _page()
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": policy,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )
