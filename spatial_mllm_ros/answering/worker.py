"""A bounded question queue served by one worker thread.

Every submitted question gets exactly one answer through ``on_answer``:

- the queue is full -> BUSY, at once, on the submitting thread;
- the worker is stopped -> MODEL_ERROR ("node shutting down") for whatever is still queued;
- otherwise the ``handler``'s :class:`AnswerRecord` (OK, TIMEOUT, NO_FRAMES, ...), and
  MODEL_ERROR if the handler itself raises.

Ingestion is never blocked: submission only appends to a deque under a lock, and the model
runs on the worker thread.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from spatial_mllm_ros.answering.errors import QueueClosedError
from spatial_mllm_ros.answering.types import AnswerRecord, AnswerStatus, QuestionRequest

_LOG = logging.getLogger(__name__)

Handler = Callable[[QuestionRequest], AnswerRecord]
Sink = Callable[[QuestionRequest, AnswerRecord], None]


class QuestionWorker:
    """FIFO of at most ``max_queued`` waiting questions, answered one at a time.

    Args:
        handler: answers one question (runs on the worker thread).
        on_answer: receives (request, answer) exactly once per submitted question; called on
            the worker thread, or on the submitting thread for BUSY.
        max_queued: questions that may wait while one is being answered.
    """

    def __init__(self, handler: Handler, on_answer: Sink, max_queued: int) -> None:
        if max_queued < 1:
            raise ValueError(f"max_queued must be >= 1, got {max_queued}")
        self._handler = handler
        self._on_answer = on_answer
        self._max_queued = max_queued
        self._queue: collections.deque[QuestionRequest] = collections.deque()
        self._cv = threading.Condition()
        self._running = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._generation = 0  # a thread serves only the generation it was started for
        self._in_flight: dict[int, QuestionRequest] = {}  # generation -> question answered
        self._answered_by_stop: set[int] = set()  # generations whose question stop() answered
        self.answered = 0
        self.rejected_busy = 0

    @property
    def queued(self) -> int:
        """Questions waiting (not counting the one being answered)."""
        with self._cv:
            return len(self._queue)

    @property
    def busy(self) -> bool:
        """True while a question is being answered."""
        with self._cv:
            return self._busy

    def start(self) -> None:
        """Start the worker thread (idempotent)."""
        with self._cv:
            if self._running:
                return
            self._running = True
            self._generation += 1
            self._thread = threading.Thread(
                target=self._run, args=(self._generation,), name="spatial-mllm-answer",
                daemon=True,
            )
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker; questions still queued are answered MODEL_ERROR, and so is the one
        being answered when it has not finished ``timeout_s`` later (a stopped or hung model):
        its own answer, should it come later, is then dropped -- one answer per question."""
        with self._cv:
            self._running = False
            pending = list(self._queue)
            self._queue.clear()
            self._cv.notify_all()
        for request in pending:
            self._deliver(
                request,
                AnswerRecord.failure(request, AnswerStatus.MODEL_ERROR, "node shutting down"),
            )
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        with self._cv:
            generation = self._generation
            late = self._in_flight.get(generation)
            if late is not None:
                self._answered_by_stop.add(generation)
        if late is not None:
            self._deliver(late, AnswerRecord.failure(
                late, AnswerStatus.MODEL_ERROR, "node shutting down (the answer was not ready)"))
        self._thread = None

    def submit(self, request: QuestionRequest) -> bool:
        """Queue a question; False (and a BUSY answer already delivered) when full.

        Raises:
            QueueClosedError: the worker is not running.
        """
        with self._cv:
            if not self._running:
                raise QueueClosedError("the question worker is not running")
            if len(self._queue) < self._max_queued:
                self._queue.append(request)
                self._cv.notify()
                return True
            self.rejected_busy += 1
        self._deliver(
            request,
            AnswerRecord.failure(
                request,
                AnswerStatus.BUSY,
                f"question queue full ({self._max_queued} waiting); try again later",
            ),
        )
        return False

    def _run(self, generation: int) -> None:
        while True:
            with self._cv:
                while self._running and not self._queue and generation == self._generation:
                    self._cv.wait()
                if not self._running or generation != self._generation:
                    return  # stopped, or a thread that outlived its stop: a newer one serves
                request = self._queue.popleft()
                self._busy = True
                self._in_flight[generation] = request
            try:
                answer = self._handler(request)
            except Exception as err:  # a handler bug must not lose the question
                answer = AnswerRecord.failure(
                    request, AnswerStatus.MODEL_ERROR, f"{type(err).__name__}: {err}"
                )
            finally:
                with self._cv:
                    self._busy = False
                    self._in_flight.pop(generation, None)
                    already = generation in self._answered_by_stop  # stop() answered it
                    self._answered_by_stop.discard(generation)
            if not already:
                self._deliver(request, answer)

    def _deliver(self, request: QuestionRequest, answer: AnswerRecord) -> None:
        with self._cv:
            self.answered += 1
        try:
            self._on_answer(request, answer)
        except Exception:  # the sink is the ROS layer; its failure must not stop the worker
            _LOG.exception("answer sink failed for query %d", request.query_id)


def now() -> float:
    """The clock requests are stamped with (``QuestionRequest.received_s``)."""
    return time.monotonic()
