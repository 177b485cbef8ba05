"""Gathering: a lone request goes at once; requests that come while a call is out go together
in the next one, per key, at most ``max_items`` a call; a failure fails its call's requests,
and an ``alone`` error only the request at fault; a cancelled request leaves the others be."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.gathering import Gathering

pytestmark = pytest.mark.anyio


class Refused(Exception):
    pass


class Calls:
    """A send that records its calls and answers each item doubled; "bad" items are refused,
    and the first call may be held until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.waited: list[float] = []  # per call: how long before it its oldest request came
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, key: str, items: list[int], since: float) -> list[int]:
        self.calls.append((key, items))
        self.waited.append(time.monotonic() - since)
        await self.release.wait()
        if -1 in items:
            raise Refused("-1")
        if -2 in items:
            raise RuntimeError("down")
        return [2 * i for i in items]


async def held(gathering: Gathering[str, int, int], send: Calls,
               *requests: tuple[str, list[int]]) -> list[list[int] | BaseException]:
    """The first request holds its call while the others arrive; then all are answered."""
    send.release.clear()
    first = asyncio.ensure_future(gathering(*requests[0]))
    await asyncio.sleep(0)  # its call is out
    rest = [asyncio.ensure_future(gathering(*r)) for r in requests[1:]]
    await asyncio.sleep(0)
    send.release.set()
    return await asyncio.gather(first, *rest, return_exceptions=True)


async def test_a_lone_request_is_sent_at_once() -> None:
    send = Calls()
    gathering = Gathering(send, max_items=10)
    assert await gathering("a", [1, 2]) == [2, 4]
    assert await gathering("a", [3]) == [6]
    assert send.calls == [("a", [1, 2]), ("a", [3])]


async def test_requests_during_a_call_share_the_next_per_key_and_up_to_max_items() -> None:
    send = Calls()
    gathering = Gathering(send, max_items=3)
    answers = await held(gathering, send, ("a", [1]), ("a", [2]), ("a", [3, 4]), ("b", [5]),
                         ("a", [6]), ("a", [7, 8, 9, 10]))
    assert answers == [[2], [4], [6, 8], [10], [12], [14, 16, 18, 20]]
    assert send.calls == [("a", [1]), ("b", [5]), ("a", [2, 3, 4]), ("a", [6]),
                          ("a", [7, 8, 9, 10])]  # too many for one call: alone, whole


async def test_a_gathered_call_counts_its_deadline_from_its_oldest_request() -> None:
    send = Calls()
    gathering = Gathering(send, max_items=10)
    send.release.clear()
    first = asyncio.ensure_future(gathering("a", [1]))
    await asyncio.sleep(0)
    waiting = asyncio.ensure_future(gathering("a", [2]))
    await asyncio.sleep(0.2)  # the first call is out this long; the second request waits
    send.release.set()
    await asyncio.gather(first, waiting)
    assert send.waited[1] >= 0.2 > send.waited[0]  # the second call counts its wait


async def test_a_refused_item_fails_only_its_request_and_an_outage_fails_the_call() -> None:
    send = Calls()
    gathering = Gathering(send, max_items=10, alone=(Refused,))
    answers = await held(gathering, send, ("a", [1]), ("a", [2]), ("a", [-1]), ("a", [3]))
    assert answers[:2] == [[2], [4]] and answers[3] == [6]
    assert isinstance(answers[2], Refused)
    answers = await held(gathering, send, ("a", [1]), ("a", [-2]), ("a", [3]))
    assert answers[0] == [2]
    assert all(isinstance(a, RuntimeError) for a in answers[1:])
    assert await gathering("a", [4]) == [8]  # nothing left out or stuck


async def test_a_cancelled_request_leaves_the_others_answered() -> None:
    send = Calls()
    gathering = Gathering(send, max_items=10)
    send.release.clear()
    first = asyncio.ensure_future(gathering("a", [1]))
    await asyncio.sleep(0)
    gone, kept = asyncio.ensure_future(gathering("a", [2])), asyncio.ensure_future(
        gathering("a", [3]))
    await asyncio.sleep(0)
    gone.cancel()
    send.release.set()
    assert await first == [2] and await kept == [6]
    assert gone.cancelled()
