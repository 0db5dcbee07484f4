"""One thread budget for the engine (minicnn/threads.py, engine_room/team.py).

- ``mc.set_num_threads`` / ``mc.get_num_threads`` size the numba backend's team and the
  numpy backend's BLAS; BLAS runs on one thread inside the team; Numba's own pool never
  starts. The usual variables set the defaults, and bad values are clear errors.
- The team's parts cover the work exactly, run at once, and re-raise a part's error.
- A guard against the pools fighting again: in one process, a default-thread LeNet
  training step is at most twice as slow as a one-thread step (the fight made it 13x).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import minicnn as mc
from minicnn import threads
from minicnn.engine_room.team import ThreadTeam

REPO = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "NUMBA_NUM_THREADS")  # fmt: skip


def blas_threads() -> int:
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    return pools[0]["num_threads"]


@pytest.fixture
def restore_threads():
    """Put the budget back as it was (set_num_threads is for good, like torch's)."""
    requested = threads._requested
    yield
    threads._requested = requested
    threads.apply(mc.current_backend())


# ---- the team ------------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5])
@pytest.mark.parametrize("count", [1, 2, 7, 100])
def test_parts_cover_the_range_exactly_and_evenly(size, count):
    parts = ThreadTeam(size).parts(count, work=10**9)
    assert parts[0][0] == 0 and parts[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:], strict=False))
    assert len(parts) == min(size, count)
    lengths = [stop - start for start, stop in parts]
    assert max(lengths) - min(lengths) <= 1


def test_small_work_stays_on_the_calling_thread():
    team = ThreadTeam(4)
    assert team.parts(100, work=10) == [(0, 100)]
    assert team.parts(100, work=10, minimum=5) == [(0, 25), (25, 50), (50, 75), (75, 100)]


def test_map_runs_the_items_at_once_and_keeps_their_order():
    team = ThreadTeam(3)
    barrier = threading.Barrier(3, timeout=10)  # passes only if 3 items run at the same time

    def item(k):
        barrier.wait()
        return k * k, threading.get_ident()

    results = team.map(item, range(3))
    assert [square for square, _ in results] == [0, 1, 4]
    assert results[0][1] == threading.get_ident()  # the caller runs the first item
    assert len({ident for _, ident in results}) == 3


def test_map_inside_a_part_runs_on_that_thread():
    team = ThreadTeam(2)

    def outer(k):
        return team.map(lambda _: threading.get_ident(), range(3)), threading.get_ident()

    for inner, ident in team.map(outer, range(2)):
        assert inner == [ident] * 3  # no deadlock: a part never waits for the team


def test_an_error_in_a_part_is_raised_after_every_part_ended():
    team = ThreadTeam(3)
    finished = []

    def item(k):
        if k == 1:
            raise ValueError("part 1 failed")
        time.sleep(0.05)
        finished.append(k)

    with pytest.raises(ValueError, match="part 1 failed"):
        team.map(item, range(3))
    assert sorted(finished) == [0, 2]


def test_an_interrupt_waits_for_every_part_and_leaves_the_team_in_step():
    """Ctrl-C in the caller's own part: the workers' parts still finish before map
    raises, and the next operation gets its own results, not the interrupted one's."""
    team = ThreadTeam(2)
    finished = []

    def item(k):
        if k == 0:
            raise KeyboardInterrupt
        time.sleep(0.1)
        finished.append(k)

    with pytest.raises(KeyboardInterrupt):
        team.map(item, range(2))
    assert finished == [1]
    assert team.map(lambda k: k * 10, range(2)) == [0, 10]


def test_two_threads_may_use_one_team_at_once():
    team = ThreadTeam(2)
    results = {}

    def user(name):
        results[name] = [team.map(lambda k: (name, k), range(4)) for _ in range(200)]

    users = [threading.Thread(target=user, args=(name,)) for name in "ab"]
    for thread in users:
        thread.start()
    for thread in users:
        thread.join(timeout=60)
    for name in "ab":
        assert results[name] == [[(name, k) for k in range(4)]] * 200


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_computes_with_a_team_of_its_own():
    team = ThreadTeam(2)
    assert team.map(lambda k: k, range(2)) == [0, 1]
    child = os.fork()
    if child == 0:  # the child: its parent's workers are not here
        signal.alarm(20)  # a hang would end the child, not the test run
        ok = team.size == 1 and team.map(lambda k: k + 1, range(2)) == [1, 2]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert team.map(lambda k: k, range(2)) == [0, 1]  # the parent's team still works


# ---- the budget ----------------------------------------------------------------------
def test_blas_is_held_to_one_thread_again_after_someone_else_raised_it(restore_threads):
    from threadpoolctl import threadpool_limits

    with mc.use_backend("numba"):
        mc.set_num_threads(2)
        threadpool_limits(2)  # another library, or the user, between two calls
        mc.set_num_threads(2)
        assert blas_threads() == 1


def test_set_num_threads_sizes_the_team_and_keeps_blas_on_one_thread(restore_threads):
    with mc.use_backend("numba") as backend:
        mc.set_num_threads(3)
        assert mc.get_num_threads() == 3 == backend.team.size
        assert blas_threads() == 1
        assert threads.thread_pools() == {"team": 3, "blas": 1}
        mc.set_num_threads(1)
        assert backend.team.size == 1


def test_the_numpy_backend_gives_the_budget_to_blas(restore_threads):
    mc.set_num_threads(2)
    with mc.use_backend("numpy"):
        assert mc.get_num_threads() == 2 == blas_threads()
    with mc.use_backend("numba"):
        assert blas_threads() == 1


@pytest.mark.parametrize("bad", [0, -1])
def test_set_num_threads_refuses_counts_below_one(bad):
    with pytest.raises(ValueError, match=f"expected a whole number of threads >= 1, got {bad}"):
        mc.set_num_threads(bad)


@pytest.mark.parametrize("bad", [1.5, "2", True, None])
def test_set_num_threads_refuses_what_is_not_a_whole_number(bad):
    with pytest.raises(TypeError, match="set_num_threads: expected a whole number of threads"):
        mc.set_num_threads(bad)


def test_the_default_is_the_cores_this_process_may_use():
    assert threads.available_cores() == len(os.sched_getaffinity(0))


# ---- the environment, read by a fresh interpreter --------------------------------------
def run_python(code: str, **env_vars) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_vars, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


REPORT = (
    "import minicnn as mc; from minicnn.threads import thread_pools\n"
    "for name in ('numba', 'numpy'):\n"
    "    with mc.use_backend(name):\n"
    "        print(name, mc.get_num_threads(), thread_pools())\n"
    "import numba.np.ufunc.parallel as p; print('numba pool started', p._is_initialized)\n"
)


@pytest.mark.parametrize(
    "env, numba_team, numpy_blas",
    [
        ({}, None, None),  # the cores
        ({"OMP_NUM_THREADS": "1"}, 1, 1),
        ({"NUMBA_NUM_THREADS": "1"}, 1, None),
        ({"OPENBLAS_NUM_THREADS": "1"}, None, 1),
        ({"OMP_NUM_THREADS": "1,1"}, 1, 1),  # OpenMP's per-level list: the first counts
    ],
    ids=["none", "OMP", "NUMBA", "OPENBLAS", "OMP-list"],
)
def test_the_usual_variables_set_the_defaults(env, numba_team, numpy_blas):
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    result = run_python(REPORT, **env)
    assert result.returncode == 0, result.stderr
    cores = len(os.sched_getaffinity(0))
    lines = result.stdout.splitlines()
    team = numba_team or cores
    assert lines[0] == f"numba {team} {{'team': {team}, 'blas': 1}}"
    blas = numpy_blas or cores
    assert lines[1] == f"numpy {blas} {{'blas': {blas}}}"
    assert lines[2] == "numba pool started False"


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_a_bad_thread_variable_is_a_clear_error(value):
    result = run_python("import minicnn as mc; mc.tensor([1.0])", OMP_NUM_THREADS=value)
    assert result.returncode != 0
    message = (
        f"ValueError: environment variable OMP_NUM_THREADS: expected a whole number of "
        f"threads >= 1, got {value!r}"
    )
    assert message in result.stderr


# ---- the guard -----------------------------------------------------------------------
def test_default_threads_are_never_much_slower_than_one(restore_threads):
    """A LeNet training step at the recipe's batch, default threads against one thread,
    timed in turns in this one process. The pools' fight made the default 13x slower;
    noise on a shared machine moves the ratio by tens of percent, never to 2."""
    pytest.importorskip("numba", reason="needs Numba (pip install -e '.[numba]')")
    with mc.use_backend("numba"):
        mc.manual_seed(0)
        net = mc.models.lenet()
        rng = np.random.default_rng(0)
        x = mc.tensor(rng.random((256, 1, 28, 28), dtype=np.float32))
        y = mc.tensor(rng.integers(0, 10, 256))
        optimizer = mc.optim.SGD(net.parameters(), lr=0.1)
        loss_fn = mc.nn.CrossEntropyLoss()

        def step_seconds(count: int) -> float:
            mc.set_num_threads(count)
            start = time.perf_counter()
            optimizer.zero_grad()
            loss_fn(net(x), y).backward()
            optimizer.step()
            return time.perf_counter() - start

        default = threads.available_cores()
        for count in (1, default):  # warm up both: compile, fill the buffer pool
            step_seconds(count)
        one, many = [], []
        for _ in range(7):
            one.append(step_seconds(1))
            many.append(step_seconds(default))
    ratio = statistics.median(many) / statistics.median(one)
    assert ratio <= 2.0, (
        f"a LeNet step on {default} threads took {ratio:.1f}x as long as on 1 "
        f"({statistics.median(many) * 1e3:.1f} ms vs {statistics.median(one) * 1e3:.1f} ms)"
    )
