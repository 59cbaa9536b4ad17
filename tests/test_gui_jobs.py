"""The app's background jobs (``ngp_app.gui.jobs``): progress, ETA, cancel, and outcomes delivered on the UI thread.
No window and no model: the UI thread is this test's thread, which drains the queue the runner posts to."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from ngp_app.gui.jobs import CANCELLED, DONE, FAILED, Job, JobCancelled, JobQueue, JobRunner, format_seconds


class FakeUI:
    """Stands in for Session.post / apply_pending: records the thread each posted call runs on."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.ran_on: list[int] = []

    def post(self, fn) -> None:
        self.calls.put(fn)

    def drain(self) -> int:
        n = 0
        while not self.calls.empty():
            self.calls.get()()
            self.ran_on.append(threading.get_ident())
            n += 1
        return n


def test_result_reaches_the_ui_thread_only_when_it_drains():
    ui = FakeUI()
    runner = JobRunner(ui.post)
    seen: list = []
    work_thread: list[int] = []

    def work(job: Job) -> int:
        work_thread.append(threading.get_ident())
        for i in range(4):
            job.report((i + 1) / 4, f"part {i + 1}")
        return 42

    job = runner.submit("sum", work, on_done=lambda r: seen.append((r, threading.get_ident())))
    job.join(10)
    assert work_thread[0] != threading.get_ident()  # the work ran off this (the UI) thread
    assert seen == [] and job.active  # nothing is handled until the UI thread drains its queue
    assert ui.drain() == 1
    assert seen == [(42, threading.get_ident())] and job.state == DONE and job.result == 42
    assert job.fraction == 1.0 and job.stage == "part 4" and runner.active() == []


def test_cancel_stops_the_work_at_its_next_report_and_calls_on_cancel():
    ui = FakeUI()
    runner = JobRunner(ui.post)
    started, reports = threading.Event(), []
    outcome: list[str] = []

    def work(job: Job) -> None:
        started.set()
        for i in range(10_000):
            time.sleep(0.001)
            job.report(i / 10_000)
            reports.append(i)
        outcome.append("finished")  # never reached

    job = runner.submit(
        "long", work, on_done=lambda r: outcome.append("done"), on_cancel=lambda: outcome.append("cancelled")
    )
    assert started.wait(10)
    job.cancel()
    job.join(10)
    ui.drain()
    assert job.state == CANCELLED and outcome == ["cancelled"] and len(reports) < 10_000
    with pytest.raises(JobCancelled):
        job.check()


def test_errors_are_reported_once_on_the_ui_thread():
    ui = FakeUI()
    runner = JobRunner(ui.post)
    errors: list[BaseException] = []

    def work(job: Job) -> None:
        job.report(0.5, "halfway")
        raise ValueError("disk on fire")

    job = runner.submit("write", work, on_error=errors.append)
    job.join(10)
    ui.drain()
    assert job.state == FAILED and len(errors) == 1 and "disk on fire" in str(errors[0])
    assert job.describe().endswith("failed: disk on fire")  # the message, not the exception's class name


_FAILING_JOB = """
import logging, sys
from ngp_app.gui.jobs import JobRunner
from ngp_app.errors import NgpError
logging.basicConfig(level=logging.DEBUG if sys.argv[1] == "-v" else logging.INFO, format="[ngp] %(message)s")
pending = []
runner = JobRunner(pending.append)
def work(job):
    raise NgpError("scene.json: not a scene")
runner.submit("load", work).join(30)
for fn in pending:
    fn()
"""


@pytest.mark.parametrize("verbose", [False, True], ids=["default", "verbose"])
def test_a_failed_job_is_one_log_line_and_a_traceback_only_with_v(verbose: bool) -> None:
    """Issue 22 item 11, in a real process logging as ``ngp`` does: one line per failed job, the traceback with -v."""
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", _FAILING_JOB, "-v" if verbose else "-"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert ("Traceback" in res.stderr) == verbose, res.stderr
    if not verbose:
        assert res.stderr.strip().splitlines() == ["[ngp] job load failed: scene.json: not a scene"], res.stderr


def test_eta_follows_the_rate_of_progress_and_describe_shows_it():
    job = Job("render", 1)
    assert job.eta() is None  # no rate yet
    job.report(0.0, "rendering")
    job._first = (time.perf_counter() - 10.0, 0.0)  # as if the first report came 10 s ago
    job.report(0.25)
    eta = job.eta()
    assert eta is not None and 29.0 < eta < 31.5  # a quarter in 10 s: three quarters take ~30 s
    text = job.describe()
    assert "render: rendering" in text and "25%" in text and "ETA 0:3" in text
    cb = job.progress_callback(0.5, 1.0, "second half")
    cb(50, 100)
    assert job.fraction == 0.75 and job.stage == "second half"
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "1:05"


def test_visible_keeps_finished_jobs_briefly_and_close_cancels_everything():
    ui = FakeUI()
    runner = JobRunner(ui.post)
    gate = threading.Event()

    def wait_for_gate(job: Job) -> None:
        while not gate.is_set():
            job.report(None)
            time.sleep(0.005)

    quick = runner.submit("quick", lambda job: 1)
    slow = runner.submit("slow", wait_for_gate)
    quick.join(10)
    ui.drain()
    now = time.perf_counter()
    assert {j.label for j in runner.visible(now)} == {"quick", "slow"}
    assert [j.label for j in runner.visible(now + 60)] == ["slow"]  # the finished one is forgotten later
    runner.close(timeout=10)
    ui.drain()
    assert slow.state == CANCELLED and not slow._thread.is_alive()


def test_queued_jobs_run_one_at_a_time_in_order_and_a_waiting_one_can_be_cancelled():
    posted: queue.Queue = queue.Queue()
    runner, videos = JobRunner(posted.put), JobQueue("video")
    running, order, gate = [], [], threading.Event()

    def work(name):
        def run(job):
            with videos.turn(job):
                running.append(name)
                assert len(running) == 1  # never two at once
                gate.wait(5)
                order.append(name)
                running.remove(name)
            return name

        return run

    jobs = {}
    for name in "abc":
        jobs[name] = runner.submit(name, work(name))
        videos.add(jobs[name], f"{name}.mp4")
    assert videos.output_taken("b.mp4") and not videos.output_taken("d.mp4")
    deadline = time.time() + 5
    while "2 videos ahead" not in jobs["c"].stage and time.time() < deadline:
        time.sleep(0.01)
    assert jobs["b"].stage == "queued: 1 video ahead" and jobs["c"].stage == "queued: 2 videos ahead"
    assert videos.waiting() == 2
    jobs["b"].cancel()
    jobs["b"].join(5)
    gate.set()
    for name in "ac":
        jobs[name].join(5)
    while not posted.empty():
        posted.get()()
    assert order == ["a", "c"] and [jobs[n].state for n in "abc"] == [DONE, CANCELLED, DONE]
    assert not videos.output_taken("a.mp4") and videos.waiting() == 0
