#!/usr/bin/env python3
"""A TCP proxy that puts a registry "far away": every byte, each way, is delayed by RTT/2,
connection set-up included (the client's connection is accepted at once, but the upstream
connection opens RTT/2 later and nothing flows before it), so a request/response pair costs
one round trip as it would across a WAN. Loopback only; stops on SIGTERM.

    latency_proxy.py LISTEN_PORT UPSTREAM_PORT RTT_MS [RATE_MBIT]

RATE_MBIT, when given, is the link's bandwidth in each direction, shared by all connections
(as one WAN link is): a chunk leaves only when the link has sent what was queued before it.

Each connection holds at most a window of bytes on its way (two round trips' worth at the
link's rate, at least 4 MiB; 64 MiB without a rate): beyond that the proxy stops reading from the sender, whose own socket
then fills, as TCP's window stops a sender on a real link. Without it the proxy read everything
a fast sender had at once, and spent its time buffering instead of keeping the link's clock.
"""
import asyncio
import signal
import sys
import time


# Bytes the proxy holds for a receiver before it waits for it to read.
WRITE_BUFFER = 16 << 20
# Bytes read from a sender at a time.
CHUNK = 256 * 1024


class Link:
    """One direction of the link: chunks of every connection take turns at its rate."""

    def __init__(self, rate_bytes):
        self.rate = rate_bytes
        self.free_at = 0.0

    async def transmit(self, size):
        if not self.rate:
            return
        now = time.monotonic()
        # A link that was busy a moment ago goes on from where its schedule stood: the event
        # loop wakes late from every sleep, and those late wakes must not add up to a slower
        # link than asked for.
        start = self.free_at if self.free_at > now - 0.02 else now
        self.free_at = start + size / self.rate
        await asyncio.sleep(max(0.0, self.free_at - now))


async def pipe(reader, writer, delay, link, window):
    """Copies reader to writer, each chunk released `delay` seconds after it arrived, in order,
    once the link has carried it; at most `window` bytes between the two."""
    queue = asyncio.Queue(maxsize=max(2, window // CHUNK))
    # What the link delivered is buffered for the receiver rather than waited on: a receiver
    # that reads in bursts (a registry between two disk writes) must not stop the link's clock
    # the way a full 64 KiB write buffer would.
    writer.transport.set_write_buffer_limits(high=WRITE_BUFFER)

    async def receive():
        while True:
            data = await reader.read(CHUNK)
            await queue.put((time.monotonic() + delay, data))
            if not data:
                return

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                try:
                    writer.write_eof()
                except (OSError, RuntimeError):
                    pass
                return
            await link.transmit(len(data))
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def main(listen_port, upstream_port, rtt_ms, rate_mbit):
    delay = rtt_ms / 2000.0
    rate_bytes = rate_mbit * 1_000_000 / 8 if rate_mbit else 0
    to_registry, to_client = Link(rate_bytes), Link(rate_bytes)
    window = max(4 << 20, int(rate_bytes * 4 * delay)) if rate_bytes else 64 << 20

    async def handle(client_reader, client_writer):
        # The client's SYN would take RTT/2 to arrive: the upstream side opens that late.
        await asyncio.sleep(delay)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, delay, to_registry, window),
            pipe(up_reader, client_writer, delay, to_client, window),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    listen, upstream, rtt = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(main(listen, upstream, rtt, rate))
