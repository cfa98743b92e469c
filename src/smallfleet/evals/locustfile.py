"""Locust users for `smallfleet bench load` (run by Locust in its own process: it patches the standard library
with gevent, so it never runs inside the gateway's or the test's process).

Each user sends one chat completion per `SMALLFLEET_LOAD_PACING` seconds (open pacing, so overload shows as
it would in production: more clients than the gateway can serve at once). Every answer's status is counted,
429s with and without `Retry-After` apart, along with the trace ids of the 200s; at exit the counts go to
the JSON file `SMALLFLEET_LOAD_OUT`.
"""

from __future__ import annotations

import json
import os
from collections import Counter

from locust import FastHttpUser, constant_pacing, events, task

_statuses: Counter[str] = Counter()
_answered: list[str] = []


class ChatUser(FastHttpUser):
    wait_time = constant_pacing(float(os.environ.get("SMALLFLEET_LOAD_PACING", "1.0")))
    network_timeout = 60.0
    connection_timeout = 10.0

    @task
    def chat(self) -> None:
        with self.client.post("/v1/chat/completions", json={
                "model": os.environ.get("SMALLFLEET_LOAD_MODEL", "upstream"), "max_tokens": 16,
                "messages": [{"role": "user", "content": "Summarise: the parcel arrived late and damaged."}]},
                catch_response=True, name="chat") as reply:
            status = reply.status_code
            if status == 429:
                _statuses["429_retry_after" if reply.headers.get("retry-after") else "429_without_retry_after"] += 1
                reply.success()  # overload answered as it should be
            else:
                _statuses[str(status)] += 1
                if status == 200:
                    _answered.append(reply.headers.get("x-smallfleet-trace-id", ""))
                    reply.success()
                else:
                    reply.failure(f"status {status}")


@events.quitting.add_listener
def _write(environment, **_: object) -> None:  # noqa: ANN001
    out = os.environ.get("SMALLFLEET_LOAD_OUT")
    if out:
        with open(out, "w") as f:
            json.dump({"statuses": dict(_statuses), "answered": _answered}, f)
