"""The base of our locustfiles' HTTP users: Locust's FastHttpUser with a client that sends a
request once more when the server closed its pooled connection unanswered
(tuner/load/keepalive.py). Kept apart from keepalive.py because importing Locust patches
the whole process for gevent, which only Locust's own processes may be."""

from __future__ import annotations

from typing import Any

from locust import FastHttpUser

from tuner.load.keepalive import ResendingClientPool


class ResendingHttpUser(FastHttpUser):
    """A FastHttpUser whose requests survive the server closing an idle pooled connection
    as it is reused; the base of our locustfiles' HTTP users."""

    abstract = True

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        agent = self.client.client
        agent.clientpool = ResendingClientPool(**agent.clientpool.client_args)
