"""Lance commits optimistically: a writer that loses a race to a parallel writer's commit gets an
error and tries again."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRIES = 8
RETRYABLE = re.compile(r"conflict|retry|concurrent|commit|preempt", re.IGNORECASE)


def with_retries(action: Callable[[], T], what: str, attempts: int = RETRIES) -> T:
    """Run `action`, retrying with jittered backoff when a concurrent commit won the race."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as error:  # lance raises plain OSError/RuntimeError for commit conflicts
            if attempt == attempts - 1 or not RETRYABLE.search(str(error)):
                raise
            log.info("%s lost a commit race (attempt %d): %s", what, attempt + 1, error)
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
