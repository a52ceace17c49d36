"""CPU per request of the HTTP clients the scraper could use, against one loopback server.

httpx and aiohttp (the `dev` extra installs aiohttp for this comparison only) beside the scraper's
own `scraper.http1.Http1Transport`.

A second process serves a real exporter's `/metrics` body (gzip, ~4.8 kB; keep-alive or
`Connection: close`); this process sends `--requests` GETs with N in flight through each client
and prints CPU-s per 1000 requests (the client's process only, the body read and decompressed):

    python bench/http_clients.py --requests 3000 --in-flight 10 100

Talks to 127.0.0.1 only; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
from scrape_fleet import capture_exposition

from scraper.http1 import Http1Transport


async def serve(body: bytes, keep_alive: bool, lifetime: float) -> None:
    packed = gzip.compress(body)
    connection = b"" if keep_alive else b"Connection: close\r\n"
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
        + connection
        + b"Content-Length: %d\r\n\r\n" % len(packed)
        + packed
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                self.buffer = self.buffer[end + 4 :]
                self.transport.write(answer)
                if not keep_alive:
                    self.transport.close()
                    return

    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0, backlog=1024)
    print(json.dumps(server.sockets[0].getsockname()[1]), flush=True)
    await asyncio.sleep(lifetime)


async def measure(get: Callable[[], Awaitable[int]], requests: int, in_flight: int) -> float:
    """CPU seconds per 1000 requests of `get`, `in_flight` at a time."""
    semaphore = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with semaphore:
            assert await get() > 1000

    await asyncio.gather(*(one() for _ in range(min(200, requests))))  # warm-up: connections, imports
    started = time.process_time()
    await asyncio.gather(*(one() for _ in range(requests)))
    return 1000 * (time.process_time() - started) / requests


async def run_clients(url: str, requests: int, in_flight: int) -> dict[str, float]:
    headers = {"Accept-Encoding": "gzip"}
    results: dict[str, float] = {}
    async with httpx.AsyncClient(trust_env=False, limits=httpx.Limits(max_connections=in_flight)) as client:

        async def httpx_get() -> int:
            return len((await client.get(url, headers=headers)).content)

        results["httpx"] = await measure(httpx_get, requests, in_flight)
    async with aiohttp.ClientSession(trust_env=False) as session:

        async def aiohttp_get() -> int:
            async with session.get(url, headers=headers) as response:
                return len(await response.read())

        results["aiohttp"] = await measure(aiohttp_get, requests, in_flight)
    transport = Http1Transport()
    try:

        async def transport_get() -> int:
            return len(await transport.get(url, headers, 10 * 2**20, False))

        results["millwatch Http1Transport"] = await measure(transport_get, requests, in_flight)
    finally:
        await transport.aclose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: "keep" or "close"
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(sys.stdin.buffer.read(), args.serve == "keep", 600))
        return 0
    with tempfile.TemporaryDirectory(prefix="millwatch-http-") as tmp:
        body = capture_exposition(Path(tmp))
    print(f"# {args.requests} GETs per cell, body {len(body)} bytes gzip, Python {sys.version.split()[0]}")
    print("| client | connections | in flight | CPU-s per 1000 requests |")
    print("|---|---|---|---|")
    for mode in ("keep", "close"):
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            assert server.stdin is not None and server.stdout is not None
            server.stdin.write(body)
            server.stdin.close()
            url = f"http://127.0.0.1:{json.loads(server.stdout.readline())}/metrics"
            for in_flight in args.in_flight:
                for client, cost in asyncio.run(run_clients(url, args.requests, in_flight)).items():
                    label = "kept alive" if mode == "keep" else "new each time"
                    print(f"| {client} | {label} | {in_flight} | {cost:.2f} |", flush=True)
        finally:
            server.kill()
            server.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
