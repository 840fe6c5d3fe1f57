"""The per-run supervisor process: ``python -m cloudjobs_mcp.server.providers.local.supervisor --db DB --run RUN_ID``.

Started by ``Executor.launch`` (see ``executor.py``) with the pods' commands and environments as JSON on
stdin. It daemonizes (forks, prints the daemon's PID on stdout and exits; the daemon starts a new
session), then:

* records its PID, and finishes the run as Stopped at once if a stop was requested before it started;
* for a queued run (``run_queue`` row), waits in Queuing until a scheduling step allocates it (woken by
  SIGUSR1, else polling every ``DB_POLL_SECONDS``; running a step itself every few seconds as a safety
  net), and finishes it Stopped ("it never ran") when it is stopped meanwhile; then sets each pod's
  CUDA_VISIBLE_DEVICES to its allocated GPUs;
* with sanity options, runs the pre-flight checks (``sanity.py``) and fails the run (SanityCheckFailed)
  before any pod starts when one fails;
* starts every pod as ``bash -c <command>`` in its own process group, stdout and stderr appended to the
  pod's log file, cwd the run's working directory;
* keeps each pod's log time index (``<pod_id>.idx``, see ``LogIndexWriter``): a sample before the pod
  starts, one every ``LOG_INDEX_SECONDS`` while its log grows, and a last one at its exit;
* waits for the pods (woken by SIGCHLD), recording each exit code or killing signal; when a pod's main
  process exits, whatever it left in its process group is killed (as a container would be);
* samples each live pod's CPU, memory and GPU use every ``metrics_interval`` (``metrics.py``);
* on the first non-zero exit, terminates the other pods and finishes the run Failed (a SIGKILL nobody
  here sent is checked against the memory cgroup's OOM-kill counter read before the pods started);
* runs a scheduling step in the transaction that finishes the run, so queued runs start as soon as it
  ends, and wakes their supervisors;
* on stop (SIGTERM/SIGINT to this process, or the run's stop flag in the DB, polled) or past the max
  runtime, sends SIGTERM to every live pod's process group, SIGKILL after the grace period, and finishes
  the run Stopped (reason_code JobStoppedByUser or MaxRuntimeExceeded);
* on an unexpected error, kills the pods and finishes the run Failed (reason_code SupervisorError).

It imports only the standard library and the executor's stdlib-only modules, to start fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudjobs_mcp.server.providers.local import scheduler
from cloudjobs_mcp.server.providers.local.executor import (
    CREATING,
    FAILED,
    LOG_INDEX_SECONDS,
    MAX_RUNTIME_EXCEEDED,
    NUDGE_SIGNAL,
    PENDING,
    POD_FAILED,
    POD_START_FAILED,
    RUNNING,
    SANITY_CHECK_FAILED,
    STOPPED,
    STOPPED_BY_USER,
    STOPPING,
    SUCCEEDED,
    SUPERVISOR_ERROR,
    TERMINAL,
    LogIndexWriter,
    describe_exit,
    format_seconds,
    killpg_quietly,
    nudge_supervisors,
    record_event,
    signal_name,
)
from cloudjobs_mcp.server.providers.local.metrics import (
    PodTarget,
    Sampler,
    meminfo_total_gb,
    oom_kill_counter,
    oom_killed_since,
    store_points,
)
from cloudjobs_mcp.server.providers.local.sanity import (
    CHECK_INIT,
    DEVICE_CHECK,
    SINGLE_NODE_COMM_CHECK,
    CheckOutcome,
    SanityOptions,
    check_devices,
    check_disk,
    check_interpreter,
    check_ports,
    check_workdir,
)
from cloudjobs_mcp.server.providers.local.store import Database

DB_POLL_SECONDS = 0.5


@dataclass
class _Pod:
    pod_id: str
    command: str
    env: dict[str, str]
    log: Path
    index: LogIndexWriter | None = None
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None
    signum: int | None = None
    terminated: bool = False  # we sent it SIGTERM/SIGKILL
    done: bool = False
    gpus: tuple[int, ...] = ()  # allocated by the queue
    started_wall: float = 0.0
    oom: bool | None = None  # for a SIGKILL nobody here sent: did its memory cgroup count an OOM kill?


@dataclass
class _Outcome:
    status: str
    reason: str
    reason_code: str | None
    pod_status: str = STOPPED
    pod_detail: str = ""


@dataclass
class Supervisor:
    db: Database
    run_id: str
    pods: list[_Pod]
    wakeup_fd: int
    stop_signal: list[int] = field(default_factory=list)

    # run settings, read from the DB
    workdir: Path = Path(".")
    max_runtime: float | None = None
    grace: float = 10.0
    # why the pods are being terminated, once they are
    outcome: _Outcome | None = None
    # from the payload
    metrics_interval: float | None = None
    cpus: float | None = None  # per pod, the base of cpu %
    memory_gb: float | None = None  # per pod, the base of memory %
    cuda_visible_devices: bool = False
    sanity: SanityOptions | None = None
    # state
    queued: bool = False
    oom_baseline: tuple[str, int] | None = None
    metric_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    sampler: Sampler | None = None

    def run(self) -> int:
        try:
            return self._run()
        except BaseException as exc:  # keep going: the run must end in a terminal status
            traceback.print_exc()
            self._kill_all(signal.SIGKILL)
            self._reap(wait=2.0)
            with contextlib.suppress(Exception):
                self._finish(_Outcome(FAILED, f"the job's supervisor failed: {exc!r}", SUPERVISOR_ERROR, FAILED))
            return 1

    # ----- main loop

    def _run(self) -> int:
        pid = os.getpid()
        with self.db.write() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
            if row is None:
                print(f"run {self.run_id} not found in {self.db.path}", file=sys.stderr)
                return 1
            if row["status"] in TERMINAL:
                return 0
            conn.execute("UPDATE runs SET supervisor_pid = ? WHERE run_id = ?", (pid, self.run_id))
            record_event(conn, self.run_id, None, f"supervisor started (pid {pid})")
            stop_requested = row["stop_requested_at"] is not None
            self.workdir = Path(row["workdir"])
            self.max_runtime = row["max_runtime_seconds"]
            self.grace = row["grace_seconds"]
            self.queued = (
                conn.execute("SELECT 1 FROM run_queue WHERE run_id = ?", (self.run_id,)).fetchone() is not None
            )
        if stop_requested or self.stop_signal:
            self._finish(_Outcome(STOPPED, "stopped by user request before its pods started", STOPPED_BY_USER))
            return 0
        if self.queued:
            allocation = self._wait_for_resources()
            if allocation is None:
                return 0
            for pod in self.pods:
                pod.gpus = tuple(allocation.get(pod.pod_id, ()))
                if self.cuda_visible_devices:
                    pod.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in pod.gpus)
        if self.sanity is not None:
            failed = self._sanity_checks(self.sanity)
            if failed is not None:
                self._finish(failed)
                return 0
        if self.stop_signal or self._stop_flag():
            self._finish(_Outcome(STOPPED, "stopped by user request before its pods started", STOPPED_BY_USER))
            return 0

        failure = self._start_pods()
        started = time.monotonic()
        deadline = started + self.max_runtime if self.max_runtime else None
        kill_at: float | None = None
        next_db_poll = started + DB_POLL_SECONDS
        next_index = started + LOG_INDEX_SECONDS
        next_metrics = started + (self.metrics_interval or 0.0)
        if self.metrics_interval:
            self.sampler = Sampler(nvidia_smi=shutil.which("nvidia-smi"))

        while True:
            exited = self._reap()
            if self.outcome is None:
                for pod in exited:
                    if pod.exit_code != 0 and not pod.terminated and failure is None:
                        assert pod.exit_code is not None
                        failure = _Outcome(
                            FAILED,
                            f"pod {pod.pod_id} {describe_exit(pod.exit_code, pod.signum, oom=pod.oom)}",
                            POD_FAILED,
                            pod_detail=f"terminated after pod {pod.pod_id} failed",
                        )
            if all(p.done for p in self.pods):
                outcome = self.outcome or failure
                if outcome is None:
                    n = len(self.pods)
                    outcome = _Outcome(SUCCEEDED, f"all {n} pod{'s' if n != 1 else ''} exited with code 0", None)
                self._finish(outcome)
                return 0

            now = time.monotonic()
            if self.outcome is None:
                outcome = None
                if failure is not None:
                    outcome = failure
                elif self.stop_signal or (now >= next_db_poll and self._stop_flag()):
                    how = f" (signal {signal_name(self.stop_signal[0])})" if self.stop_signal else ""
                    outcome = _Outcome(
                        STOPPED, "stopped by user request", STOPPED_BY_USER, pod_detail="stopped by user"
                    )
                    self._note(f"stopping{how}: sending SIGTERM to the pods, SIGKILL after {self.grace:g} s")
                elif deadline is not None and now >= deadline:
                    assert self.max_runtime is not None
                    limit = format_seconds(self.max_runtime)
                    outcome = _Outcome(
                        STOPPED,
                        f"max runtime of {limit} exceeded; the job was stopped",
                        MAX_RUNTIME_EXCEEDED,
                        pod_detail="max runtime exceeded",
                    )
                    self._note(f"max runtime of {limit} exceeded: stopping the pods")
                if outcome is not None:
                    self.outcome = outcome
                    if outcome.status == STOPPED:
                        self._set_status(STOPPING)
                    self._kill_all(signal.SIGTERM)
                    kill_at = now + self.grace
            if kill_at is not None and now >= kill_at:
                live = [p.pod_id for p in self.pods if not p.done]
                if live:
                    self._note(f"grace period of {self.grace:g} s over: sending SIGKILL to {', '.join(live)}")
                self._kill_all(signal.SIGKILL)
                kill_at = None

            if now >= next_db_poll:
                next_db_poll = now + DB_POLL_SECONDS
            if now >= next_index:
                next_index = now + LOG_INDEX_SECONDS
                for pod in self.pods:
                    if pod.index is not None and pod.proc is not None and not pod.done:
                        pod.index.sample()
            if self.metrics_interval and now >= next_metrics:
                next_metrics = now + self.metrics_interval
                self._sample_metrics()
            timeouts = [next_db_poll - now, next_index - now]
            if self.metrics_interval:
                timeouts.append(next_metrics - now)
            if deadline is not None and self.outcome is None:
                timeouts.append(deadline - now)
            if kill_at is not None:
                timeouts.append(kill_at - now)
            self._sleep(max(0.0, min(timeouts)))

    # ----- the queue

    def _wait_for_resources(self) -> dict[str, list[int]] | None:
        """Wait in Queuing until the queue allocates this run (its allocation) or it ends (None)."""
        never_ran = "stopped by user request while queued; it never ran"
        next_step = time.monotonic() + scheduler.SAFETY_STEP_SECONDS
        while True:
            if self.stop_signal:
                self._finish(_Outcome(STOPPED, never_ran, STOPPED_BY_USER))
                return None
            with self.db.read() as conn:
                row = conn.execute(
                    "SELECT r.status, r.stop_requested_at, q.allocated_at, q.allocation FROM runs r "
                    "LEFT JOIN run_queue q ON q.run_id = r.run_id WHERE r.run_id = ?",
                    (self.run_id,),
                ).fetchone()
            if row is None or row["status"] in TERMINAL:
                return None
            if row["stop_requested_at"] is not None and row["allocated_at"] is None:
                self._finish(_Outcome(STOPPED, never_ran, STOPPED_BY_USER))
                return None
            if row["allocated_at"] is not None:
                allocation: dict[str, list[int]] = json.loads(row["allocation"] or "{}")
                return allocation
            now = time.monotonic()
            if now >= next_step:  # the safety net; finishing runs schedule the queue themselves
                next_step = now + scheduler.SAFETY_STEP_SECONDS
                with self.db.write() as conn:
                    touched = scheduler.schedule_guarded(conn)
                nudge_supervisors([t for t in touched if t[0] != self.run_id])
                continue
            self._sleep(min(DB_POLL_SECONDS, next_step - now))

    # ----- sanity checks

    def _sanity_checks(self, options: SanityOptions) -> _Outcome | None:
        """Run the pre-flight checks (see sanity.py), recording each; the outcome when one failed."""
        logs = self.pods[0].log.parent if self.pods else self.workdir
        checks: list[tuple[str, Callable[[], CheckOutcome]]] = [
            (CHECK_INIT, lambda: check_interpreter([(p.command, p.env) for p in self.pods], self.workdir)),
            (CHECK_INIT, lambda: check_workdir(self.workdir)),
            (CHECK_INIT, lambda: check_disk([self.workdir, logs], options.min_free_gb)),
        ]
        gpus = sorted({g for p in self.pods for g in p.gpus})
        if gpus:
            smi = shutil.which("nvidia-smi", path=self.pods[0].env.get("PATH")) or shutil.which("nvidia-smi")
            checks.append((DEVICE_CHECK, lambda: check_devices(gpus, smi)))
        port_env = options.port_env
        ports = [p.env[port_env] for p in self.pods if port_env and port_env in p.env]
        if port_env and ports:
            checks.append((SINGLE_NODE_COMM_CHECK, lambda: check_ports(ports, port_env)))
        failures: list[tuple[int, str, str]] = []
        for number, (phase, check) in enumerate(checks, start=1):
            started = time.time()
            with self.db.write() as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO sanity_checks (run_id, check_number, phase, status, message, started_at)"
                    " VALUES (?, ?, ?, 'Running', '', ?)",
                    (self.run_id, number, phase, started),
                )
            try:
                outcome = check()
            except Exception as exc:
                outcome = CheckOutcome(False, f"the check itself failed: {exc!r}")
            with self.db.write() as conn:
                conn.execute(
                    "UPDATE sanity_checks SET status = ?, message = ?, finished_at = ? "
                    "WHERE run_id = ? AND check_number = ?",
                    ("Succeeded" if outcome.ok else "Failed", outcome.message, time.time(), self.run_id, number),
                )
            if not outcome.ok:
                failures.append((number, phase, outcome.message))
        if not failures:
            self._note(f"sanity check passed: all {len(checks)} checks succeeded")
            return None
        number, phase, message = failures[0]
        others = ""
        if len(failures) > 1:
            others = f" (checks {', '.join(str(f[0]) for f in failures[1:])} failed too)"
        self._note(f"sanity check failed: {len(failures)} of {len(checks)} checks failed; no worker was started")
        return _Outcome(
            FAILED,
            f"sanity check {number} ({phase}) failed: {message}{others}",
            SANITY_CHECK_FAILED,
            pod_detail="not started: the sanity check failed",
        )

    # ----- metrics

    def _sample_metrics(self) -> None:
        if self.sampler is None:
            return
        try:
            memory = (self.memory_gb or _machine_memory_gb()) * 1024**3
            targets = [
                PodTarget(p.pod_id, p.proc.pid, self.cpus or 1.0, memory, p.gpus, p.started_wall)
                for p in self.pods
                if p.proc is not None and not p.done
            ]
            points = self.sampler.sample(targets, time.time())
            if points:
                with self.db.write() as conn:
                    store_points(conn, self.run_id, points, self.metric_counts)
        except Exception:  # metrics never take the run down
            traceback.print_exc()

    def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([self.wakeup_fd], [], [], seconds)
            if ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wakeup_fd, 4096)

    # ----- pods

    def _start_pods(self) -> _Outcome | None:
        failure: _Outcome | None = None
        now = time.time()
        started: list[_Pod] = []
        self.oom_baseline = oom_kill_counter(os.getpid())  # the pods start in this process's cgroup
        for pod in self.pods:
            pod.started_wall = now
            if pod.index is not None:
                pod.index.start()
            try:
                with open(pod.log, "ab") as log:
                    pod.proc = subprocess.Popen(
                        ["bash", "-c", pod.command],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=self.workdir,
                        env=pod.env,
                        start_new_session=True,
                        close_fds=True,
                    )
                started.append(pod)
            except OSError as exc:
                failure = _Outcome(
                    FAILED,
                    f"pod {pod.pod_id} could not start: {exc}",
                    POD_START_FAILED,
                    pod_detail=f"terminated because pod {pod.pod_id} could not start",
                )
                pod.done = True
                with self.db.write() as conn:
                    conn.execute(
                        "UPDATE pods SET status = ?, detail = ?, finished_at = ? WHERE run_id = ? AND pod_id = ?",
                        (FAILED, f"could not start: {exc}", time.time(), self.run_id, pod.pod_id),
                    )
                    record_event(conn, self.run_id, pod.pod_id, f"could not start: {exc}")
                break
        for pod in self.pods:
            if not pod.done and pod.proc is None:  # not attempted after a start failure
                pod.done = True
        with self.db.write() as conn:
            for pod in started:
                assert pod.proc is not None
                conn.execute(
                    "UPDATE pods SET status = ?, pid = ?, started_at = ? WHERE run_id = ? AND pod_id = ?",
                    (RUNNING, pod.proc.pid, now, self.run_id, pod.pod_id),
                )
                gpus = f", CUDA_VISIBLE_DEVICES={pod.env['CUDA_VISIBLE_DEVICES']}" if self.cuda_visible_devices else ""
                record_event(conn, self.run_id, pod.pod_id, f"pod started (pid {pod.proc.pid}{gpus})", now)
            if started and failure is None:
                n = len(started)
                record_event(conn, self.run_id, None, f"started: {n} pod{'s' if n != 1 else ''} running", now)
            if started:  # a Stopping run (stop requested meanwhile) stays Stopping
                conn.execute(
                    "UPDATE runs SET started_at = ?, status = CASE WHEN status = ? THEN ? ELSE status END "
                    "WHERE run_id = ?",
                    (now, CREATING, RUNNING, self.run_id),
                )
            conn.execute(
                "UPDATE pods SET status = ?, detail = ? WHERE run_id = ? AND status = ?",
                (STOPPED, "not started", self.run_id, PENDING),
            )
        return failure

    def _reap(self, wait: float = 0.0) -> list[_Pod]:
        """Collect exited pods (waiting up to ``wait`` seconds for all), record them, return the new ones."""
        deadline = time.monotonic() + wait
        exited: list[_Pod] = []
        while True:
            for pod in self.pods:
                if pod.done or pod.proc is None:
                    continue
                rc = pod.proc.poll()
                if rc is None:
                    continue
                pod.done = True
                if rc < 0:
                    pod.signum = -rc
                    pod.exit_code = 128 + pod.signum
                else:
                    pod.exit_code = rc
                if not pod.terminated and pod.exit_code == 128 + signal.SIGKILL:
                    pod.oom = oom_killed_since(self.oom_baseline)
                # Whatever the pod's main process left behind in its group goes with it.
                killpg_quietly(pod.proc.pid, signal.SIGKILL)
                if pod.index is not None:
                    pod.index.sample(force=True)
                exited.append(pod)
            if wait <= 0 or all(p.done for p in self.pods) or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if exited:
            now = time.time()
            with self.db.write() as conn:
                for pod in exited:
                    assert pod.exit_code is not None
                    text = describe_exit(pod.exit_code, pod.signum, killed_by_us=pod.terminated, oom=pod.oom)
                    detail = text
                    if pod.terminated:
                        status = STOPPED
                        if self.outcome is not None and self.outcome.pod_detail:
                            detail = f"{self.outcome.pod_detail}; {text}"
                    else:
                        status = SUCCEEDED if pod.exit_code == 0 else FAILED
                    conn.execute(
                        "UPDATE pods SET status = ?, exit_code = ?, signal = ?, finished_at = ?, detail = ? "
                        "WHERE run_id = ? AND pod_id = ?",
                        (status, pod.exit_code, pod.signum, now, detail, self.run_id, pod.pod_id),
                    )
                    record_event(conn, self.run_id, pod.pod_id, f"pod {text}", now)
        return exited

    def _kill_all(self, signum: int) -> None:
        for pod in self.pods:
            if pod.proc is not None and not pod.done:
                pod.terminated = True
                killpg_quietly(pod.proc.pid, signum)

    # ----- DB

    def _stop_flag(self) -> bool:
        with self.db.read() as conn:
            row = conn.execute("SELECT stop_requested_at FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
        return row is None or row["stop_requested_at"] is not None

    def _set_status(self, status: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE runs SET status = ? WHERE run_id = ? AND status IN (?, ?)",
                (status, self.run_id, CREATING, RUNNING),
            )

    def _note(self, message: str) -> None:
        with self.db.write() as conn:
            record_event(conn, self.run_id, None, message)

    def _finish(self, outcome: _Outcome) -> None:
        now = time.time()
        with self.db.write() as conn:
            row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (self.run_id,)).fetchone()
            if row is None or row["status"] in TERMINAL:
                return
            # Pods never started (stop before start) or not collected (supervisor error).
            conn.execute(
                "UPDATE pods SET status = ?, detail = COALESCE(detail, ?), finished_at = COALESCE(finished_at, ?)"
                " WHERE run_id = ? AND status IN (?, ?)",
                (outcome.pod_status, outcome.pod_detail or "not started", now, self.run_id, PENDING, RUNNING),
            )
            conn.execute(
                "UPDATE runs SET status = ?, reason = ?, reason_code = ?, finished_at = ? WHERE run_id = ?",
                (outcome.status, outcome.reason, outcome.reason_code, now, self.run_id),
            )
            verb = {SUCCEEDED: "succeeded", FAILED: "failed", STOPPED: "stopped"}[outcome.status]
            record_event(conn, self.run_id, None, f"{verb}: {outcome.reason}", now)
            touched = scheduler.schedule_guarded(conn, now)  # what this run held is free again
        nudge_supervisors(touched)


def _daemonize() -> None:
    """Fork; the parent prints the child's PID and exits, the child starts its own session."""
    pid = os.fork()
    if pid:
        sys.stdout.write(f"{pid}\n")
        sys.stdout.flush()
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # stdout joins stderr (the run's supervisor.log)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cloudjobs_mcp.server.providers.local.supervisor")
    parser.add_argument("--db", required=True, type=Path)
    parser.add_argument("--run", required=True)
    args = parser.parse_args(argv)

    stop_signal: list[int] = []

    def on_stop(signum: int, _frame: Any) -> None:
        stop_signal.append(signum)

    # Installed before anyone can know our PID, and inherited by the daemon.
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, lambda _s, _f: None)  # not SIG_IGN: the pods would inherit that
    signal.signal(NUDGE_SIGNAL, lambda _s, _f: None)  # the queue allocated the run: wakes the loop
    payload = json.loads(sys.stdin.buffer.read())
    _daemonize()

    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda _s, _f: None)  # wakes the loop through the wakeup fd

    pods = [
        _Pod(
            p["pod_id"],
            p["command"],
            dict(p["env"]),
            Path(p["log"]),
            LogIndexWriter(Path(p["log"]), Path(p["index"])) if p.get("index") else None,
        )
        for p in payload["pods"]
    ]
    sup = Supervisor(Database(args.db), args.run, pods, read_fd, stop_signal)
    sup.metrics_interval = payload.get("metrics_interval")
    sup.cpus = payload.get("cpus")
    sup.memory_gb = payload.get("memory_gb")
    sup.cuda_visible_devices = bool(payload.get("cuda_visible_devices"))
    if payload.get("sanity") is not None:
        sup.sanity = SanityOptions(**payload["sanity"])
    return sup.run()


def _machine_memory_gb() -> float:
    # metrics' reader, not machine.memory_gb: machine.py imports the pydantic models, which would add ~0.3 s
    # to every job's start.
    total = meminfo_total_gb()
    return 1.0 if total is None else total


if __name__ == "__main__":
    sys.exit(main())
