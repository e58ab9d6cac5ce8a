"""The model server's ports, chosen once per study and stored with it.

A resumed study must find what its previous run left behind: the docker backend names its
container after the gRPC port, and a run that picked new free ports would never meet the old
container (nor the old ports in a port check). So ports left at 0 ("pick free ones") are picked
on the first run and kept in the study's user attributes, per host (another host sharing the
study through PostgreSQL has its own free ports), and reused by every later run while they are
free. A stored port something else has taken since is chosen again (and stored): unlike a
configured port, nobody asked for that one. A killed tuner's container holding them is found by
its labels, not its name, so it is still removed (DockerBackend.prepare).
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import optuna

from tuner.servers.ports import port_in_use

PORTS_ATTR = "server_ports"


def study_ports(
    study: optuna.Study,
    grpc_port: int,
    rest_port: int,
    free_port: Callable[[], int],
    host: str | None = None,
    in_use: Callable[[int], bool] = lambda port: port_in_use("127.0.0.1", port),
) -> tuple[int, int]:
    """(grpc, rest): configured ports win; else this host's stored ones while free; else free
    ones, stored now. A configured port is not stored: the config stays the source of truth."""
    if grpc_port and rest_port:
        return grpc_port, rest_port
    host = host or socket.gethostname()
    stored = dict(study.user_attrs.get(PORTS_ATTR) or {})
    mine = stored.get(host) or {}

    def reuse(key: str) -> int:
        port = int(mine.get(key) or 0)
        return port if port and not in_use(port) else 0

    chosen_grpc = grpc_port or reuse("grpc") or free_port()
    chosen_rest = rest_port or reuse("rest") or free_port()
    while chosen_rest == chosen_grpc:
        chosen_rest = free_port()
    wanted = {"grpc": chosen_grpc, "rest": chosen_rest}
    if mine != wanted:
        stored[host] = wanted
        study.set_user_attr(PORTS_ATTR, stored)
    return chosen_grpc, chosen_rest
