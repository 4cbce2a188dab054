from __future__ import annotations

from pathlib import Path

from labkit import flame

ROOT = Path(__file__).resolve().parents[3]

# py-spy's raw format: process and thread frames first, then the stack root first, then a count.
HEAD = 'process 7:"pickup serve";thread (0x1):"MainThread";<module> (pickup:10);'
LOOP = "main (service/cli.py:63);Runner.run (asyncio/runners.py:118)"
ASGI = f"{LOOP};run_asgi (uvicorn/protocols/http/httptools_impl.py:422)"
RAW = "\n".join(
    [
        f"{HEAD}{ASGI};send (uvicorn/protocols/http/httptools_impl.py:524) 30",
        f"{HEAD}{ASGI};send (uvicorn/protocols/http/httptools_impl.py:551) 10",
        f"{HEAD}{ASGI};handler (service/http/routes/stores.py:56) 20",
        f"{HEAD}{LOOP} 40",
        "not a stack line",
    ]
)


def test_lines_of_one_function_merge_and_the_loop_and_process_frames_are_dropped() -> None:
    stacks = flame.parse(RAW)

    assert stacks == [
        (["run_asgi (httptools_impl.py)", "send (httptools_impl.py)"], 30),
        (["run_asgi (httptools_impl.py)", "send (httptools_impl.py)"], 10),
        (["run_asgi (httptools_impl.py)", "handler (stores.py)"], 20),
        (["(event loop, native code)"], 40),
    ]


def test_a_frame_is_as_wide_as_its_samples_and_its_callees_sum_within_it() -> None:
    root = flame.tree(flame.parse(RAW))

    asgi = root.children["run_asgi (httptools_impl.py)"]
    assert (root.samples, asgi.samples) == (100, 60)
    assert {n: c.samples for n, c in asgi.children.items()} == {
        "send (httptools_impl.py)": 40,
        "handler (stores.py)": 20,
    }


def test_self_time_counts_the_innermost_frame_largest_first() -> None:
    rows = flame.self_time(flame.parse(RAW), top=2)

    assert rows == [
        {"function": "send (httptools_impl.py)", "self_%": 40.0, "samples": 40},
        {"function": "(event loop, native code)", "self_%": 40.0, "samples": 40},
    ]


def test_the_committed_profile_from_before_the_hot_path_work_reads_back() -> None:
    stacks = flame.parse((ROOT / "docs/img/hot-menu-before.collapsed").read_text())

    assert sum(n for _, n in stacks) > 1000
    top = flame.self_time(stacks, top=1)[0]
    assert top["function"] == "RequestResponseCycle.send (httptools_impl.py)"
