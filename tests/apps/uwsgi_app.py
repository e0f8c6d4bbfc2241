"""WSGI app for the uWSGI embedding test: every request spins in
spin_request against the clock, SPIN seconds or ?ms=N milliseconds (at most
50), so a worker under load spends nearly all of its Python time on
spin_request's loop lines.
"""
import time

SPIN = 0.002


def spin_time(environ):
    for part in environ.get("QUERY_STRING", "").split("&"):
        if part.startswith("ms=") and part[3:].isdigit():
            return min(int(part[3:]), 50) / 1000.0
    return SPIN


def spin_request(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:  # spin loop
        x += 1                         # spin body
    return x


def application(environ, start_response):
    n = spin_request(spin_time(environ))
    body = ("ok %d\n" % n).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
