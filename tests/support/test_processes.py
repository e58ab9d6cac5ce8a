import subprocess
import time

import psutil

from tests.support.processes import any_running, live_command_lines


def test_a_zombie_is_not_running_but_a_sleeping_process_is() -> None:
    exited = subprocess.Popen(["sleep", "0"])
    sleeping = subprocess.Popen(["sleep", "30"])
    try:
        zombie = psutil.Process(exited.pid)
        deadline = time.monotonic() + 10
        while zombie.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
            time.sleep(0.05)  # not reaped yet: it stays a zombie until wait()
        running = psutil.Process(sleeping.pid)
        while not running.cmdline() and time.monotonic() < deadline:
            time.sleep(0.05)  # forked, not yet exec'd: no command line for a moment (loaded CI)
        processes = [zombie, running]
        assert live_command_lines(processes) == ["sleep 30"]
        assert any_running(processes, "30") and not any_running(processes, "sleep 0")
    finally:
        sleeping.kill()
        sleeping.wait()
        exited.wait()
