"""A small web app for the demo and the tests: standard library only.

  GET /fib?n=N     CPU-bound recursion
  GET /render      builds and serialises a JSON document
  GET /slow        waits 20 ms (idle time)

Usage: webapp.py PORT  (0 picks a free port).  Prints "ready PORT" when it
listens on 127.0.0.1."""
import json
import sys
import time

try:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse
except ImportError:  # Python 2
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer
    from SocketServer import ThreadingMixIn
    from urlparse import parse_qs, urlparse

    class ThreadingHTTPServer(ThreadingMixIn, HTTPServer):
        daemon_threads = True


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def render():
    rows = [{"id": i, "name": "item-%d" % i, "tags": ["a", "b", str(i % 7)]}
            for i in range(300)]
    return json.dumps({"rows": rows, "count": len(rows)})


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/fib":
            n = int(parse_qs(url.query).get("n", ["18"])[0])
            body = str(fib(min(n, 25)))
        elif url.path == "/render":
            body = render()
        elif url.path == "/slow":
            time.sleep(0.02)
            body = "slow"
        else:
            self.send_error(404)
            return
        data = body.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    sys.stdout.write("ready %d\n" % server.server_address[1])
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
