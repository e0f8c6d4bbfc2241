"""A plain WSGI app (no framework) with two handlers of known CPU cost, for
the agent's tests under gunicorn and uWSGI:

  GET /heavy   spins 3 ms of the thread's CPU time in heavy_handler
  GET /light   spins 1 ms in light_handler

Requested in turn, heavy_handler has 3/4 of the handlers' CPU time.
"""
import time


def spin(seconds):
    # CPU time, not wall time: a worker that waits for a CPU still spends
    # exactly this much computing.
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


def heavy_handler():
    return spin(0.003)


def light_handler():
    return spin(0.001)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/heavy":
        n = heavy_handler()
    elif path == "/light":
        n = light_handler()
    else:
        n = 0
    body = ("ok %d\n" % n).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
