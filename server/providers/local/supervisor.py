"""The per-run supervisor process: ``python -m server.providers.local.supervisor --db DB --run RUN_ID``.

Started by ``Executor.launch`` (see ``executor.py``) with the pods' commands and environments as JSON on
stdin. It daemonizes (forks, prints the daemon's PID on stdout and exits; the daemon starts a new
session), then:

* records its PID, and finishes the run as Stopped at once if a stop was requested before it started;
* starts every pod as ``bash -c <command>`` in its own process group, stdout and stderr appended to the
  pod's log file, cwd the run's working directory;
* keeps each pod's log time index (``<pod_id>.idx``, see ``LogIndexWriter``): a sample before the pod
  starts, one every ``LOG_INDEX_SECONDS`` while its log grows, and a last one at its exit;
* waits for the pods (woken by SIGCHLD), recording each exit code or killing signal; when a pod's main
  process exits, whatever it left in its process group is killed (as a container would be);
* on the first non-zero exit, terminates the other pods and finishes the run Failed;
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
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.providers.local.executor import (
    CREATING,
    FAILED,
    LOG_INDEX_SECONDS,
    MAX_RUNTIME_EXCEEDED,
    PENDING,
    POD_FAILED,
    POD_START_FAILED,
    RUNNING,
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
    record_event,
    signal_name,
)
from server.providers.local.store import Database

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
        if stop_requested or self.stop_signal:
            self._finish(_Outcome(STOPPED, "stopped by user request before its pods started", STOPPED_BY_USER))
            return 0

        failure = self._start_pods()
        started = time.monotonic()
        deadline = started + self.max_runtime if self.max_runtime else None
        kill_at: float | None = None
        next_db_poll = started + DB_POLL_SECONDS
        next_index = started + LOG_INDEX_SECONDS

        while True:
            exited = self._reap()
            if self.outcome is None:
                for pod in exited:
                    if pod.exit_code != 0 and not pod.terminated and failure is None:
                        assert pod.exit_code is not None
                        failure = _Outcome(
                            FAILED,
                            f"pod {pod.pod_id} {describe_exit(pod.exit_code, pod.signum)}",
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
            timeouts = [next_db_poll - now, next_index - now]
            if deadline is not None and self.outcome is None:
                timeouts.append(deadline - now)
            if kill_at is not None:
                timeouts.append(kill_at - now)
            self._sleep(max(0.0, min(timeouts)))

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
        for pod in self.pods:
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
                record_event(conn, self.run_id, pod.pod_id, f"pod started (pid {pod.proc.pid})", now)
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
                    text = describe_exit(pod.exit_code, pod.signum, killed_by_us=pod.terminated)
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
    parser = argparse.ArgumentParser(prog="python -m server.providers.local.supervisor")
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
    return sup.run()


if __name__ == "__main__":
    sys.exit(main())
