"""The driver a ``ray`` job runs on the cluster: places the workers and runs the user's command in each.

Shipped to the cluster as ``cloudjobs_ray_driver.py`` (a ``py_modules`` package uploaded to the head's GCS),
so it imports nothing but the standard library and ``ray``: the cluster need not have cloudjobs-mcp.

It creates one placement group with one bundle per worker (strategy SPREAD: on different nodes when the
cluster has room, packed otherwise), starts one small actor in each bundle, and has each actor run
``/bin/sh -c <command>`` with the environment contract every provider gives: RANK, WORLD_SIZE,
LOCAL_RANK=0 (each worker sees only its own GPUs), MASTER_ADDR (rank 0's node IP), MASTER_PORT (a port
free on that node), CLOUDJOBS_JOB_ID, CLOUDJOBS_POD_ID, PYTHONUNBUFFERED=1, and CUDA_VISIBLE_DEVICES=""
for a CPU-only spec.

Each worker's output is kept per worker: ``<logs>/cloudjobs/<job>/<pod>.log`` on the driver's node (every
line prefixed with its epoch time, so a window of time can be read), and the driver's own log gets every
line as ``[<pod>] <line>``. ``state.json`` beside them holds the pods' status, node IP, exit code and the
events, rewritten atomically; the provider reads both through Ray's log API.

Ends: all workers exit 0 → exit 0 (SUCCEEDED); a worker fails → the others are stopped, exit with its
code (FAILED); the max runtime passes → the workers are stopped and the driver asks its own job
supervisor to stop the job (STOPPED); SIGTERM (a stop) → the workers are stopped within the grace time.
The command runs in its worker actor's process group, which Ray kills whole when the actor's process exits
(per-worker process groups), so nothing it starts outlives the job; a stop signals its process tree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

STATE_FILE = "state.json"
POLL_SECONDS = 0.25
MAX_EVENTS = 200
MAX_LINE = 16384


def _now() -> float:
    return time.time()


class Worker:
    """One worker: runs the command in a subprocess and buffers its output for the driver."""

    def __init__(self, pod_id: str, grace_seconds: float) -> None:
        self.pod_id = pod_id
        self.grace = grace_seconds
        self.proc: subprocess.Popen[bytes] | None = None
        self.lines: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.reader: threading.Thread | None = None

    def info(self) -> dict[str, object]:
        import ray

        ctx = ray.get_runtime_context()
        return {"ip": ray.util.get_node_ip_address(), "node_id": ctx.get_node_id(), "pid": os.getpid()}

    def free_port(self) -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            return int(s.getsockname()[1])

    def start(self, command: str, env: dict[str, str]) -> float:
        full = {**os.environ, **env}
        # In the actor's own process group, which Ray kills as a whole when the actor's process exits
        # (its per-worker process groups): nothing the command starts outlives the job.
        self.proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=full,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return _now()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for raw in iter(lambda: self.proc.stdout.readline(MAX_LINE), b""):  # type: ignore[union-attr]
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self.lock:
                self.lines.append((_now(), text))

    def drain(self) -> tuple[list[tuple[float, str]], int | None]:
        """New output lines since the last call, and the exit code once the command ended and was read."""
        code = None if self.proc is None else self.proc.poll()
        if code is not None:
            self._signal_tree(signal.SIGKILL)  # whatever the command left running in the background
            if self.reader is not None:
                self.reader.join(timeout=2)
        with self.lock:
            lines, self.lines = self.lines, []
        return lines, code

    def terminate(self) -> int | None:
        """Stop the command (SIGTERM, then SIGKILL after the grace time); its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_tree(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                pass
        self._signal_tree(signal.SIGKILL)
        return self.proc.wait()

    def _signal_tree(self, sig: int) -> None:
        """Signal the command's shell and every process below it (found through /proc)."""
        assert self.proc is not None
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children.setdefault(ppid, []).append(int(entry))
        tree, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        for pid in tree:
            if pid == self.proc.pid and self.proc.returncode is not None:
                continue  # reaped: the pid may belong to someone else now
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


class State:
    """The job's pods and events, as ``state.json`` (atomic rewrite) plus one log file per pod."""

    def __init__(self, directory: str, pods: list[str], bundle: dict[str, float], strategy: str) -> None:
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.data: dict[str, object] = {
            "version": 1,
            "phase": "WaitingForResources",
            "reason": None,
            "reason_code": None,
            "bundle": bundle,
            "strategy": strategy,
            "master": None,
            "pods": [
                {
                    "pod_id": p,
                    "rank": i,
                    "status": "Pending",
                    "ip": None,
                    "node_id": None,
                    "exit_code": None,
                    "started_at": None,
                    "finished_at": None,
                    "reason": None,
                }
                for i, p in enumerate(pods)
            ],
            "events": [],
        }
        self.files = {p: open(os.path.join(directory, f"{p}.log"), "a", encoding="utf-8") for p in pods}

    def pods(self) -> list[dict[str, object]]:
        return self.data["pods"]  # type: ignore[return-value]

    def event(self, message: str, source: str | None = None) -> None:
        events: list[dict[str, object]] = self.data["events"]  # type: ignore[assignment]
        events.append({"time": _now(), "source": source, "message": message})
        del events[:-MAX_EVENTS]
        print(f"[cloudjobs] {message}", flush=True)
        self.save()

    def write(self, pod_id: str, lines: list[tuple[float, str]]) -> None:
        f = self.files[pod_id]
        for t, text in lines:
            f.write(f"{t:.3f} {text}\n")
            sys.stdout.write(f"[{pod_id}] {text}\n")
        f.flush()
        sys.stdout.flush()

    def save(self) -> None:
        tmp = os.path.join(self.dir, STATE_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.data, f)
        os.replace(tmp, os.path.join(self.dir, STATE_FILE))


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cloudjobs_ray_driver")
    p.add_argument("--job", required=True)
    p.add_argument("--pods", required=True, help="comma-separated pod ids in RANK order")
    p.add_argument("--bundle", required=True, help="JSON: the Ray resources of one worker")
    p.add_argument("--max-runtime-seconds", type=float, required=True)
    p.add_argument("--grace-seconds", type=float, default=2.0)
    p.add_argument("--strategy", default="SPREAD")
    p.add_argument("--cpu-only", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(argv)
    if args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return args


def _feasible(bundle: dict[str, float], count: int) -> str | None:
    """None when the cluster's nodes can ever hold ``count`` bundles, else why not."""
    import ray

    room = 0
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        total = node.get("Resources", {})
        fits = min((int(total.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0), default=count)
        room += fits
    if room >= count:
        return None
    return f"the cluster's nodes can hold {room} worker(s) of {json.dumps(bundle)}, {count} were asked"


def _self_stop(job: str) -> bool:
    """Ask this job's supervisor to stop it, so Ray records it STOPPED; False when that is not possible."""
    import ray

    try:
        supervisor = ray.get_actor(f"_ray_internal_job_actor_{job}", namespace="SUPERVISOR_ACTOR_RAY_NAMESPACE")
        supervisor.stop.remote()
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    pods = args.pods.split(",")
    bundle = {k: float(v) for k, v in json.loads(args.bundle).items()}
    command = " ".join(args.command) if len(args.command) != 1 else args.command[0]
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    ctx: Any = ray.init(address="auto", log_to_driver=False, logging_level=logging.WARNING)
    # After ray.init, which installs its own SIGTERM handler (it dumps a stack and kills the process).
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    logs = os.path.join(ctx.address_info["session_dir"], "logs")
    state = State(os.path.join(logs, "cloudjobs", args.job), pods, bundle, args.strategy)
    why = _feasible(bundle, len(pods))
    if why is not None:
        state.data.update(phase="Failed", reason=f"No placement is possible: {why}.", reason_code="Unschedulable")
        for pod in state.pods():
            pod.update(status="Failed", reason="unschedulable")
        state.event(f"cannot place the workers: {why}")
        return 3
    state.event(f"placing {len(pods)} worker(s), one bundle of {json.dumps(bundle)} each ({args.strategy})")
    pg = placement_group([dict(bundle) for _ in pods], strategy=args.strategy, name=f"cloudjobs-{args.job}")
    ready = pg.ready()
    while True:
        done, _ = ray.wait([ready], timeout=POLL_SECONDS)
        if done:
            break
        if stop.is_set():
            remove_placement_group(pg)
            state.data.update(
                phase="Stopped", reason="stopped while waiting for resources", reason_code="JobStoppedByUser"
            )
            for pod in state.pods():
                pod.update(status="Stopped", reason="never placed")
            state.event("stopped before the workers were placed")
            return 143
    num_cpus = bundle.get("CPU", 0.0)
    num_gpus = bundle.get("GPU", 0.0)
    custom = {k: v for k, v in bundle.items() if k not in ("CPU", "GPU", "memory")}
    actor_cls = ray.remote(Worker)
    actors: list[Any] = [
        actor_cls.options(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            resources=custom,
            memory=bundle.get("memory") or None,
            scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=i),
            max_restarts=0,
        ).remote(pod, args.grace_seconds)
        for i, pod in enumerate(pods)
    ]
    infos = ray.get([a.info.remote() for a in actors])
    master_addr = str(infos[0]["ip"])
    master_port = str(ray.get(actors[0].free_port.remote()))
    state.data["master"] = f"{master_addr}:{master_port}"
    env_base = {"WORLD_SIZE": str(len(pods)), "LOCAL_RANK": "0", "MASTER_ADDR": master_addr}
    env_base.update(MASTER_PORT=master_port, CLOUDJOBS_JOB_ID=args.job, PYTHONUNBUFFERED="1")
    if args.cpu_only:
        env_base["CUDA_VISIBLE_DEVICES"] = ""
    envs = [{**env_base, "RANK": str(i), "CLOUDJOBS_POD_ID": pod} for i, pod in enumerate(pods)]
    starts = ray.get([a.start.remote(command, env) for a, env in zip(actors, envs, strict=True)])
    for pod, info, at in zip(state.pods(), infos, starts, strict=True):
        pod.update(status="Running", ip=info["ip"], node_id=info["node_id"], started_at=at)
    state.data["phase"] = "Running"
    deadline = time.monotonic() + args.max_runtime_seconds  # counted from the workers' start, as elsewhere
    for pod in state.pods():
        state.event(f"started on node {pod['ip']} (RANK {pod['rank']})", source=str(pod["pod_id"]))
    state.event(f"rendezvous at MASTER_ADDR={master_addr} MASTER_PORT={master_port}")

    running = dict(enumerate(actors))
    failed: tuple[int, int] | None = None
    ending: str | None = None
    while running:
        results = ray.get([a.drain.remote() for a in running.values()])
        for (rank, _), (lines, code) in zip(list(running.items()), results, strict=True):
            pod = state.pods()[rank]
            if lines:
                state.write(str(pod["pod_id"]), lines)
            if code is not None:
                del running[rank]
                pod.update(exit_code=code, finished_at=_now(), status="Succeeded" if code == 0 else "Failed")
                state.event(f"exited with code {code}", source=str(pod["pod_id"]))
                if code != 0 and failed is None:
                    failed = (rank, code)
        if not running:
            break
        if failed is not None:
            ending = f"{pods[failed[0]]} failed with exit code {failed[1]}: stopping the other workers"
        elif stop.is_set():
            ending = "stop requested: stopping the workers"
        elif time.monotonic() > deadline:
            ending = f"max runtime of {args.max_runtime_seconds:g} s reached: stopping the workers"
        if ending is not None:
            state.event(ending)
            codes = ray.get([a.terminate.remote() for a in running.values()])
            drained = ray.get([a.drain.remote() for a in running.values()])
            for rank, code, (lines, _) in zip(list(running), codes, drained, strict=True):
                pod = state.pods()[rank]
                if lines:
                    state.write(str(pod["pod_id"]), lines)
                pod.update(exit_code=code, finished_at=_now(), status="Stopped", reason=ending.split(":")[0])
            running.clear()
            break
        time.sleep(POLL_SECONDS)

    if failed is not None:
        state.data.update(
            phase="Failed", reason=f"{pods[failed[0]]} exited with code {failed[1]}", reason_code="PodFailed"
        )
        state.event("job failed")
        return failed[1] if 0 < failed[1] < 256 else 1
    if ending is None:
        state.data.update(phase="Succeeded")
        state.event("all workers succeeded")
        return 0
    if stop.is_set():
        state.data.update(phase="Stopped", reason="stopped by request", reason_code="JobStoppedByUser")
        state.event("workers stopped")
        return 143
    state.data.update(
        phase="Stopped",
        reason=f"max runtime of {args.max_runtime_seconds:g} s exceeded; the job was stopped",
        reason_code="MaxRuntimeExceeded",
    )
    state.event("workers stopped: max runtime exceeded")
    if _self_stop(args.job):
        stop.wait(30)  # the supervisor stops this process and records the job STOPPED
    return 124


if __name__ == "__main__":
    sys.exit(main())
