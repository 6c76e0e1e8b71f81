"""Hand-over between instances: PostgreSQL LISTEN/NOTIFY against RabbitMQ, one run.

``python -m bench.handover [--count N] [--dsn DSN] [--amqp URL]``

What warpd hands from one instance to another (work for a connector bound
elsewhere, a receipt for a customer bound elsewhere) is a row in PostgreSQL
first; the hand-over is only the signal to look. This measures that signal
both ways, one instance's connection to another's, on loopback: one-way
latency per signal (p50/p99) and signals per second, sent one by one and
gathered the way warpd gathers them (20 ms). RabbitMQ is measured the way it
would have to be used to carry the same promise: a durable queue, persistent
messages and publisher confirms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from dataclasses import dataclass

import aio_pika
import asyncpg

CHANNEL = "warpd_bench_handover"


@dataclass(frozen=True, slots=True)
class Result:
    system: str
    count: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def row(self) -> str:
        return (
            f"| {self.system} | {self.rate:,.0f} | {self.percentile(0.5):.2f}"
            f" | {self.percentile(0.99):.2f} | {statistics.fmean(self.latencies_ms):.2f} |"
        )


async def notify(dsn: str, count: int) -> Result:
    sender, listener = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    got: list[float] = []
    done = asyncio.get_running_loop().create_future()

    def received(_c: object, _pid: int, _channel: str, payload: object) -> None:
        got.append((time.perf_counter() - float(str(payload))) * 1000)
        if len(got) == count and not done.done():
            done.set_result(None)

    await listener.add_listener(CHANNEL, received)
    started = time.perf_counter()
    for _ in range(count):
        await sender.execute("SELECT pg_notify($1, $2)", CHANNEL, repr(time.perf_counter()))
    await asyncio.wait_for(done, 60)
    seconds = time.perf_counter() - started
    await sender.close()
    await listener.close()
    return Result("PostgreSQL NOTIFY", count, seconds, got)


async def rabbit(url: str, count: int) -> Result:
    publisher, consumer = await aio_pika.connect(url), await aio_pika.connect(url)
    out = await publisher.channel(publisher_confirms=True)
    inbox = await consumer.channel()
    queue = await inbox.declare_queue("warpd.bench.handover", durable=True)
    await queue.purge()
    got: list[float] = []
    done = asyncio.get_running_loop().create_future()

    async def received(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append((time.perf_counter() - float(message.body.decode())) * 1000)
        await message.ack()
        if len(got) == count and not done.done():
            done.set_result(None)

    tag = await queue.consume(received)
    started = time.perf_counter()
    for _ in range(count):
        body = repr(time.perf_counter()).encode()
        await out.default_exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=queue.name,
        )
    await asyncio.wait_for(done, 120)
    seconds = time.perf_counter() - started
    await queue.cancel(tag)
    await queue.delete(if_unused=False, if_empty=False)
    await publisher.close()
    await consumer.close()
    return Result("RabbitMQ, durable + confirms", count, seconds, got)


async def main(args: argparse.Namespace) -> None:
    results = [await notify(args.dsn, args.count), await rabbit(args.amqp, args.count)]
    print(f"{args.count} signals, one at a time, sender waits for each (load {os.getloadavg()})")
    print("| hand-over | signals/s | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|---:|")
    for result in results:
        print(result.row())
    pg, mq = results
    print(f"\nNOTIFY vs RabbitMQ: {pg.rate / mq.rate:.1f}x the rate,"
          f" {mq.percentile(0.99) / pg.percentile(0.99):.1f}x lower p99")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    asyncio.run(main(parser.parse_args()))
