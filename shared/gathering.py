"""One call for the work of concurrent requests (a hop shared, not a batch window).

While a call for a key is out, requests for the same key wait, and go together in the next
call, sent the moment the first returns. A lone request is sent at once and never waits, so
gathering costs nothing at low load and saves calls (their HTTP, parsing and event-loop work on
both sides) exactly when there are many. Used by the gateway for its calls to a classifier and
by the classifier for its calls to the embedder.

A call that fails fails every request in it, except for the errors named ``alone`` (an input
refused: whose?): then each request is sent again on its own, so only the one at fault fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741  # an item: "I" is the name of the type parameter, as in typing
R = TypeVar("R")

# send(key, items, since): one result per item, in order; ``since`` is when the oldest
# request in the call arrived (time.monotonic), for a deadline that counts its wait.
Send = Callable[[K, list[I], float], Awaitable[list[R]]]


@dataclass(eq=False)
class _Waiter(Generic[I, R]):
    items: list[I]
    since: float = field(default_factory=time.monotonic)
    answer: asyncio.Future[list[R]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class Gathering(Generic[K, I, R]):
    def __init__(self, send: Send[K, I, R], *, max_items: int,
                 alone: tuple[type[Exception], ...] = ()) -> None:
        """``max_items``: at most this many items in one call (a request with more is sent
        alone, whole)."""
        self.send, self.max_items, self.alone = send, max_items, alone
        self._busy: set[K] = set()  # keys with a call out
        self._waiting: dict[K, list[_Waiter[I, R]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, key: K, items: list[I]) -> list[R]:
        if key in self._busy:
            waiter: _Waiter[I, R] = _Waiter(items)
            self._waiting.setdefault(key, []).append(waiter)
            return await waiter.answer
        self._busy.add(key)
        try:
            return await self.send(key, items, time.monotonic())
        finally:
            self._next(key)

    def _next(self, key: K) -> None:
        """Send the next call for ``key``: the requests that waited, up to ``max_items``."""
        waiting = self._waiting.get(key, [])
        batch: list[_Waiter[I, R]] = []
        count = 0
        while waiting and (not batch or count + len(waiting[0].items) <= self.max_items):
            count += len(waiting[0].items)
            batch.append(waiting.pop(0))
        if not waiting:
            self._waiting.pop(key, None)
        if not batch:
            self._busy.discard(key)
            return
        task = asyncio.create_task(self._send(key, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, key: K, batch: list[_Waiter[I, R]]) -> None:
        try:
            results = await self.send(key, [i for w in batch for i in w.items],
                                      min(w.since for w in batch))
            start = 0
            for waiter in batch:
                _settle(waiter, results[start:start + len(waiter.items)])
                start += len(waiter.items)
        except self.alone:
            for waiter in batch:
                try:
                    _settle(waiter, await self.send(key, waiter.items, waiter.since))
                except Exception as exc:  # noqa: BLE001  # raised in its own request
                    _settle(waiter, exc)
        except Exception as exc:  # noqa: BLE001  # raised in each request of the call
            for waiter in batch:
                _settle(waiter, exc)
        finally:
            self._next(key)


def _settle(waiter: _Waiter[I, R], result: list[R] | Exception) -> None:
    if waiter.answer.done():  # its request was cancelled (the caller went away)
        return
    if isinstance(result, Exception):
        waiter.answer.set_exception(result)
    else:
        waiter.answer.set_result(result)
