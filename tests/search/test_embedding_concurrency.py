"""One forward pass at a time per process: request threads of one web worker queue for the model
instead of each running it with the process's torch threads (which would oversubscribe the cores)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from PIL import Image


class Recording:
    """Wraps a model; records how many forward passes ran at the same moment."""

    def __init__(self, model) -> None:
        self.model, self.running, self.most = model, 0, 0
        self.lock = threading.Lock()

    def __call__(self, inputs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # long enough for the other threads to arrive meanwhile
            return self.model(inputs)
        finally:
            with self.lock:
                self.running -= 1

    def __getattr__(self, name):
        return getattr(self.model, name)


def test_concurrent_searches_in_one_process_run_the_model_one_at_a_time(monkeypatch):
    from search.embedder import backbone_embedder

    embedder = backbone_embedder()  # the model itself: no database needed
    recording = Recording(embedder.model)
    monkeypatch.setattr(embedder, "model", recording)
    pictures = [Image.new("RGB", (300, 200), (40 * i, 90, 200 - 30 * i)) for i in range(6)]

    with ThreadPoolExecutor(max_workers=6) as pool:
        vectors = list(pool.map(embedder.embed_one, pictures))

    assert len(vectors) == 6 and all(v.shape == (embedder.dim,) for v in vectors)
    assert recording.most == 1
