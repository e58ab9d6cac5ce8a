"""Reading a pyinstrument session of the service: where the event loop's busy time goes,
grouped by package (our modules one by one), with start-up imports and idle waits left out."""

from __future__ import annotations

from pathlib import Path


def _group(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/service/" in path:
        return "service/" + path.rsplit("/", 1)[1]
    if "/lib/python3" in path:
        return "stdlib:" + path.split("/lib/python3")[1].split("/")[1]
    return path


def by_package(session_path: Path) -> dict[str, float]:
    """Busy time of the event loop grouped by package, from a pyinstrument session.

    Counted: everything under asyncio's `Runner.run` except idle waits (the selector's poll, or
    uvloop's C loop, which shows as the self time of `Runner.run`) and imports (start-up).
    A built-in (socket.send, SimpleQueue.put, ...) counts for the package that called it.
    """
    from pyinstrument.session import Session

    def runners(frame):
        if frame.function == "run" and (frame.file_path or "").endswith("asyncio/runners.py"):
            yield frame
            return
        for child in frame.children:
            yield from runners(child)

    groups: dict[str, float] = {}

    def walk(frame, stack: list) -> None:
        if frame.function in ("_find_and_load", "import_from_string"):
            return  # start-up imports, not the request path
        if frame.children:
            for child in frame.children:
                walk(child, [*stack, frame])
            return
        if frame.is_synthetic and len(stack) == 1:
            return  # uvloop's C loop: idle waits and libuv work, invisible to the profiler
        chain = [frame, *reversed(stack)]
        named = next(f for f in chain if not f.is_synthetic)
        if named.function in ("epoll.poll", "poll"):
            return  # asyncio's selector waiting for the network
        owner = next(
            (f.file_path for f in chain if f.file_path and not f.file_path.startswith("<")), ""
        )
        group = _group(owner or named.function)
        groups[group] = groups.get(group, 0.0) + frame.time

    for runner in runners(Session.load(session_path).root_frame()):
        for child in runner.children:
            walk(child, [runner])
    busy = sum(groups.values()) or 1.0
    ranked = sorted(groups.items(), key=lambda item: -item[1])
    return {group: round(100 * value / busy, 1) for group, value in ranked if value / busy > 0.005}
