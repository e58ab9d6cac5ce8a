"""The model server's ports, chosen once per study and stored with it.

A resumed study must find what its previous run left behind: the docker backend names its
container after the gRPC port, and a run that picked new free ports would never meet the old
container (nor the old ports in a port check). So ports left at 0 ("pick free ones") are picked
on the first run and kept in the study's user attributes, per host (another host sharing the
study through PostgreSQL has its own free ports), and reused by every later run while they are
free. A stored port something else has taken since is chosen again (and stored): unlike a
configured port, nobody asked for that one. A killed tuner's container holding them is found by
its labels, not its name, so it is still removed (DockerBackend.prepare).

Several tuners of the study on one host each have a slot (tuner/slot.py); slot N > 0 stores
its ports under `host#N`, and no tuner picks a port another slot of its host has stored: those
ports are free between that tuner's trials, yet taken. Call this with the study lock held, as
it reads and rewrites one attribute every tuner of the study shares.
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
    slot: int = 0,
) -> tuple[int, int]:
    """(grpc, rest): configured ports win; else this host's stored ones while free; else free
    ones, stored now. A configured port is not stored: the config stays the source of truth."""
    if grpc_port and rest_port:
        return grpc_port, rest_port
    host = host or socket.gethostname()
    key = host if slot == 0 else f"{host}#{slot}"
    stored = dict(study.user_attrs.get(PORTS_ATTR) or {})
    mine = stored.get(key) or {}
    taken = {
        int(port)
        for other, ports in stored.items()
        if other != key and (other == host or other.startswith(f"{host}#"))
        for port in ports.values()
    }

    def reuse(name: str) -> int:
        port = int(mine.get(name) or 0)
        return port if port and port not in taken and not in_use(port) else 0

    def fresh() -> int:
        port = free_port()
        while port in taken:
            port = free_port()
        return port

    chosen_grpc = grpc_port or reuse("grpc") or fresh()
    chosen_rest = rest_port or reuse("rest") or fresh()
    while chosen_rest == chosen_grpc:
        chosen_rest = fresh()
    wanted = {"grpc": chosen_grpc, "rest": chosen_rest}
    if mine != wanted:
        stored[key] = wanted
        study.set_user_attr(PORTS_ATTR, stored)
    return chosen_grpc, chosen_rest
