"""Dynamic micro-batching: many concurrent requests, one forward pass.

Requests put their texts on a bounded queue and await a future. Worker threads, one per
batch the model runs at once (:func:`~services.embedder.backends.concurrency`: one per core
on CPU), take turns at the queue: the one whose turn it is takes what is waiting and, under
load, waits (at most ``max_wait_ms``) until about half as many texts as the last batch had
are there: the clients just answered need a moment to send their next request, and without
the wait batches alternate between one text and the rest. A lone client never waits. With
several workers, one takes at most its share of the texts in the engine, so the others find
work at once instead of idling until its batch is answered. Then it sorts by token length to
cut padding, cuts batches under ``max_batch_size`` and ``max_batch_tokens``, runs the backend
and resolves the futures on the event loop. The event loop never runs the model, and a full
queue answers :class:`Overloaded` at once instead of growing.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from services.embedder import metrics
from services.embedder.backends import Backend, Tokens, concurrency
from shared.errors import Overloaded, Unavailable
from shared.settings import EmbedderSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Embedded:
    features: np.ndarray  # float32, (feature_dimension,): [sentence | lexical], each unit
    tokens: int
    truncated: bool

    @property
    def sentence(self) -> np.ndarray:
        """The sentence vector: the first half of the features (``/v1/embeddings``)."""
        return self.features[:self.features.size // 2]


@dataclass(eq=False)
class _Ticket:
    """One request's texts: resolved on the loop when its last text has its features."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[Embedded]]
    results: list[Embedded | None]
    remaining: int


@dataclass(slots=True)
class _Item:
    text: str
    ticket: _Ticket
    index: int
    tokens: Tokens | None = field(default=None)

    @property
    def tokenized(self) -> Tokens:
        """The tokens, once the worker has tokenized the item (always, before batching)."""
        assert self.tokens is not None
        return self.tokens


class BatchingEngine:
    def __init__(self, backend: Backend, settings: EmbedderSettings) -> None:
        self.backend = backend
        self._max_batch = settings.max_batch_size
        self._max_tokens = settings.max_batch_tokens
        self._max_wait_s = settings.max_wait_ms / 1000
        self._capacity = settings.max_queue_texts
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._pending = 0
        self._lock = threading.Lock()
        self._rate = 100.0  # texts/s, smoothed: sizes Retry-After
        self._last_batch = 0
        self._stopping = False
        self._workers = concurrency(settings, backend.info.device).batches
        self._gathering = threading.Lock()  # whose turn it is to take texts from the queue
        self._carry: list[_Item] = []  # texts the last batch had no room for (tokenized)
        self._threads = [threading.Thread(target=self._run, name=f"embedder-batcher-{n}",
                                          daemon=True) for n in range(self._workers)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued, then end the worker threads."""
        self._stopping = True
        self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def concurrent_batches(self) -> int:
        """Worker threads: batches the model runs at once."""
        return self._workers

    @property
    def pending(self) -> int:
        return self._pending

    async def embed(self, texts: list[str]) -> list[Embedded]:
        """Features for ``texts`` in order; raises Overloaded when the queue is full."""
        if not texts:
            return []
        if self._stopping:
            raise Unavailable("the embedder is shutting down", retry_after_s=1)
        with self._lock:
            if self._pending and self._pending + len(texts) > self._capacity:
                metrics.REJECTED.inc(len(texts))
                raise Overloaded(
                    f"embedder queue is full ({self._pending} texts waiting); retry shortly",
                    retry_after_s=max(1.0, self._pending / self._rate))
            self._pending += len(texts)
        metrics.QUEUE_DEPTH.inc(len(texts))
        loop = asyncio.get_running_loop()
        ticket = _Ticket(loop, loop.create_future(), [None] * len(texts), len(texts))
        for index, text in enumerate(texts):
            self._queue.put(_Item(text, ticket, index))
        return await ticket.future

    # --- worker thread -------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._gathering:  # one worker at a time takes texts; what it leaves, any takes
                batch = self._next_batch()
            if batch is None:
                return
            self._forward(batch)

    def _next_batch(self) -> list[_Item] | None:
        """The next batch, tokenized and length-sorted; None when stopping."""
        items = self._gather()
        if items is None:
            return None
        todo = [it for it in items if it.tokens is None]
        if todo:
            for item, tokens in zip(todo, self.backend.tokenize([it.text for it in todo]),
                                    strict=True):
                item.tokens = tokens
        items.sort(key=lambda it: len(it.tokenized.ids))
        batch, self._carry = self._cut(items)
        self._last_batch = len(batch)
        return batch

    def _gather(self) -> list[_Item] | None:
        """What the last batch left, else block for the first text; then take what arrives
        within ``max_wait`` (under load)."""
        items, self._carry = self._carry, []
        if not items:
            first = self._queue.get()
            if first is None:  # stopping: the next worker thread sees it too
                self._queue.put(None)
                return None
            items.append(first)
        limit = self._max_batch
        if self._workers > 1:  # leave the other workers their share of the texts in the engine
            limit = min(limit, max(1, -(-self._pending // self._workers)))
        target = min(limit, self._last_batch // 2)  # 0 or 1: do not wait
        deadline = time.perf_counter() + self._max_wait_s
        while len(items) < limit:
            try:
                timeout = deadline - time.perf_counter()
                if len(items) >= target or timeout <= 0:
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get(timeout=timeout)
            except queue.Empty:
                break
            if item is None:  # stopping: finish what we hold, then end
                self._queue.put(None)
                break
            items.append(item)
        return items

    def _cut(self, items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
        """Longest prefix (sorted by length) within the size and padded-token budgets."""
        n = 0
        while n < len(items) and n < self._max_batch:
            width = len(items[n].tokenized.ids)
            if n and (n + 1) * width > self._max_tokens:
                break
            n += 1
        return items[:n], items[n:]

    def _forward(self, batch: list[_Item]) -> None:
        start = time.perf_counter()
        tokens = [it.tokenized for it in batch]
        try:
            rows = self.backend.features(tokens)
        except Exception as exc:  # a bad batch fails its requests, not the worker
            log.exception("forward pass failed", extra={"batch": len(batch)})
            self._finish(batch, None, exc)
            return
        elapsed = time.perf_counter() - start
        metrics.FORWARD_SECONDS.observe(elapsed)
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.BATCH_TOKENS.observe(len(batch) * len(tokens[-1].ids))
        rate = self._workers * len(batch) / max(elapsed, 1e-6)  # all workers, roughly
        self._rate = 0.8 * self._rate + 0.2 * rate
        self._finish(batch, rows, None)

    def _finish(self, batch: list[_Item], rows: np.ndarray | None,
                error: Exception | None) -> None:
        """Fill the batch's tickets; resolve the completed ones with one wake-up per loop."""
        metrics.QUEUE_DEPTH.dec(len(batch))
        done: dict[asyncio.AbstractEventLoop, list[_Ticket]] = {}
        with self._lock:  # another worker thread may hold other texts of the same tickets
            self._pending -= len(batch)
            for row, item in enumerate(batch):
                ticket = item.ticket
                if ticket.remaining == 0:  # failed already, with an earlier item of its request
                    continue
                if error is not None:
                    ticket.remaining = 0
                    done.setdefault(ticket.loop, []).append(ticket)
                    continue
                assert rows is not None and item.tokens is not None
                features = rows[row].copy()  # a row view would pin the whole batch in the cache
                features.flags.writeable = False
                ticket.results[item.index] = Embedded(features, len(item.tokens.ids),
                                                      item.tokens.truncated)
                ticket.remaining -= 1
                if ticket.remaining == 0:
                    done.setdefault(ticket.loop, []).append(ticket)
        for loop, tickets in done.items():
            loop.call_soon_threadsafe(_settle, tickets, error)


def _settle(tickets: list[_Ticket], error: Exception | None) -> None:
    """On the loop: each ticket's results, or the batch's failure."""
    for ticket in tickets:
        if ticket.future.done():  # the caller went away
            continue
        if error is None:
            ticket.future.set_result(ticket.results)  # type: ignore[arg-type]  # every slot is filled by now
        else:
            ticket.future.set_exception(
                Unavailable("the model failed on this batch; see the service logs"))
            log.debug("failed ticket", exc_info=error)
