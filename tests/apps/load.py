"""A bounded HTTP load for the demo: THREADS clients request the web app's
endpoints in turn on 127.0.0.1:PORT for SECONDS, then stop.

Usage: load.py PORT SECONDS [THREADS]"""
import sys
import threading
import time

try:
    from urllib.request import urlopen
except ImportError:
    from urllib2 import urlopen

PATHS = ["/fib?n=20", "/render", "/fib?n=18", "/slow"]


def client(port, end, counts, i):
    n = 0
    while time.time() < end:
        try:
            urlopen("http://127.0.0.1:%d%s" % (port, PATHS[n % len(PATHS)]), timeout=5).read()
        except Exception:
            time.sleep(0.05)
        n += 1
    counts[i] = n


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    nthreads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    end = time.time() + min(seconds, 600)
    counts = [0] * nthreads
    threads = [threading.Thread(target=client, args=(port, end, counts, i))
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sys.stdout.write("load: %d requests in %.0f s\n" % (sum(counts), seconds))


if __name__ == "__main__":
    main()
