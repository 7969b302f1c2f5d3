"""How many CPU threads a generation uses: a policy (cores, training, concurrent generations) and a
guard that measures whether more than one thread actually pays off on this machine right now.

Why the guard: on an idle machine a lone stream decodes faster on every core, but OpenMP teams
that find their cores busy (other processes: an editor, a browser, builds; the shared development
machine's other engineers) wait for each other at every barrier and were 4 to 30 times slower per
token than one thread (bench/inference). The agent cannot see that load coming, so it measures:
the decode steps' time with the policy's count and with one thread (a moving average for the
choice in use, the median of the last check's steps for the other), and it uses the faster; it
re-checks the other choice now and then (four steps: the first after a switch is not counted), less
often while the answer stays the same.
"""

from __future__ import annotations

import os
import statistics
import threading


def torch_threads_for(device: str, training_active: bool, cores: int | None = None,
                      configured: int | None = None, generations: int = 1) -> int | None:
    """Intra-op threads for one generation on a CPU agent.

    The agent's cores (``--serve-threads`` caps it), or half of them while a training job runs on
    the agent, shared among the ``generations`` running at once (at least 1 each). A lone stream
    on an idle agent uses every core; two streams get half each, and so on: the teams of
    concurrent generations (and of a training job) never add up to more than the cores.
    """
    if device != "cpu":
        return None
    n = cores or os.cpu_count() or 1
    budget = min(configured, n) if configured else n
    if training_active:
        budget = min(budget, max(1, n // 2))
    return max(1, budget // max(1, generations))


class ThreadGuard:
    """Chooses between the policy's thread count and one thread from measured decode steps.

    ``choose(want, kind)`` before a step, ``record(kind, threads, seconds)`` after a decode step
    that ran with the same count as the step before it (the first step after a switch is not
    representative). ``kind`` separates step types of different cost (the fused path, the modules).
    """

    PROBE_STEPS = 4        # steps of the other choice per check (the first is not recorded; the
                           # next ones still pay for waking the team: their median counts)
    FIRST_INTERVAL = 64    # decode steps between checks, doubled while the answer stays the same
                           # (x8 after a check that ended early) ...
    MAX_INTERVAL = 2048    # ... up to this
    ABORT = 3.0            # a check's step this many times slower than the choice in use ends it
    ABORT_COLD = 10.0      # ... for its first step (waking the team) this many times
    ALPHA = 0.3            # weight of a new sample in the moving average of the choice in use
                           # (the median of a check's samples of the other choice replaces its value)

    def __init__(self):
        self._lock = threading.Lock()
        self._avg: dict[tuple, float] = {}
        self._steps = 0
        self._next_check = self.FIRST_INTERVAL
        self._interval = self.FIRST_INTERVAL
        self._checking_until = -1
        self._best: dict[tuple, int] = {}   # (kind, want) -> the choice in use
        self._probe: dict[tuple, list[float]] = {}   # this check's samples of the other choice
        self._far = False   # the last check ended early: the other choice was far slower

    def averages(self) -> dict[tuple, float]:
        """(kind, threads) -> the moving average of a decode step's seconds (benchmarks, logs)."""
        with self._lock:
            return dict(self._avg)

    def choose(self, want: int | None, kind, prefill: bool = False) -> int | None:
        """The thread count for the next forward pass. A prefill (a whole prompt: many times a
        decode step's work) never checks the other choice."""
        if not want or want <= 1:
            return want
        with self._lock:
            many, one = self._avg.get((kind, want)), self._avg.get((kind, 1))
            if prefill:   # before both are measured: one thread, the choice that is never a disaster
                return (want if many <= one else 1) if many is not None and one is not None else 1
            self._steps += 1
            if one is None:
                return 1
            if many is None:   # measured like a check of the other choice (ends at once if far slower)
                self._best[(kind, want)] = 1
                return want
            best, other = (want, 1) if many <= one else (1, want)
            if self._steps < self._checking_until:
                return other
            if self._steps >= self._next_check:
                if self._checking_until >= 0:   # a check ended: check less often while nothing changes,
                    same = self._best.get((kind, want)) == best   # much less after a disaster
                    grow = 8 if self._far else 2
                    self._interval = min(self.MAX_INTERVAL, self._interval * grow) if same else self.FIRST_INTERVAL
                self._far = False
                self._best[(kind, want)] = best
                self._probe.clear()
                self._checking_until = self._steps + self.PROBE_STEPS
                self._next_check = self._checking_until + self._interval
                return other
            self._best[(kind, want)] = best
            return best

    def record(self, kind, threads: int | None, seconds: float, warm: bool = True) -> None:
        """A decode step's seconds; ``warm``: the step before it ran with the same thread count."""
        if not threads:
            return
        with self._lock:
            key = (kind, threads)
            old = self._avg.get(key)
            in_use = {b for (k, _), b in self._best.items() if k == kind}
            if threads in in_use and old is not None:
                if warm:
                    self._avg[key] = old + self.ALPHA * (seconds - old)
                return
            # the other choice during a check (or the first samples): a step far slower than the
            # choice in use ends the check at once (on a busy machine each can cost seconds)
            ref = min((self._avg[(kind, b)] for b in in_use if (kind, b) in self._avg), default=None)
            far = ref is not None and seconds > (self.ABORT if warm else self.ABORT_COLD) * ref
            if far:
                self._checking_until = self._steps
                self._far = True
            if warm:
                samples = self._probe.setdefault(key, [])
                samples.append(seconds)
                self._avg[key] = statistics.median(samples)
            elif far and (old is None or old < seconds):
                self._avg[key] = seconds
