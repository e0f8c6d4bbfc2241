"""subinterp.py DELAY SECONDS: a sub-interpreter created after start.

Prints "ready", sleeps DELAY seconds (so a profiler attached at "ready" is
running before the sub-interpreter exists), then starts a thread that creates
a sub-interpreter and runs busy_in_subinterp in it for SECONDS seconds, while
the main thread sleeps; then exits at once (os._exit: no finalization with a
sub-interpreter still running).

How the sub-interpreter is made, by version:
  3.8-3.12  _xxsubinterpreters.create() and run_string (3.12: own GIL)
  3.13+     _interpreters.create() and exec (own GIL)
  2.7-3.7   Py_NewInterpreter and PyRun_SimpleString through ctypes, from
            the thread: between the two calls Python code runs in the main
            interpreter's frame with the sub-interpreter's thread state
            current, which is safe only while no other thread wants the
            GIL (the main thread sleeps, nothing else runs).  The thread
            then stays in C and never swaps back: the process ends with
            os._exit.
The thread that runs the sub-interpreter (run_subinterp) has a thread state
in each interpreter; a profiler shows busy_in_subinterp on top of it.
"""
import os
import sys
import threading
import time

SUB = """
import time

def busy_in_subinterp(seconds):
    end = time.time() + seconds
    n = 0
    while time.time() < end:
        n += 1
    return n

busy_in_subinterp(%r)
"""


def run_subinterp(seconds):
    code = SUB % seconds
    if sys.version_info >= (3, 13):
        import _interpreters
        interp = _interpreters.create()
        getattr(_interpreters, "exec")(interp, code)  # a keyword in 2.7
    elif sys.version_info >= (3, 8):
        import _xxsubinterpreters
        interp = _xxsubinterpreters.create()
        _xxsubinterpreters.run_string(interp, code)
    else:
        import ctypes
        api = ctypes.pythonapi
        api.Py_NewInterpreter.restype = ctypes.c_void_p
        api.PyRun_SimpleString.argtypes = [ctypes.c_char_p]
        # Then stay in C, in the sub-interpreter's thread state.
        src = (code + "time.sleep(1000)\n").encode("ascii")
        if api.Py_NewInterpreter():
            api.PyRun_SimpleString(src)


def main():
    delay, seconds = float(sys.argv[1]), float(sys.argv[2])
    print("ready")
    sys.stdout.flush()
    time.sleep(delay)
    t = threading.Thread(target=run_subinterp, args=(seconds,), name="subinterp")
    t.daemon = True
    t.start()
    time.sleep(seconds + 0.5)
    sys.stdout.flush()
    os._exit(0)


main()
