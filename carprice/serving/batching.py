"""Single valuations that arrive together are valued together.

Part of a valuation's cost is per call, not per car (features, LightGBM's per-call set-up), so a worker thread
takes every request waiting in the queue, up to a limit, and values them in one vectorized pass with the champion
serving at that moment. Under load the passes grow and the cost per car falls; a lone request is a pass of one.
Two workers take turns: LightGBM releases the GIL while it explains one pass, so the other builds the next.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from carprice.config import ServingConfig
from carprice.serving.holder import ModelHolder, Served
from carprice.serving.valuation import value_cars


class NoChampion(LookupError):
    """No champion is serving (the reason is the holder's problem)."""


@dataclass(frozen=True)
class _Job:
    car: dict
    effects: bool
    future: Future


class ValuationBatcher:
    """Values queued single cars in passes of up to ``config.coalesce_max``; ``submit`` returns a future of
    (the Served that valued it, the valuation with its comparables)."""

    def __init__(self, holder: ModelHolder, config: ServingConfig):
        self.holder, self.config = holder, config
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._run, name=f"valuation-batcher-{i}", daemon=True)
                         for i in range(max(1, self.config.valuation_workers))]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put(None)  # one each; a worker that takes one stops
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []

    def submit(self, car: dict, effects: bool = True) -> Future:
        """Queue one car (a ``schemas.Car`` as a dict) for the next pass; ``effects``: with its feature effects."""
        future: Future = Future()
        self._queue.put(_Job(car, effects, future))
        return future

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            while len(jobs) < self.config.coalesce_max:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this pass
                    break
                jobs.append(more)
            # A request cancelled while it waited (client gone, server shutting down) is not valued.
            jobs = [j for j in jobs if j.future.set_running_or_notify_cancel()]
            # Explaining a car costs more than pricing it: those that asked for effects get them, the others not.
            for effects in (True, False):
                group = [j for j in jobs if j.effects is effects]
                if group:
                    self._value(group, effects)

    def _value(self, jobs: list[_Job], effects: bool) -> None:
        served = self.holder.served  # one model for the whole pass, even if a swap happens during it
        if served is None:
            for job in jobs:
                job.future.set_exception(NoChampion(self.holder.problem or "no champion loaded yet"))
            return
        try:
            valuations = value_one_pass(served, [job.car for job in jobs], self.config, effects)
        except Exception as exc:  # noqa: BLE001  (re-raised in every waiting request, as a 500: none waits forever)
            for job in jobs:
                job.future.set_exception(exc)
            return
        for job, valuation in zip(jobs, valuations):
            job.future.set_result((served, valuation))


def value_one_pass(served: Served, cars: list[dict], config: ServingConfig, effects: bool = True) -> list[dict]:
    """Valuations of ``cars`` with comparables (and ``effects``), in one vectorized pass."""
    columns = {name: [car.get(name) for car in cars] for name in cars[0]}
    valuations = value_cars(served.model, served.knowledge, columns, served.as_of, effects=effects,
                            top=config.top_effects)
    for valuation, car in zip(valuations, cars):
        valuation["comparables"] = served.comparables.nearest(car["make"], car["model"], car["model_year"],
                                                              car.get("mileage_km"), config.comparables)
    return valuations
