"""The workers' Redis broker transport: kombu's, with a channel that survives a broker that
has gone away and messages it cannot read (issue 30, items 3 and 7). Used through Celery's
`broker_transport` setting (worker/celery_app.py); the API's send-only client keeps kombu's own.

**Broker gone.** kombu 5.7.0 (`kombu/transport/redis.py`, `Channel.close`) first reads the reply
of a BRPOP still in flight. A worker with a free pool slot always has one in flight, so when
Redis goes away that read raises a connection error before anything is closed. Celery's
reconnect path (`Consumer.on_connection_error_after_connected`) collects the connection, which
detaches the transport (`transport.client = None`) while the channel is still open; its next
`close()` then tries to give the unacknowledged messages back through a pool it can no longer
build (`AttributeError: 'NoneType' object has no attribute 'hostname'`). That is not a
connection error, so Celery treats it as unrecoverable and the worker process exits: 4 of 4
tries with the Procfile's `bookchat worker`, while the tasks it ran were fine. Here a connection
error from that read means there is no reply to wait for: the channel closes as if none were in
flight. Messages the worker held unacknowledged stay in kombu's unacked index in Redis and come
back after the visibility timeout (the stale-job cleanup requeues their jobs sooner).

**Malformed messages.** Anyone who can write to the broker can push something that is not a
task message: text that is not JSON, JSON that is not a kombu envelope, headers or a body of the
wrong type, a `timelimit` that is not a pair. kombu (reading the envelope) and Celery (reading
the task) raise on those, outside any handler, and the worker process exits; the message is
given back at shutdown, so every worker that starts takes it and exits too. Here such a message
is logged and dropped (acknowledged, if kombu had taken it as a delivery), and the worker goes
on. A job whose message it was stays `queued`; the stale-job cleanup requeues it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from queue import Empty
from typing import Any

from kombu.transport import redis

__all__ = ["Channel", "Transport"]


log = logging.getLogger(__name__)


class Channel(redis.Channel):
    """kombu's Redis channel; `close` survives a broker that is gone, delivery survives a
    message that is not one."""

    def _brpop_read(self, **options: Any) -> Any:
        """kombu's read of one popped message; one it cannot even turn into a delivery (not
        JSON, not an envelope) is logged and dropped. Errors of the delivery's own handling
        are caught by `basic_consume`'s callback below, so they never reach here."""
        channel: Any = self
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except (Empty, *channel.connection_errors):
            raise
        except Exception:
            log.exception("dropped a broker message that is not a kombu message")
            return False

    def basic_consume(
        self,
        queue: str,
        no_ack: bool,
        callback: Callable[..., Any] | None,
        consumer_tag: str | None,
        **kw: Any,
    ) -> Any:
        """kombu's, with a callback that logs and refuses (acknowledges, never requeues) a
        message Celery raised on instead of letting the error end the worker."""
        channel: Any = self

        def refusing(message: Any) -> Any:
            assert callback is not None  # kombu always passes one
            try:
                return callback(message)
            except channel.connection_errors:
                raise
            except Exception:
                log.exception(
                    "dropped a malformed task message (delivery %s)", message.delivery_tag
                )
                message.reject_log_error(log, channel.connection_errors)
                return None

        return super().basic_consume(queue, no_ack, refusing, consumer_tag, **kw)

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
