"""Load shapes, chosen with `--shape ramp|step|spike|soak`.

Locust instantiates every LoadTestShape subclass it finds in the locustfile's namespace and,
headless, always uses the first one; no option picks among several (only the web UI's
`--class-picker` can). So the shapes live here, outside the locustfile, and `select()` installs
the one `--shape` names when Locust initialises; without `--shape` the run is a plain -u/-r/-t.

Every shape reads the common options: `-u` is the peak user count, `-r` the spawn rate and `-t`
the whole duration (60 s without one); each returns None at the end, so the run ends by itself.
"""

from __future__ import annotations

import math

from locust import LoadTestShape
from locust.env import Environment

DEFAULT_DURATION_S = 60.0


class PickupShape(LoadTestShape):
    abstract = True
    use_common_options = True
    peak, rate, duration = 1, 1.0, DEFAULT_DURATION_S

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        self.peak = max(1, options.num_users or 1)
        self.rate = float(options.spawn_rate or 1)
        self.duration = float(options.run_time or DEFAULT_DURATION_S)
        elapsed = self.get_run_time()
        return self.users_at(elapsed / self.duration) if elapsed < self.duration else None

    def users_at(self, progress: float) -> tuple[int, float]:
        raise NotImplementedError


class RampShape(PickupShape):
    """Grow evenly to the peak over the first 80 % of the run, then hold it."""

    def users_at(self, progress: float) -> tuple[int, float]:
        return self.peak, self.peak / (0.8 * self.duration)


class StepShape(PickupShape):
    """Five equal steps up to the peak, each reached at the spawn rate and then held."""

    steps = 5

    def users_at(self, progress: float) -> tuple[int, float]:
        step = min(int(progress * self.steps) + 1, self.steps)
        return math.ceil(self.peak * step / self.steps), self.rate


class SpikeShape(PickupShape):
    """A fifth of the peak, the whole peak at once for the middle fifth of the run, then back."""

    def users_at(self, progress: float) -> tuple[int, float]:
        users = self.peak if 0.4 <= progress < 0.6 else max(1, self.peak // 5)
        return users, max(self.rate, float(self.peak))


class SoakShape(PickupShape):
    """The peak, reached at the spawn rate and held for the whole run: give it -t 30m or more."""

    def users_at(self, progress: float) -> tuple[int, float]:
        return self.peak, self.rate


SHAPES = {"ramp": RampShape, "step": StepShape, "spike": SpikeShape, "soak": SoakShape}


def select(environment: Environment) -> None:
    if name := environment.parsed_options.shape:
        environment.shape_class = SHAPES[name]()
        environment.shape_class.runner = environment.runner
