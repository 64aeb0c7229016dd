"""Ten thousand concurrent streams through one gateway worker to one provider origin,
over HTTP/2 and over HTTP/1.1 (both TLS), side by side.

The upstream (`holdopen.py`, on the load core) sends each stream's first content event
and holds it; `POST /tick` makes every open stream send one more. The gateway is a real
`switchyard gateway` process on its own core, trusting the bench's own CA
(SSL_CERT_FILE). For each protocol: time to first byte of 200 probe streams with the
gateway idle, then N streams opened and held, the probes again, then ticks (CPU per
relayed event), and the figures read from /proc: gateway RSS growth per stream, upstream
TCP connections established. Bounded: every phase has a timeout, N is fixed.
"""

from __future__ import annotations

import asyncio
import os
import resource
import ssl
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from bench import procs, systems
from switchyard_gateway.transport import Pool
from switchyard_testing import certs

PROBES = 200
TICKS = 3
#: Streams opened at once, then the next batch: a burst of 10,000 SYNs would overflow
#: the listen backlog and measure SYN retransmits instead of the gateway.
BATCH = 250


def _raise_fd_limit() -> int:
    """Soft file limit up to the hard one (children inherit it); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _established(port: int) -> int:
    """TCP connections established with local port `port` (the server's side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _probe(http: aiohttp.ClientSession, url: str, body: bytes) -> float:
    started = time.perf_counter()
    async with http.post(url, data=body, headers=systems.HEADERS) as reply:
        if reply.status != 200 or not await reply.content.readany():
            raise RuntimeError(f"probe stream failed: {reply.status}")
        return (time.perf_counter() - started) * 1000.0


async def _measure(url: str, gateway: procs.Child, upstream_port: int, streams: int,
                   tick_url: str, ca: str) -> dict[str, float]:
    body = systems.chat_body("hold", stream=True)
    out: dict[str, float] = {}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        for _ in range(20):  # warm-up: code paths, first upstream connection
            await _probe(http, url, body)
        idle = [await _probe(http, url, body) for _ in range(PROBES)]
        await asyncio.sleep(0.5)
        rss_before = gateway.rss_bytes()
        replies: list[aiohttp.ClientResponse] = []
        ttfb: list[float] = []
        failed = 0
        errors: dict[str, int] = {}

        async def hold() -> None:
            nonlocal failed
            started = time.perf_counter()
            try:
                reply = await http.post(url, data=body, headers=systems.HEADERS)
                chunk = await reply.content.readany()
            except (aiohttp.ClientError, OSError) as exc:
                failed += 1
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            if reply.status != 200 or not chunk:
                failed += 1
                errors[str(reply.status)] = errors.get(str(reply.status), 0) + 1
                reply.close()
                return
            ttfb.append((time.perf_counter() - started) * 1000.0)
            replies.append(reply)
        opened = time.perf_counter()
        for start in range(0, streams, BATCH):
            await asyncio.gather(*(hold() for _ in range(min(BATCH, streams - start))))
        out["open_s"] = time.perf_counter() - opened
        await asyncio.sleep(1.0)
        out["served"] = len(replies)
        out["failed"] = failed
        if errors:
            print(f"[bench] streams: failures {errors}", file=sys.stderr)
        out["kib_per_stream"] = (gateway.rss_bytes() - rss_before) / max(1, len(replies)) / 1024
        out["upstream_conns"] = _established(upstream_port)
        held = [await _probe(http, url, body) for _ in range(PROBES)]
        out["idle_p50"], out["idle_p99"] = _percentile(idle, .5), _percentile(idle, .99)
        out["held_p50"], out["held_p99"] = _percentile(held, .5), _percentile(held, .99)
        out["open_p50"], out["open_p99"] = _percentile(ttfb, .5), _percentile(ttfb, .99)

        # CPU per relayed event: every held stream gets TICKS more events
        async def drain(reply: aiohttp.ClientResponse) -> None:
            got = 0
            while got < TICKS:
                chunk = await reply.content.readany()
                if not chunk:
                    return
                got += chunk.count(b"data: ")
        cpu_before = gateway.cpu_seconds()
        ticker = Pool(ssl_context=ssl.create_default_context(cafile=ca))  # speaks h2 too
        try:
            draining = asyncio.gather(*(drain(r) for r in replies))
            for _ in range(TICKS):
                answer = await ticker.request("POST", tick_url, {}, b"")
                await answer.read()
                answer.release()
                await asyncio.sleep(0.2)
            await asyncio.wait_for(draining, 120)
        finally:
            ticker.close()
        cpu = gateway.cpu_seconds() - cpu_before
        out["cpu_us_per_event"] = cpu / max(1, len(replies) * TICKS) * 1e6
        for reply in replies:
            reply.close()
    return out


def _run(protocol: str, streams: int, folder: Path, pki: certs.Pki) -> dict[str, float]:
    port = procs.free_port()
    upstream = procs.Child(f"holdopen-{protocol}", procs.pinned(procs.LOAD_CORE, [
        sys.executable, str(Path(__file__).with_name("holdopen.py")), str(port), protocol,
        str(pki.server_cert), str(pki.server_key)]), folder)
    docs = [{"apiVersion": "switchyard.dev/v1alpha1", "kind": "GatewayEndpoint",
             "metadata": {"name": "hold", "namespace": "default"},
             "spec": {"task": "chat", "trafficSplit": [
                 {"name": "t", "provider": "openai", "model": "m", "weight": 100,
                  "baseUrl": f"https://127.0.0.1:{port}/v1", "apiKey": {"envVar": "BENCH_KEY"}}],
                 "policy": {"attemptTimeoutSeconds": 60, "requestTimeoutSeconds": 600,
                            "streamIdleTimeoutSeconds": 300}}}]
    config = folder / f"streams-{protocol}.yaml"
    config.write_text(yaml.safe_dump_all(docs))
    gw_port = procs.free_port()
    argv = [sys.executable, "-m", "switchyard_cli.main", "gateway", "--config", str(config),
            "--host", "127.0.0.1", "--port", str(gw_port), "--log-level", "WARNING",
            "--access-log", "off", "--upstream-max-connections-per-origin", str(streams + 100),
            "--upstream-capacity-wait-seconds", "5"]
    gateway = procs.Child(f"gateway-{protocol}", procs.pinned(procs.GATEWAY_CORE, argv), folder,
                          env={"BENCH_KEY": systems.KEY, "SSL_CERT_FILE": str(pki.ca_cert)})
    try:
        procs.wait_http(f"http://127.0.0.1:{gw_port}/readyz", gateway, timeout=180)
        url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        return asyncio.run(asyncio.wait_for(_measure(
            url, gateway, port, streams, f"https://127.0.0.1:{port}/tick",
            str(pki.ca_cert)), 600))
    finally:
        gateway.stop()
        upstream.stop()


def section(folder: Path, quick: bool = False) -> list[str]:
    """The streams section of the report (markdown lines)."""
    print("[bench] streams", file=sys.stderr)
    limit = _raise_fd_limit()
    pki = certs.generate(folder / "streams-pki")
    # one HTTP/1.1 stream costs the gateway two sockets (caller and upstream): the
    # process's file limit caps how many it can hold
    h2_streams = 1000 if quick else 10_000
    h1_streams = min(h2_streams, (limit - 200) // 2)
    rows = {"HTTP/2": _run("h2", h2_streams, folder, pki),
            "HTTP/1.1": _run("h1", h1_streams, folder, pki)}
    head = ["upstream protocol", "streams held", "served", "failed", "open all (s)",
            "gateway KiB/stream", "upstream connections", "TTFB idle p50/p99 ms",
            "TTFB held p50/p99 ms", "TTFB while opening p50/p99 ms", "gateway CPU us/event"]
    lines = ["## Ten thousand streams (issue 21)", "",
             "One gateway worker (its own core), one provider origin over TLS that sends "
             "each stream's first content event and holds it; the streams are opened "
             f"{BATCH} at a time and held. TTFB: {PROBES} probe streams one after another, "
             "with the gateway idle and with all streams held. CPU per event: gateway CPU "
             f"while every held stream relays {TICKS} more events. Upstream connections: "
             "TCP connections established to the provider. HTTP/1.1 ran with "
             "`--upstream-max-connections-per-origin` raised to the stream count; its "
             f"stream count is capped by the process file limit ({limit:,}: two sockets "
             "per stream).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows.items():
        lines.append("| " + " | ".join([
            name, f"{int(r['served'] + r['failed']):,}", f"{int(r['served']):,}",
            f"{int(r['failed']):,}", f"{r['open_s']:.1f}", f"{r['kib_per_stream']:.1f}",
            f"{int(r['upstream_conns']):,}",
            f"{r['idle_p50']:.2f} / {r['idle_p99']:.2f}",
            f"{r['held_p50']:.2f} / {r['held_p99']:.2f}",
            f"{r['open_p50']:.1f} / {r['open_p99']:.1f}",
            f"{r['cpu_us_per_event']:.1f}"]) + " |")
    h2r, h1r = rows["HTTP/2"], rows["HTTP/1.1"]
    load = os.getloadavg()[0]
    lines += ["", f"Over HTTP/2 the gateway held {int(h2r['served']):,} streams on "
              f"{int(h2r['upstream_conns']):,} upstream connections "
              f"({h2r['kib_per_stream']:.1f} KiB each), over HTTP/1.1 "
              f"{int(h1r['served']):,} on {int(h1r['upstream_conns']):,} "
              f"({h1r['kib_per_stream']:.1f} KiB each: a TLS connection per stream). "
              f"Machine load average during the run: {load:.1f} on 2 cores (the TTFB and CPU "
              "figures move with it).", ""]
    return lines
