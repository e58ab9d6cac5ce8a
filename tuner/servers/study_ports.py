"""The model server's ports, chosen once per study and stored with it.

A resumed study must find what its previous run left behind: the docker backend names its
container after the gRPC port, and a run that picked new free ports would never meet the old
container (nor the old ports in a port check). So ports left at 0 ("pick free ones") are picked
on the first run and kept in the study's user attributes, per host (another host sharing the
study through PostgreSQL has its own free ports), and reused by every later run.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import optuna

PORTS_ATTR = "server_ports"


def study_ports(
    study: optuna.Study,
    grpc_port: int,
    rest_port: int,
    free_port: Callable[[], int],
    host: str | None = None,
) -> tuple[int, int]:
    """(grpc, rest): configured ports win; else this host's stored ones; else free ones,
    stored now. A configured port is not stored: the config stays the source of truth."""
    if grpc_port and rest_port:
        return grpc_port, rest_port
    host = host or socket.gethostname()
    stored = dict(study.user_attrs.get(PORTS_ATTR) or {})
    mine = stored.get(host) or {}
    chosen_grpc = grpc_port or int(mine.get("grpc") or 0) or free_port()
    chosen_rest = rest_port or int(mine.get("rest") or 0) or free_port()
    while chosen_rest == chosen_grpc:
        chosen_rest = free_port()
    wanted = {"grpc": chosen_grpc, "rest": chosen_rest}
    if mine != wanted:
        stored[host] = wanted
        study.set_user_attr(PORTS_ATTR, stored)
    return chosen_grpc, chosen_rest
