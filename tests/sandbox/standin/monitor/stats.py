"""What the monitoring stand-ins report: the sandbox apps' own requests and their plans' gauges.

Every request an app's data plane serves is recorded (time, status, latency),
so Azure Monitor's Requests / Http5xx / HttpResponseTime and the Prometheus
counters describe the traffic that really happened. A test that cannot wait
ten minutes for a window to fill may add synthetic history in the past
(`backfill`), as if the app had served it then.

Plans have no real CPU or memory here: their CpuPercentage and
MemoryPercentage are gauges an admin call sets, from a moment on (optionally in
the past), and every reader (Azure Monitor grains, the Prometheus CPU counter)
integrates the same timeline.
"""

import bisect
import collections
import time

DEFAULT_CPU_PERCENT = 20.0
DEFAULT_MEMORY_PERCENT = 35.0
# Azure Monitor keeps 93 days; the sandbox keeps what a test can ask for.
KEEP_S = 6 * 3600


class RequestLog:
    def __init__(self):
        self.events = collections.defaultdict(collections.deque)  # app key -> (epoch, status, latency_s)
        # Prometheus counters never go down: cumulative since the last reset, not pruned.
        self.totals = collections.defaultdict(lambda: {"by_status": collections.Counter(), "latency_sum": 0.0,
                                                       "count": 0})

    def record(self, key, status, latency_s, at=None):
        at = time.time() if at is None else at
        events = self.events[key]
        event = (at, int(status), float(latency_s))
        if events and at < events[-1][0]:
            # Backfilled history: keep the log in time order.
            events.insert(bisect.bisect(events, event), event)
        else:
            events.append(event)
        while events and events[0][0] < time.time() - KEEP_S:
            events.popleft()
        total = self.totals[key]
        total["by_status"][str(int(status))] += 1
        total["latency_sum"] += float(latency_s)
        total["count"] += 1

    def backfill(self, key, count, status, latency_s, start, end):
        step = (end - start) / max(count, 1)
        for n in range(count):
            self.record(key, status, latency_s, at=start + step * (n + 0.5))

    def window(self, key, start, end):
        return [e for e in self.events.get(key, ()) if start <= e[0] < end]

    def clear(self):
        self.events.clear()
        self.totals.clear()


class Gauges:
    """Per plan: [(since_epoch, cpu_percent, memory_percent)], the last entry at or before t applies."""

    def __init__(self):
        self.timelines = {}
        self.started = time.time()

    def set(self, key, cpu=None, memory=None, since=None):
        since = time.time() if since is None else since
        cpu_now, memory_now = self.at(key, since)
        # A change "since 10 minutes ago" overrides whatever was set after that moment.
        timeline = [e for e in self.timelines.get(key, []) if e[0] < since]
        timeline.append((since, cpu_now if cpu is None else float(cpu), memory_now if memory is None else float(memory)))
        self.timelines[key] = timeline
        return timeline[-1]

    def at(self, key, when):
        value = (DEFAULT_CPU_PERCENT, DEFAULT_MEMORY_PERCENT)
        for since, cpu, memory in self.timelines.get(key, []):
            if since <= when:
                value = (cpu, memory)
        return value

    def cpu_seconds(self, key, until):
        """The CPU time a one-core process would have used at the gauge's percentage since start."""
        points = [(self.started, *self.at(key, self.started))]
        points += [e for e in self.timelines.get(key, []) if self.started < e[0] <= until]
        total = 0.0
        for (since, cpu, _memory), nxt in zip(points, points[1:] + [(until, 0, 0)]):
            total += max(0.0, nxt[0] - since) * cpu / 100.0
        return total

    def clear(self):
        self.timelines.clear()
        self.started = time.time()
