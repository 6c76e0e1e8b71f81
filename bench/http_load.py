"""HTTP load at a fixed concurrency: wrk with a Lua script when installed, else asyncio.

Run: ``python -m bench.http_load URL --concurrency 50 --seconds 5 [--body B --header K:V]``

With ``--rate R`` the asyncio client offers R requests/s (open loop, at most
``--concurrency`` in flight; a request that finds them all busy waits for one
and is late, which its latency shows) rather than as many as it can.

Prints one JSON object: requests, the 2xx among them, requests/s, p50 and
p99 latency in ms, and (asyncio client only) its own CPU seconds. wrk is
the faster client (C, one thread per core); the asyncio one (aiohttp on
uvloop) is the fallback where Debian's ``wrk`` is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import uvloop

LUA = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  io.write(string.format(
    '{{"requests": %d, "bad": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f}}\\n',
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def with_wrk(
    url: str, method: str, body: str, headers: dict[str, str], concurrency: int, seconds: float
) -> dict[str, float]:
    # "[ [==[" with a space: "[[" would open a Lua long string
    lines = "\n".join(
        f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()
    )
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "load.lua"
        script.write_text(LUA.format(method=method, body=_lua_string(body), headers=lines))
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "5s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "requests": result["requests"],
        "ok": result["requests"] - result["bad"],
        "rate": result["requests"] / result["seconds"],
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "client": "wrk",
    }


async def with_asyncio(
    url: str,
    method: str,
    body: str,
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, float | str]:
    latencies: list[float] = []
    ok = 0
    start = time.perf_counter()
    deadline = start + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal ok
            started = time.perf_counter()
            async with session.request(
                method, url, data=body.encode() or None, headers=headers
            ) as response:
                await response.read()
                ok += 200 <= response.status < 300
            latencies.append((time.perf_counter() - started) * 1000)

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await one()

        async def paced(rate: float) -> None:
            slots = asyncio.Semaphore(concurrency)

            async def bounded() -> None:
                try:
                    await one()
                finally:
                    slots.release()

            sent = 0
            async with asyncio.TaskGroup() as group:
                while (now := time.perf_counter()) < deadline:
                    due = start + sent / rate
                    if due > now:
                        await asyncio.sleep(due - now)
                    await slots.acquire()
                    group.create_task(bounded())
                    sent += 1

        async with asyncio.TaskGroup() as group:
            if rate:
                group.create_task(paced(rate))
            else:
                for _ in range(concurrency):
                    group.create_task(worker())
        elapsed = time.perf_counter() - start
    latencies.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "ok": ok,
        "rate": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "client": "asyncio",
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[], help="Name: value")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--client", choices=("auto", "wrk", "asyncio"), default="auto")
    parser.add_argument("--rate", type=float, help="requests/s to offer (the asyncio client)")
    args = parser.parse_args()
    headers = dict(h.split(":", 1) for h in args.header)
    headers = {k.strip(): v.strip() for k, v in headers.items()}
    wrk_wanted = args.client == "wrk" or (args.client == "auto" and shutil.which("wrk"))
    use_wrk = wrk_wanted and not args.rate  # wrk keeps N in flight; it cannot pace a rate
    if use_wrk:
        result: dict[str, float | str] = dict(
            with_wrk(args.url, args.method, args.body, headers, args.concurrency, args.seconds)
        )
    else:
        result = uvloop.run(
            with_asyncio(
                args.url, args.method, args.body, headers, args.concurrency, args.seconds,
                args.rate,
            )
        )  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
