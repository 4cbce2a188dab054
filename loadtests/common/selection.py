"""Which user classes run.

Locust's --tags filters tasks, not classes: a class left without tasks would still be spawned
and fail. Such classes are dropped here. A run that names neither tags nor classes runs the
customer mix only: the `opt_in` classes (rush, abuse, health) would distort it.
"""

from __future__ import annotations

import sys

from locust import User
from locust.env import Environment
from locust.runners import WorkerRunner


def select_users(environment: Environment) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return  # a worker spawns whatever classes the master sends it, by name
    options = environment.parsed_options
    tags, excluded = set(options.tags or ()), set(options.exclude_tags or ())

    def has_tasks_left(user: type[User]) -> bool:
        task_tags = [getattr(task, "locust_tag_set", set()) for task in user.tasks]
        return any((not tags or t & tags) and not t & excluded for t in task_tags)

    candidates = environment.user_classes
    if not tags and not options.user_classes:
        candidates = [user for user in candidates if not getattr(user, "opt_in", False)]
    selected = [user for user in candidates if has_tasks_left(user)]
    if not selected:
        sys.exit(f"no user class has tasks tagged {sorted(tags)} (excluding {sorted(excluded)})")
    environment.user_classes[:] = selected
