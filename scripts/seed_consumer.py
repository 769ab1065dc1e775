"""The seed's example NATS consumer (NATS_MESSAGING.md, "Example NATS Consumer"), runnable.

    pip install nats-py
    python3 scripts/seed_consumer.py [--url nats://localhost:4222] [--subject 'binance.extraction.>'] [--count N]

Prints one line per message: the subject, a tab, and the JSON body. With --count it exits after
N messages (the end-to-end tests use this to prove the seed's consumer receives our events);
without it, it listens for an hour, as the seed's does.
"""

import argparse
import asyncio
import json
import sys

import nats


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="nats://localhost:4222")
    parser.add_argument("--subject", default="binance.extraction.>")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args()

    received = 0
    done = asyncio.Event()

    async def message_handler(msg):
        nonlocal received
        data = json.loads(msg.data.decode())
        print(f"{msg.subject}\t{json.dumps(data)}", flush=True)
        received += 1
        if args.count and received >= args.count:
            done.set()

    nc = await nats.connect(args.url)
    await nc.subscribe(args.subject, cb=message_handler)
    await nc.flush()
    print("subscribed", file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    except asyncio.TimeoutError:
        pass
    await nc.close()
    return 0 if not args.count or received >= args.count else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
