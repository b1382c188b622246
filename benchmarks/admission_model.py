"""How much of the build-vs-bare-loop gap the admission policy alone costs: a discrete-event model, no I/O.

Why: on this noisy machine a wall-clock ratio cannot separate the build's fixed costs from how it admits work.
The model has no CPU cost at all, only the two policies over the same request chains (those of the sim teacher:
per conversation one request, or two with probability `consult_p` (a consult, then the answer), each with a
lognormal delay, median 0.5 s, shape 0.6):
- bare loop: every conversation admitted at once; each request waits in one FIFO semaphore of `concurrency`
  (a conversation's next turn queues behind the waiting first turns);
- build: at most `slots` conversations admitted, in stream order, each holding its slot over all its turns;
  requests capped at `concurrency` by the backend's FIFO semaphore (the build's default `teacher.max_in_flight` is
  4 x the backend's concurrency: this model is why).
Results: benchmarks/results/admission_model.json (median makespan over seeds per policy, and the ideal).

    python benchmarks/admission_model.py
"""

from __future__ import annotations

import heapq
import json
import math
import random
import statistics
from pathlib import Path
from provenance import write_results

RESULTS = Path(__file__).parent / "results" / "admission_model.json"


def chains(seed: int, n: int, consult_p: float = 0.6, median_s: float = 0.5, sigma: float = 0.6) -> list[list[float]]:
    rng = random.Random(seed)
    return [[median_s * math.exp(sigma * rng.gauss(0, 1)) for _ in range(2 if rng.random() < consult_p else 1)]
            for _ in range(n)]  # fmt: skip


def makespan(ch: list[list[float]], slots: int, concurrency: int) -> float:
    """Time until the last request ends, with `slots` conversations admitted and `concurrency` requests."""
    t, events, queue, free, nxt, active, step = 0.0, [], [], concurrency, 0, 0, [0] * len(ch)
    while True:
        while nxt < len(ch) and active < slots:  # admit in stream order
            queue.append(nxt)
            nxt, active = nxt + 1, active + 1
        while queue and free:  # FIFO requests
            i = queue.pop(0)
            free -= 1
            heapq.heappush(events, (t + ch[i][step[i]], i))
        if not events:
            return t
        t, i = heapq.heappop(events)
        free, step[i] = free + 1, step[i] + 1
        if step[i] < len(ch[i]):
            queue.append(i)
        else:
            active -= 1


def main() -> None:
    n, concurrency, seeds = 256, 32, range(200)
    policies = {"bare loop (all admitted)": n, "build, slots = concurrency (the old default)": concurrency,
                "slots = 1.5 x concurrency": 48, "slots = 2 x concurrency": 64,
                "slots = 4 x concurrency (the default)": 128}  # fmt: skip
    out = {name: round(statistics.median(makespan(chains(s, n), slots, concurrency) for s in seeds), 3)
           for name, slots in policies.items()}  # fmt: skip
    out["ideal (total delay / concurrency)"] = round(statistics.median(
        sum(map(sum, chains(s, n))) / concurrency for s in seeds), 3)  # fmt: skip
    result = {"conversations": n, "concurrency": concurrency, "seeds": len(seeds), "median_makespan_s": out}
    write_results(RESULTS, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
