"""One busy thread started first, then many sleeping threads.

argv: [sleepers (default 560)] [seconds (default 10)] [distinct]
Thread 'busy' spins in busy_spin; every sleeper waits on an event.  With
'distinct', sleeper i waits in a function of its own, sleeper_<i> (made with
exec) that calls wait_<i>, so a sample holds about twice as many
distinct code objects as threads.
The main thread waits for the busy one.  Works on Python 2.7 and every 3.x.
"""
import sys
import threading
import time


def busy_spin(seconds):
    end = time.time() + seconds
    x = 0
    while time.time() < end:  # busy loop
        x += 1
    return x


def sleeper(ev):
    ev.wait()


def distinct_sleepers(n):
    src = "".join("def sleeper_%d(ev):\n    wait_%d(ev)\n"
                  "def wait_%d(ev):\n    ev.wait()\n" % (i, i, i) for i in range(n))
    ns = {}
    exec(compile(src, "many_threads_gen.py", "exec"), ns)
    return [ns["sleeper_%d" % i] for i in range(n)]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 560
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    distinct = len(sys.argv) > 3 and sys.argv[3] == "distinct"
    threading.stack_size(256 * 1024)
    ev = threading.Event()
    busy = threading.Thread(target=busy_spin, args=(seconds,), name="busy")
    busy.daemon = True
    busy.start()
    fns = distinct_sleepers(n) if distinct else [sleeper] * n
    for i in range(n):
        t = threading.Thread(target=fns[i], args=(ev,), name="sleeper-%d" % i)
        t.daemon = True
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    busy.join()


if __name__ == "__main__":
    main()
