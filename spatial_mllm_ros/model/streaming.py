"""Generation that reports each token and stops when asked: transformers' streamer and
stopping-criteria hooks, nothing hand-made around ``generate``.

* :class:`TokenStream` (a ``BaseStreamer``) calls ``on_token(token_ids, text)`` after every new
  token with all the tokens and the decoded text so far (special tokens skipped);
* :class:`StopWhen` (a ``StoppingCriteria``) ends generation as soon as ``should_stop()`` is
  true -- checked between tokens, so a cancel or a deadline takes effect within one token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

__all__ = ["OnToken", "StopWhen", "TokenStream"]

#: (token ids so far, decoded text so far) -> None
OnToken = Callable[[list[int], str], None]


class TokenStream(BaseStreamer):
    """Collects generated tokens; the first ``put`` (the prompt) is skipped."""

    def __init__(self, tokenizer: Any, on_token: OnToken) -> None:
        self.tokenizer = tokenizer
        self.on_token = on_token
        self.ids: list[int] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.ids.extend(int(t) for t in value.reshape(-1).tolist())
        self.on_token(list(self.ids), self.tokenizer.decode(self.ids, skip_special_tokens=True))

    def end(self) -> None:
        return None


class StopWhen(StoppingCriteria):
    """Stops every sequence once ``should_stop()`` returns true; records that it did."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.stopped = False

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor | None, **kwargs: Any
    ) -> torch.BoolTensor:
        if self.should_stop():
            self.stopped = True
        flags: torch.BoolTensor = torch.full(  # type: ignore[assignment]
            (input_ids.shape[0],), self.stopped, dtype=torch.bool, device=input_ids.device
        )
        return flags
