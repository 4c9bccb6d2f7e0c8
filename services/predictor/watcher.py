"""The predictor's model watcher: learns of promotions and loads new versions off the hot path.

A thread listens on Redis pub/sub (``model:{name}:changed``) and polls ``model:{name}:active`` every
``poll_s`` seconds, so a missed message costs at most that long. When the active version differs
from the one being served it loads the new one completely (see :mod:`shared.models.serving`) and then
publishes it by replacing one reference; the predictor reads that reference once per batch, so no
batch is scored by two models or by none. A version that fails to load is reported once and the old
model keeps serving; it is retried only after ``retry_s``. While Redis is down the watcher keeps the
model it has and tries again with backoff.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shared.core.errors import DriftlineError, RedisError
from shared.io.redis import Redis, redis_errors
from shared.models.serving import ServingModel
from shared.registry.store import Registry

log = logging.getLogger(__name__)

Loader = Callable[[int], ServingModel]
FailureHandler = Callable[[int, Exception], None]
SwapHandler = Callable[[ServingModel, ServingModel | None], None]


class PromotionWatcher:
    """Keeps :meth:`current` pointing at a loaded copy of the model's active version."""

    def __init__(
        self,
        *,
        model: str,
        registry: Registry,
        client: Redis,
        loader: Loader,
        poll_s: float = 1.0,
        retry_s: float = 30.0,
        on_failure: FailureHandler | None = None,
        on_swap: SwapHandler | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self._model = model
        self._registry = registry
        self._client = client
        self._loader = loader
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._on_failure = on_failure
        self._on_swap = on_swap
        self._on_tick = on_tick
        self._current: ServingModel | None = None
        self._failed: dict[int, float] = {}
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None
        self._redis_down_since: float | None = None
        self.status = "starting"
        """What the watcher is doing, for /readyz and logs."""

    @property
    def refused(self) -> list[int]:
        """Versions that failed to load here (each retried after ``retry_s``)."""
        return sorted(self._failed)

    def current(self) -> ServingModel | None:
        """The model to score the next batch with (None until one has loaded)."""
        return self._current

    def wait_for_model(self, timeout_s: float) -> ServingModel | None:
        """Block until a model is loaded or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while self._current is None and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._changed.wait(min(remaining, 0.2))
            self._changed.clear()
        return self._current

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"model-watcher-{self._model}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close_pubsub()

    def check_now(self) -> None:
        """Compare the active version with the served one once (the thread's loop body)."""
        try:
            target = self._registry.active(self._model)
        except RedisError as exc:
            self._redis_down(exc)
            return
        self._redis_back()
        if target is None:
            self.status = (
                f"no active version of {self._model}: promote one (driftline models promote)"
            )
            return
        current = self._current
        if current is not None and current.version == target:
            self.status = f"serving {self._model} v{target}"
            return
        failed_at = self._failed.get(target)
        if failed_at is not None and time.monotonic() - failed_at < self._retry_s:
            return
        self._load(target, current)

    def _load(self, target: int, current: ServingModel | None) -> None:
        self.status = f"loading {self._model} v{target}"
        started = time.monotonic()
        try:
            loaded = self._loader(target)
        except RedisError as exc:
            self._redis_down(exc)
            return
        except Exception as exc:
            self._failed[target] = time.monotonic()
            kept = f"keeps serving v{current.version}" if current else "has no model to serve"
            log.error(
                "could not load %s v%d (%s); the predictor %s",
                self._model,
                target,
                exc,
                kept,
                extra={"model": self._model, "version": target},
            )
            self.status = f"v{target} failed to load: {exc}"
            if self._on_failure is not None:
                self._on_failure(target, exc)
            return
        self._failed.pop(target, None)
        self._current = loaded
        self._changed.set()
        self.status = f"serving {self._model} v{target}"
        log.info(
            "loaded %s v%d in %.0f ms (%s); serving it from the next batch",
            self._model,
            target,
            (time.monotonic() - started) * 1000,
            _scored_by(loaded),
            extra={"model": self._model, "version": target},
        )
        if self._on_swap is not None:
            self._on_swap(loaded, current)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_now()
            if self._on_tick is not None:
                self._on_tick()
            self._wait_for_change()

    def _wait_for_change(self) -> None:
        """Sleep up to ``poll_s``, waking early on a pub/sub message about this model."""
        if self._redis_down_since is not None:
            self._stop.wait(min(self._poll_s * 2, 5.0))
            return
        try:
            with redis_errors("listening for model changes"):
                if self._pubsub is None:
                    self._pubsub = self._client.pubsub(  # type: ignore[no-untyped-call,unused-ignore]
                        ignore_subscribe_messages=True
                    )
                    self._pubsub.subscribe(self._registry.keys.changed(self._model))
                self._pubsub.get_message(timeout=self._poll_s)
        except (RedisError, DriftlineError) as exc:
            self._close_pubsub()
            self._redis_down(exc)
            self._stop.wait(self._poll_s)

    def _close_pubsub(self) -> None:
        if self._pubsub is not None:
            # Closing a broken connection may fail; it is gone either way.
            with contextlib.suppress(Exception):
                self._pubsub.close()
            self._pubsub = None

    def _redis_down(self, exc: Exception) -> None:
        if self._redis_down_since is None:
            self._redis_down_since = time.monotonic()
            serving = f"v{self._current.version}" if self._current else "nothing yet"
            log.warning("Redis is unreachable (%s); serving %s until it is back", exc, serving)
        self.status = f"Redis unreachable: {exc}"

    def _redis_back(self) -> None:
        if self._redis_down_since is not None:
            log.info("Redis is back after %.1f s", time.monotonic() - self._redis_down_since)
            self._redis_down_since = None


def _scored_by(serving: ServingModel) -> str:
    """How the version's batches are scored, for its load message."""
    if serving.scorer.compiled:
        return "scored by its compiled pipeline, checked against scikit-learn"
    if serving.scorer.family == "sklearn":
        return "scored by scikit-learn: its pipeline has no compiled form"
    return "scored by River, one row at a time"
