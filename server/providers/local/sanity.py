"""Pre-flight ("sanity") checks a supervisor runs before any pod of its run starts.

Stdlib only (imported by supervisor processes). Asked through ``Executor.launch(sanity=SanityOptions(...))``;
each check is recorded as a row of ``sanity_checks`` (numbered 1..n in the order below, status Running
while it runs, then Succeeded or Failed) in DLC's shape (check number, phase, status, message, times):

1. ``CheckInit``: the command's interpreter exists: its first word (after ``VAR=value`` assignments and
   ``exec``/``command``/``env``/``nohup``) resolved on the pods' PATH (relative to the working directory
   when it holds a '/'), or ``bash`` when it is a shell builtin or keyword (``cd``, ``if``, ``(``, ...).
2. ``CheckInit``: the working directory exists and a file can be created in it.
3. ``CheckInit``: free disk space of the working directory's (and the logs') file system is at least
   ``min_free_gb``.
4. ``DeviceCheck`` (only when the run holds GPUs): ``nvidia-smi`` lists each of them and reports numbers
   (utilization, memory) for it.
5. ``SingleNodeCommCheck`` (only when the pods have ``port_env``, MASTER_PORT by default): the rendezvous
   port can be bound on 127.0.0.1.

Every check runs (a failure does not skip the later ones, so one report shows every problem); the first
failure fails the run before any pod starts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudjobs_mcp.server.providers.local.metrics import query_gpus

CHECK_INIT = "CheckInit"
DEVICE_CHECK = "DeviceCheck"
SINGLE_NODE_COMM_CHECK = "SingleNodeCommCheck"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
RUNNING = "Running"
DEFAULT_MIN_FREE_GB = 1.0
ARG_KEYS = ("min_free_gb",)

# Words bash runs itself: a command starting with one needs only bash.
SHELL_WORDS = frozenset(
    """
    ! [[ ]] { } ( ) case do done elif else esac fi for function if in select then time until while coproc
    . : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown
    echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile
    popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true
    type typeset ulimit umask unalias unset wait
    """.split()
)
_PREFIX_WORDS = frozenset({"exec", "command", "nohup", "env", "time", "builtin"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass(frozen=True)
class SanityOptions:
    min_free_gb: float = DEFAULT_MIN_FREE_GB
    port_env: str | None = "MASTER_PORT"


def parse_args(text: str | None) -> SanityOptions:
    """``"key=value,key=value"`` (keys: ``ARG_KEYS``) -> options; ValueError with a clear message."""
    options: dict[str, float] = {}
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"{item!r} is not key=value (give e.g. 'min_free_gb=5')")
        if key not in ARG_KEYS:
            raise ValueError(f"unknown key {key!r}; known keys: {', '.join(ARG_KEYS)}")
        if key in options:
            raise ValueError(f"{key} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number of GiB, got {value!r}") from None
        if not 0 <= number < float("inf"):
            raise ValueError(f"{key} must be 0 or more, got {value!r}")
        options[key] = number
    return SanityOptions(min_free_gb=options.get("min_free_gb", DEFAULT_MIN_FREE_GB))


@dataclass(frozen=True)
class CheckOutcome:
    ok: bool
    message: str


def _expand(word: str, env: Mapping[str, str]) -> str | None:
    """``word`` with ``$VAR``/``${VAR}`` replaced from ``env``; None when it uses anything else."""
    if "$" not in word and "`" not in word:
        return word
    if "`" in word or "$(" in word:
        return None
    out = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word)
    return None if "$" in out else out


def first_word(command: str) -> str | None:
    """The word bash runs first in ``command`` (None when there is none)."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
    except ValueError:  # unbalanced quotes: bash will say so; look at the raw words
        words = command.split()
    skipping_env = False
    for word in words:
        if _ASSIGNMENT.match(word):
            continue
        if skipping_env and word.startswith("-"):
            continue
        if word in _PREFIX_WORDS:
            skipping_env = word == "env"
            continue
        return word
    return None


def check_interpreter(commands: Sequence[tuple[str, Mapping[str, str]]], workdir: Path) -> CheckOutcome:
    """Check 1: every distinct command's first word resolves (see the module docstring)."""
    found: list[str] = []
    for command, env in _distinct(commands):
        word = first_word(command)
        path_var = env.get("PATH", os.defpath)
        if word is None or word in SHELL_WORDS or word[0] in "({!":
            bash = shutil.which("bash", path=path_var) or shutil.which("bash")
            what = "an empty command" if word is None else f"the shell builtin or keyword {word!r}"
            if bash is None:
                return CheckOutcome(False, f"the command starts with {what}, but bash is not on the PATH")
            found.append(f"{what} (run by bash: {bash})")
            continue
        expanded = _expand(word, env)
        if expanded is None:
            found.append(f"{word!r} (expanded by bash at run time; not checked)")
            continue
        if "/" in expanded:
            target = Path(expanded).expanduser()
            if not target.is_absolute():
                target = workdir / target
            if not target.is_file():
                return CheckOutcome(False, f"the command's program {expanded!r} does not exist ({target})")
            if not os.access(target, os.X_OK):
                return CheckOutcome(False, f"the command's program {expanded!r} is not executable ({target})")
            found.append(f"{expanded!r} ({target})")
            continue
        resolved = shutil.which(expanded, path=path_var)
        if resolved is None:
            shown = path_var if len(path_var) <= 300 else path_var[:300] + "..."
            return CheckOutcome(
                False,
                f"the command's first word {expanded!r} is neither a program on the workers' PATH nor a shell "
                f"builtin; install it or fix the command (PATH={shown})",
            )
        found.append(f"{expanded!r} ({resolved})")
    return CheckOutcome(True, f"the command's interpreter exists: {'; '.join(found)}")


def _distinct(commands: Sequence[tuple[str, Mapping[str, str]]]) -> list[tuple[str, Mapping[str, str]]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for command, env in commands:
        key = (command, env.get("PATH", ""))
        if key not in seen:
            seen.add(key)
            out.append((command, env))
    return out


def check_workdir(workdir: Path) -> CheckOutcome:
    """Check 2: the working directory exists and is writable."""
    if not workdir.is_dir():
        return CheckOutcome(False, f"the working directory {workdir} does not exist")
    try:
        fd, name = tempfile.mkstemp(prefix=".cloudjobs-sanity-", dir=workdir)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return CheckOutcome(False, f"the working directory {workdir} is not writable: {exc.strerror or exc}")
    return CheckOutcome(True, f"the working directory {workdir} is writable")


def check_disk(paths: Sequence[Path], min_free_gb: float) -> CheckOutcome:
    """Check 3: free space on the file systems of ``paths`` is at least ``min_free_gb``."""
    seen: set[int] = set()
    parts = []
    for path in paths:
        try:
            dev = os.stat(path).st_dev
            if dev in seen:
                continue
            seen.add(dev)
            free_gb = shutil.disk_usage(path).free / 1024**3
        except OSError as exc:
            return CheckOutcome(False, f"cannot read the free disk space at {path}: {exc.strerror or exc}")
        if free_gb < min_free_gb:
            return CheckOutcome(
                False,
                f"only {free_gb:.2f} GiB free at {path}, below the floor of {min_free_gb:g} GiB "
                "(free some space, or lower it with sanity_check_args 'min_free_gb=N')",
            )
        parts.append(f"{free_gb:.1f} GiB free at {path}")
    return CheckOutcome(True, f"{'; '.join(parts)} (floor {min_free_gb:g} GiB)")


def check_devices(gpus: Sequence[int], nvidia_smi: str | None) -> CheckOutcome:
    """Check 4: nvidia-smi lists each of ``gpus`` and reports numbers for it."""
    wanted = sorted(set(gpus))
    shown = ", ".join(map(str, wanted))
    if nvidia_smi is None:
        return CheckOutcome(False, f"the job holds GPU {shown} but nvidia-smi is not on the PATH")
    readings, error = query_gpus(nvidia_smi)
    if error is not None:
        return CheckOutcome(False, error)
    missing = [g for g in wanted if g not in readings]
    if missing:
        listed = ", ".join(map(str, sorted(readings))) or "none"
        return CheckOutcome(False, f"nvidia-smi does not list GPU {', '.join(map(str, missing))} (it lists: {listed})")
    mute = [g for g in wanted if readings[g].utilization is None or readings[g].memory_total_mib is None]
    if mute:
        return CheckOutcome(
            False, f"GPU {', '.join(map(str, mute))} does not answer: nvidia-smi reports no utilization or memory"
        )
    busy = ", ".join(
        f"{g}: {readings[g].utilization:g}% busy, {readings[g].memory_used_mib or 0:g} MiB used" for g in wanted
    )
    return CheckOutcome(True, f"GPU {shown} visible and answering ({busy})")


def check_ports(ports: Sequence[str], env_name: str) -> CheckOutcome:
    """Check 5: each rendezvous port can be bound on 127.0.0.1."""
    done = []
    for raw in dict.fromkeys(ports):
        try:
            port = int(raw)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            return CheckOutcome(False, f"{env_name}={raw!r} is not a port number")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                return CheckOutcome(
                    False, f"the rendezvous port {env_name}={port} cannot be bound on 127.0.0.1: {exc.strerror or exc}"
                )
        done.append(str(port))
    return CheckOutcome(True, f"the rendezvous port {env_name}={', '.join(done)} is free on 127.0.0.1")
