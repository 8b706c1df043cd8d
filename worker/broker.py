"""The workers' Redis broker transport: kombu's, with a channel that still closes when the
broker has gone away (issue 30, item 3).

kombu 5.7.0 (`kombu/transport/redis.py`, `Channel.close`) first reads the reply of a BRPOP still
in flight. A worker with a free pool slot always has one in flight, so when Redis goes away that
read raises a connection error before anything is closed. Celery's reconnect path
(`Consumer.on_connection_error_after_connected`) collects the connection, which detaches the
transport (`transport.client = None`) while the channel is still open; its next `close()` then
tries to give the unacknowledged messages back through a pool it can no longer build
(`AttributeError: 'NoneType' object has no attribute 'hostname'`). That is not a connection
error, so Celery treats it as unrecoverable and the worker process exits: 4 of 4 tries with the
Procfile's `bookchat worker`, while the tasks it ran were fine.

Here a connection error from that read means there is no reply to wait for: the channel closes
as if none were in flight. A message the BRPOP popped but never delivered, and the messages the
worker held unacknowledged, stay in kombu's unacked index in Redis and come back after the
visibility timeout (and the stale-job cleanup requeues their jobs sooner). Used through Celery's
`broker_transport` setting (worker/celery_app.py); the API's send-only client keeps kombu's own.
"""

from __future__ import annotations

from contextlib import suppress
from queue import Empty
from typing import Any

from kombu.transport import redis

__all__ = ["Channel", "Transport"]


class Channel(redis.Channel):
    """kombu's Redis channel; `close` survives a broker that is gone."""

    def close(self) -> None:
        channel: Any = self  # kombu's stubs leave out the poller's members
        if channel._in_poll:
            # kombu's own read (it resets `_in_poll` whatever happens); a connection error
            # means no reply will ever come.
            with suppress(Empty, *channel.connection_errors):
                channel._brpop_read()
        super().close()


class Transport(redis.Transport):
    """kombu's Redis transport with the `Channel` above."""

    Channel = Channel
