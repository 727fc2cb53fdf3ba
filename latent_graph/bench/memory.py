"""Memory and load measurement: peak RSS (psutil sampler thread or getrusage), CUDA peak, load average."""

from __future__ import annotations

import os
import platform
import threading
from typing import Any


class PeakMemory:
    """Context manager sampling peak RSS (and CUDA peak) while a block runs.

    Attributes (after exit): ``base`` RSS bytes at entry, ``peak`` RSS bytes,
    ``gpu_peak`` CUDA bytes or None, ``source`` "psutil" or "getrusage".
    """

    def __init__(self, device: Any = None, interval: float = 0.02) -> None:
        self.interval = interval
        self.device = device
        self.base = self.peak = 0
        self.gpu_peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            import psutil

            self._proc: Any = psutil.Process()
            self.source = "psutil"
        except ImportError:
            self._proc = None
            self.source = "getrusage"

    def _rss(self) -> int:
        if self._proc is not None:
            return int(self._proc.memory_info().rss)
        import resource

        scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())

    def _cuda(self) -> bool:
        return self.device is not None and getattr(self.device, "type", str(self.device)).startswith("cuda")

    def __enter__(self) -> PeakMemory:
        self.base = self.peak = self._rss()
        if self._cuda():
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        if self._proc is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._rss())
        if self._cuda():
            import torch

            self.gpu_peak = int(torch.cuda.max_memory_allocated(self.device))


def loadavg() -> tuple[float, float, float]:
    """The 1/5/15-minute load averages (NaN where the OS has none)."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return (float("nan"),) * 3


__all__ = ["PeakMemory", "loadavg"]
