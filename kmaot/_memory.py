"""Process memory as Linux reports it (/proc/self/status), for the demo and tests."""
import threading


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_anon_bytes():
    """Anonymous resident memory (heap, not file pages) in bytes, or None off Linux."""
    kib = _status_kib("RssAnon")
    return None if kib is None else kib * 1024


class PeakAnon:
    """Context manager sampling RssAnon every ``interval`` seconds; ``.peak`` in bytes."""

    def __init__(self, interval=0.005):
        self.interval = interval
        self.peak = None
        self.start = None
        self._stop = threading.Event()

    def _sample(self):
        v = rss_anon_bytes()
        if v is not None and (self.peak is None or v > self.peak):
            self.peak = v

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self.start = rss_anon_bytes()
        self._sample()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self._sample()
