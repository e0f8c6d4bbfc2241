"""A busy chain of asyncio coroutines under main() (3.6+):
python coroutines.py SECONDS.  Every stack runs under main()."""
import asyncio
import sys
import time


async def leaf(n):
    total = 0
    for i in range(n):
        total += i * i
    await asyncio.sleep(0)
    return total


async def middle():
    return await leaf(2000)


async def top(seconds):
    end = time.time() + seconds
    while time.time() < end:
        await middle()


def main():
    seconds = float(sys.argv[1])
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    loop = asyncio.new_event_loop()
    loop.run_until_complete(top(seconds))


if __name__ == "__main__":
    main()
