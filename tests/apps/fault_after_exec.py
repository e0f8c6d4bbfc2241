"""What fault_app.py exec_python turns into: fault_after_exec.py REPORT.

Reports signals like fault_app.py and spins in after_exec() for 30 s,
having made the file REPORT.after_exec (empty) as it begins: a test waits
for it rather than for a time, as start-up and imports may take seconds on
a loaded machine.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fault_app  # noqa: E402  (watches the signals: REPORT is argv[1])


def after_exec(end):
    x = 0
    while time.time() < end:
        x += 1
    return x


if __name__ == "__main__":
    open(sys.argv[1] + ".after_exec", "w").close()
    after_exec(time.time() + 30)
