"""The progress watcher of `renkou simulate`/`renkou run` shares the monitor's one database connection: it must
never sample while another sample runs, and must stop between samples when told to."""

from __future__ import annotations

import asyncio
import io

from rich.console import Console

from services.cli.ingest_progress import Display, Report, Sample, watch


class _OneAtATime:
    """A monitor whose sample takes a while and fails the test if two overlap (as asyncpg would refuse)."""

    def __init__(self) -> None:
        self.busy = False
        self.samples = 0

    async def sample(self) -> Sample:
        assert not self.busy, "two samples at once on one connection"
        self.busy = True
        try:
            await asyncio.sleep(0.05)
            self.samples += 1
            return Sample(on_kafka=10, projected=self.samples, dead_letters=0)
        finally:
            self.busy = False


async def test_the_watcher_stops_between_samples_so_the_next_sampler_has_the_connection_alone() -> None:
    monitor = _OneAtATime()
    display = Display(10, Console(file=io.StringIO()))
    report = Report()
    running = asyncio.Event()
    running.set()
    watcher = asyncio.create_task(watch(monitor, display, report, running))  # type: ignore[arg-type]
    await asyncio.sleep(0.57)  # about when the watcher's second sample runs
    running.clear()
    await asyncio.wait_for(watcher, 1.0)
    assert not monitor.busy
    taken = monitor.samples
    assert taken >= 1 and report.last.projected == taken  # the watcher's last sample was finished, not cut off
    assert (await monitor.sample()).projected == taken + 1
