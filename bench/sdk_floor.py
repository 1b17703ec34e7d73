"""The floor every benchmark compares against: a bare ``AsyncOpenAI`` loop, no harness.

N chat completions, at most ``--concurrency`` in flight (a semaphore), ``max_retries=0``, the same request
shape the benchmark suite renders (one user message, temperature 0, a seed). Each answer is parsed by the
SDK into a ``ChatCompletion`` and its text compared with the prompt, as the ``exact`` grader would: the
floor pays every cost the harness cannot avoid, and nothing else. Exits 1 if any answer was wrong.

    python bench/sdk_floor.py --url http://127.0.0.1:PORT/v1 --n 1000 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from openai import AsyncOpenAI


async def run(url: str, n: int, concurrency: int) -> int:
    client = AsyncOpenAI(base_url=url, api_key="no-key", max_retries=0)
    gate = asyncio.Semaphore(concurrency)
    right = 0

    async def one(i: int) -> None:
        nonlocal right
        text = f"hello number {i}"
        async with gate:
            chat = await client.chat.completions.create(
                model="fault-server", messages=[{"role": "user", "content": text}], temperature=0.0, seed=0,
            )
        right += (chat.choices[0].message.content or "").strip() == text

    async with client:
        await asyncio.gather(*(one(i) for i in range(n)))
    return right


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    right = asyncio.run(run(args.url, args.n, args.concurrency))
    print(f"{right}/{args.n} answers right")
    return 0 if right == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
