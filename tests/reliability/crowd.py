"""A crowd of hostile clients, run as its own process: slow-header and idle connections.

``python -m tests.reliability.crowd PORT --slow N --idle M --seconds S --drip D --sources K``
holds N connections that send a partial request head and one more header line every D
seconds, spread over K source addresses 127.0.0.x, and M connections from 127.0.1.1 that
send nothing.
A connection the server closes is opened again after a second (a hostile client insists).
At the end it prints one JSON line: connections made, closed by the server, and the
lifetimes of the idle ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass, field

RECONNECT_S = 1.0
IDLE_SOURCE = "127.0.1.1"
HEAD = b"GET / HTTP/1.1\r\nHost: forewarn\r\n"


@dataclass
class Tally:
    """What the crowd saw."""

    made: int = 0
    refused: int = 0  # connect() itself failed
    closed: int = 0  # the server ended a connection
    reset: int = 0  # … of which with a reset: refused over a limit, never read
    idle_lifetimes: list[float] = field(default_factory=list)  # those closed cleanly


async def _closed(reader: asyncio.StreamReader, until: float) -> str:
    """ "eof" or "reset" once the server closes; "" when the crowd's time is up first."""
    try:
        async with asyncio.timeout(max(0.0, until - time.monotonic())):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return ""
    except OSError:
        return "reset"
    return "eof"


async def client(port: int, source: str, drip_s: float, until: float, tally: Tally) -> None:
    """One insistent client: slow headers when ``drip_s`` > 0, else silence."""
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
        except OSError:
            tally.refused += 1
            await asyncio.sleep(RECONNECT_S)
            continue
        tally.made += 1
        opened = time.monotonic()
        closing = asyncio.ensure_future(_closed(reader, until))
        try:
            if drip_s > 0:
                writer.write(HEAD)
                n = 0
                while not closing.done():
                    await asyncio.wait([closing], timeout=drip_s)
                    n += 1
                    writer.write(f"X-Drip-{n}: {n}\r\n".encode())
            closed = await closing
        except OSError:
            closed = "reset"
        finally:
            writer.close()
        if closed:
            tally.closed += 1
            tally.reset += closed == "reset"
            if drip_s == 0 and closed == "eof":
                tally.idle_lifetimes.append(time.monotonic() - opened)
            await asyncio.sleep(RECONNECT_S)


async def main(args: argparse.Namespace) -> None:
    """Run the crowd and print what it saw."""
    until = time.monotonic() + args.seconds
    tally = Tally()
    sources = [f"127.0.0.{2 + i}" for i in range(args.sources)]
    tasks = [
        client(args.port, sources[i % len(sources)], args.drip, until, tally)
        for i in range(args.slow)
    ]
    # From an address of their own, so that the slow ones' share does not refuse them.
    tasks += [client(args.port, IDLE_SOURCE, 0.0, until, tally) for _ in range(args.idle)]
    await asyncio.gather(*tasks)
    print(json.dumps(tally.__dict__))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--idle", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drip", type=float, default=1.0)
    parser.add_argument("--sources", type=int, default=10)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the crowd is not the subject
    asyncio.run(main(parser.parse_args()))
