"""Two busy named threads and four waiting ones.

'busy-1' spins in spin_one and 'busy-2' in spin_two (pure Python, so they
take turns holding the GIL); 'wait-1'..'wait-4' block in wait_event,
wait_lock, wait_sleep and wait_queue.  Runs argv[1] seconds (default 10).
Works on Python 2.7 and every 3.x."""
import sys
import threading
import time

try:
    import queue
except ImportError:  # Python 2
    import Queue as queue


def spin_one(end):
    x = 0
    while time.time() < end:  # busy one
        x += 1
    return x


def spin_two(end):
    x = 0
    while time.time() < end:  # busy two
        x += 1
    return x


def wait_event(ev):
    ev.wait()


def wait_lock(lock):
    lock.acquire()
    lock.release()


def wait_sleep(end):
    while time.time() < end:
        time.sleep(0.2)


def wait_queue(q):
    q.get()


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    end = time.time() + seconds
    ev = threading.Event()
    lock = threading.Lock()
    lock.acquire()
    q = queue.Queue()
    threads = [threading.Thread(target=spin_one, args=(end,), name="busy-1"),
               threading.Thread(target=spin_two, args=(end,), name="busy-2"),
               threading.Thread(target=wait_event, args=(ev,), name="wait-1"),
               threading.Thread(target=wait_lock, args=(lock,), name="wait-2"),
               threading.Thread(target=wait_sleep, args=(end,), name="wait-3"),
               threading.Thread(target=wait_queue, args=(q,), name="wait-4")]
    for t in threads:
        t.daemon = True
        t.start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while time.time() < end:
        time.sleep(0.05)
    ev.set()
    lock.release()
    q.put(None)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
