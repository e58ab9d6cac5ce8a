"""The model server's ports, chosen once per study and slot and stored with the study.

A resumed study must find what its previous run left behind: the docker backend names its
container after the gRPC port, and a run that picked new free ports would never meet the old
container (nor the old ports in a port check). So ports left at 0 ("pick free ones") are picked
on the first run and kept in the study's user attributes, per host (another host sharing the
study through PostgreSQL has its own free ports), and reused by every later run while they are
free. A stored port something else has taken since is chosen again (and stored): unlike a
configured port, nobody asked for that one. A killed tuner's container holding them is found by
its labels, not its name, so it is still removed (DockerBackend.prepare).

Several tuners of the study on one host each have a slot (tuner/coordination/slot.py), whatever
their workdir; slot N > 0 stores its ports under `host#N`, and no tuner picks a port another slot of
its host has stored: those ports are free between that tuner's trials, yet taken. Tuners of
other studies keep off them through the host's port reservations (tuner/servers/reservations.py),
which every port chosen here is taken in. Call these with the study lock held, as they read and
rewrite one attribute every tuner of the study shares.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import optuna

from tuner.errors import TunerError
from tuner.servers.ports import port_in_use
from tuner.servers.reservations import PortReservations

log = logging.getLogger("tuner")
PORTS_ATTR = "server_ports"
MAX_PICKS = 100  # free ports asked of the kernel before giving up on finding an unreserved one


def study_ports(
    study: optuna.Study,
    grpc_port: int,
    rest_port: int,
    free_port: Callable[[], int],
    host: str | None = None,
    in_use: Callable[[int], bool] = lambda port: port_in_use("127.0.0.1", port),
    slot: int = 0,
    reservations: PortReservations | None = None,
) -> tuple[int, int]:
    """(grpc, rest): configured ports win; else this slot's stored ones while free; else free
    ones, stored now. A configured port is not stored: the config stays the source of truth.
    With `reservations`, every chosen port is reserved on this host, and a port reserved by
    another tuner (or stored by another study's slot) is not chosen."""
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
    reserve = reservations.reserve if reservations is not None else lambda port: True

    def usable(port: int) -> bool:
        return port not in taken and not in_use(port) and reserve(port)

    def reuse(name: str) -> int:
        port = int(mine.get(name) or 0)
        return port if port and usable(port) else 0

    def fresh(besides: set[int]) -> int:
        for _ in range(MAX_PICKS):
            port = free_port()
            if port not in besides and usable(port):
                return port
        raise TunerError(
            f"no free port for the model server after {MAX_PICKS} tries: every one the system "
            "offered is held by a tuner of this host; set server.grpc_port and server.rest_port"
        )

    chosen_grpc = grpc_port or reuse("grpc") or fresh({rest_port, int(mine.get("rest") or 0)})
    chosen_rest = rest_port or reuse("rest")
    if not chosen_rest or chosen_rest == chosen_grpc:
        chosen_rest = fresh({chosen_grpc})
    wanted = {"grpc": chosen_grpc, "rest": chosen_rest}
    if reservations is not None:
        for old in {int(port) for port in mine.values()} - set(wanted.values()):
            reservations.release(old)
    configured = {"grpc": grpc_port, "rest": rest_port}
    for name, port in mine.items():
        if not configured.get(name) and int(port) != wanted.get(name):
            log.warning(
                "event=stored_port_moved port=%s name=%s chosen=%s: something else holds the "
                "port this tuner stored for server.%s_port; it chose another",
                port,
                name,
                wanted.get(name),
                name,
            )
    if mine != wanted:
        stored[key] = wanted
        study.set_user_attr(PORTS_ATTR, stored)
    return chosen_grpc, chosen_rest


def ports_again(
    study: optuna.Study,
    grpc_port: int,
    rest_port: int,
    free_port: Callable[[], int],
    taken: int,
    host: str | None = None,
    in_use: Callable[[int], bool] = lambda port: port_in_use("127.0.0.1", port),
    slot: int = 0,
    reservations: PortReservations | None = None,
) -> tuple[int, int] | None:
    """After `taken` turned out to be in use: this slot's ports with it chosen again (and
    stored), or None when the user configured it, as only they may choose another."""
    if taken in (grpc_port, rest_port):
        return None
    return study_ports(
        study,
        grpc_port,
        rest_port,
        free_port,
        host=host,
        in_use=lambda port: port == taken or in_use(port),
        slot=slot,
        reservations=reservations,
    )
