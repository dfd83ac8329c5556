"""The champion being served, reloaded without a restart when the published snapshot names a new one.

A background thread looks at the snapshot file about once a second. When it changed, the champion it names is
loaded from its artifact (checksum verified), checked (finite prices for a few current listings) and warmed beside
the one serving, with what the snapshot knows (names, training coverage, current listings); then it is swapped in by
one assignment. A request reads ``holder.served`` once and keeps that object, so a swap never changes a model
under a request in flight. A champion that cannot be loaded or checked never replaces a working one: the old one
keeps serving and the reason is logged and reported (``problem``).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from carprice.config import ServingConfig
from carprice.serving import store
from carprice.serving.valuation import Comparables, Knowledge, value_cars
from carprice.training.modeling import ModelArtifactError, PriceModel, load_model
from carprice.training.registry import NoChampionError, RegisteredModel, champion
from carprice.warehouse import Warehouse

log = logging.getLogger(__name__)


class ModelCheckError(ValueError):
    """A loaded model that does not predict usable prices."""


@dataclass(frozen=True)
class Served:
    """One champion with what it is served with, all from one snapshot."""

    registered: RegisteredModel
    model: PriceModel
    knowledge: Knowledge
    comparables: Comparables        # current listings with their valuations
    as_of: pd.Timestamp             # when the newest listing was last seen
    snapshot_published_at: pd.Timestamp

    @property
    def version(self) -> str:
        return self.registered.version


def snapshot_key(path: Path) -> tuple[int, int, int] | None:
    """What tells one published snapshot from the next (a new file is renamed over the old); None when absent."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def check_model(model: PriceModel, features: pd.DataFrame) -> None:
    """Raise ModelCheckError unless ``model`` predicts finite, positive prices and effects for ``features``."""
    if features.empty:
        raise ModelCheckError("no current listing to check the model on")
    lower, predicted, upper = model.predict_interval(features, num_threads=1)
    baseline, effects = model.explain_log(features, num_threads=1)
    for name, values in (("prices", np.concatenate([lower, predicted, upper])), ("effects", effects.to_numpy()),
                         ("baselines", baseline)):
        if not np.all(np.isfinite(values)):
            raise ModelCheckError(f"the model predicts non-finite {name} for current listings")
    if np.any(predicted <= 0):
        raise ModelCheckError("the model predicts prices of zero")


def load_served(snapshot: Path, config: ServingConfig, current: Served | None = None) -> Served:
    """The champion the snapshot names, loaded, checked and warmed with the snapshot's data; the model object of
    ``current`` is reused when the champion did not change. Raises NoChampionError, ModelArtifactError,
    ModelCheckError or duckdb.Error."""
    published = pd.Timestamp(os.stat(snapshot).st_mtime, unit="s", tz="UTC")
    wh = store.open_snapshot(snapshot)
    # DuckDB keeps one database per path and process while a connection to it is open: holding one for the whole
    # load makes every read below see the same snapshot, even if a newer one is renamed over it meanwhile.
    with wh.connect():
        return _load(wh, config, current, published)


def _load(wh: Warehouse, config: ServingConfig, current: Served | None, published: pd.Timestamp) -> Served:
    registered = champion(wh)
    same = current is not None and (current.version, current.registered.sha256) == (registered.version,
                                                                                     registered.sha256)
    model = current.model if same else load_model(registered.artifact_path, expected_sha256=registered.sha256)
    sample = store.check_features(wh, config.check_rows)
    check_model(model, sample)
    knowledge = Knowledge.from_frames(store.known_cars(wh), store.training_listings(wh, registered),
                                      store.training_ranges(wh, registered), config.min_model_listings)
    as_of = store.data_as_of(wh) or published
    served = Served(registered=registered, model=model, knowledge=knowledge,
                    comparables=Comparables(store.current_valued_listings(wh)), as_of=as_of,
                    snapshot_published_at=published)
    # Warm the whole valuation path (features, explanation, rating) once before the first request needs it.
    value_cars(model, knowledge, sample.rename(columns={"market_price": "asking_price"}), as_of)
    return served


class ModelHolder:
    """Holds the champion being served and swaps in a new one when the snapshot names it (see the module)."""

    def __init__(self, snapshot: Path, config: ServingConfig | None = None):
        self.snapshot = Path(snapshot)
        self.config = config or ServingConfig()
        self._served: Served | None = None
        self.problem: str | None = "not loaded yet"
        self._seen: tuple[int, int, int] | None = None
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def served(self) -> Served | None:
        """The champion serving now (None before the first one loads); read it once per request."""
        return self._served

    def refresh(self) -> bool:
        """Load the snapshot's champion if the snapshot changed since the last look; True when a new one serves."""
        with self._refreshing:
            key = snapshot_key(self.snapshot)
            if key is None:
                if self._served is None:
                    self.problem = (f"no published snapshot at {self.snapshot} yet: `carprice run` publishes one "
                                    "after its first batch")
                return False
            if key == self._seen:
                return False
            self._seen = key
            try:
                served = load_served(self.snapshot, self.config, self._served)
            except NoChampionError as exc:
                self.problem = str(exc)
                return False
            except (ModelArtifactError, ModelCheckError) as exc:
                self._keep_serving(exc)
                return False
            except (duckdb.Error, OSError) as exc:
                # Perhaps passing (the file being replaced, a full disk): the same snapshot is tried again.
                self._seen = None
                self._keep_serving(exc)
                return False
            except Exception as exc:  # any other failure to load keeps the old model serving (logged)
                log.exception("carprice serve: loading the snapshot's champion failed")
                self._keep_serving(exc)
                return False
            previous, self._served = self._served, served  # the swap: one assignment
            self.problem = None
            if previous is None or previous.version != served.version:
                log.info("carprice serve: serving %s (was %s)", served.version,
                         previous.version if previous else "none")
            return True

    def _keep_serving(self, exc: BaseException) -> None:
        """Record why the snapshot's champion was not loaded; the one serving (if any) keeps serving."""
        keeping = f"; still serving {self._served.version}" if self._served else ""
        self.problem = f"the snapshot's champion was not loaded: {exc}{keeping}"
        log.warning("carprice serve: %s", self.problem)

    def start(self) -> None:
        """Load what the snapshot has now, then keep looking for a new one in a background thread."""
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="champion-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_interval_s):
            try:
                self.refresh()
            except Exception as exc:  # the poller must outlive any one bad snapshot: logged, and shown by /readyz
                log.exception("carprice serve: reloading the champion failed")
                self._keep_serving(exc)
