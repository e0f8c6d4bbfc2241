"""Two busy threads in class methods, one waiting thread, main joins.

Thread 'alpha' spins in Spinner.spin_alpha, 'beta' in Spinner.spin_beta, for
argv[1] seconds (default 5).  Works on Python 2.7 and every 3.x."""
import sys
import threading
import time


class Spinner(object):
    def __init__(self, seconds):
        self.end = time.time() + seconds

    def spin_alpha(self):
        x = 0
        while time.time() < self.end:  # alpha loop
            x += 1
        return x

    def spin_beta(self):
        x = 0
        while time.time() < self.end:  # beta loop
            x += 1
        return x


def waiter(ev):
    ev.wait()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    s = Spinner(seconds)
    ev = threading.Event()
    threads = [threading.Thread(target=s.spin_alpha, name="alpha"),
               threading.Thread(target=s.spin_beta, name="beta"),
               threading.Thread(target=waiter, args=(ev,), name="idle")]
    for t in threads:
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    threads[0].join()
    threads[1].join()
    ev.set()
    threads[2].join()


if __name__ == "__main__":
    main()
