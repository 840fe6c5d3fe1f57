"""get_job_logs on real local jobs: bounded results, head/tail/error block, cursor paging, grep, masking."""

from __future__ import annotations

import json
import shlex
import sys

import pytest

from tests.conftest import Asker, call, call_error, connect, create_args, quote, smallest_cpu_spec, wait_done

pytestmark = pytest.mark.anyio
PY = shlex.quote(sys.executable)


def py(program: str) -> str:
    return PY + " -c " + shlex.quote(program)


async def run(client, command: str, workers: int = 1) -> str:
    spec = await smallest_cpu_spec(client)
    q = await quote(client, spec, workers=workers)
    created = await call(client, "create_training_job", create_args(spec, q["quote_id"], command, workers))
    await wait_done(client, created["job"]["job_id"])
    return created["job"]["job_id"]


BIG = py(
    "import sys\n"
    "print('FIRST LINE of the log')\n"
    "row = 'x' * 100\n"
    "for i in range(200_000):\n"
    "    print(f'step {i} loss {1 / (i + 1):.6f} {row}')\n"
    "    if i == 150_000:\n"
    "        print('Traceback (most recent call last):')\n"
    "        print('  File \"train.py\", line 7, in <module>')\n"
    "        print('ValueError: a bad batch at 150000')\n"
    "print('LAST LINE of the log')\n"
    "sys.exit(1)\n"
)


async def test_a_20_mb_log_fits_8_kb_with_head_tail_error_block_and_a_cursor(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await run(client, BIG)
        result = await client.call_tool("get_job_logs", {"job_id": job_id})
        assert not result.is_error
        logs = result.structured_content
        assert len(json.dumps(logs).encode()) <= 8000
        pod = logs["pods"][0]
        assert pod["total_lines"] > 200_000 and pod["truncated"] is True and logs["truncated"] is True
        assert pod["lines"][0] == "FIRST LINE of the log" and pod["lines"][-1] == "LAST LINE of the log"
        assert any("cut" in line and "next_cursor" in line for line in pod["lines"])
        block = logs["error_block"]
        assert block["kind"] == "python_traceback" and block["lines"][-1] == "ValueError: a bad batch at 150000"
        assert list(logs)[:2] == ["job_id", "error_block"]  # quoted first

        # The cursor pages forward from the first cut line, each page bounded, without gaps.
        page = await call(client, "get_job_logs", {"job_id": job_id, "cursor": logs["next_cursor"]})
        assert len(json.dumps(page).encode()) <= 8000
        k = next(i for i, line in enumerate(pod["lines"]) if line.startswith("[..."))  # head lines before the cut
        assert page["pods"][0]["lines"][0].startswith(f"step {k - 1} loss ")  # the first line that was cut
        nxt = await call(client, "get_job_logs", {"job_id": job_id, "cursor": page["next_cursor"]})
        n = len(page["pods"][0]["lines"])
        assert nxt["pods"][0]["lines"][0].startswith(f"step {k - 1 + n} ")

        bad = await call_error(client, "get_job_logs", {"job_id": job_id, "cursor": "not-a-cursor"})
        assert "cursor is not valid" in bad


async def test_grep_returns_matches_with_context(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await run(
            client, py("for i in range(1000):\n    print('epoch', i, 'acc' if i % 250 == 0 else 'loss')")
        )
        logs = await call(client, "get_job_logs", {"job_id": job_id, "grep": r"\bacc\b", "context_lines": 1})
        lines = logs["pods"][0]["lines"]
        assert "251: epoch 250 acc" in lines and "250- epoch 249 loss" in lines and "252- epoch 251 loss" in lines
        assert "--" in lines and len([x for x in lines if ": " in x and "acc" in x]) == 4
        text = await call_error(client, "get_job_logs", {"job_id": job_id, "grep": "(unclosed"})
        assert "grep is not a valid regular expression" in text


async def test_secrets_in_logs_are_masked(settings):
    planted = {
        "ak": "LTAI5tQ9zXbHc7VnKm3pRwYd",
        "secret": "hJ8kL2mN4pQ6rS8tU0vW2xY4zA6bC8",
        "token": "CAIS3gJ1q6Ft5B2yfSjIr5bkKNqBtre2xY4zA6bC8dE0fG2hJ4",
    }
    program = (
        f"print('using key {planted['ak']}')\n"
        f"print('ALIBABA_CLOUD_ACCESS_KEY_SECRET={planted['secret']}')\n"
        f"print('sts {planted['token']}')\n"
        "print('curl -H \"Authorization: Bearer abcdefghijklmnop123\" https://user:pa55word@host/x')\n"
        "print('step 1 loss 0.5 num_token=1024')\n"
    )
    async with connect(settings, asker=Asker()) as client:
        job_id = await run(client, py(program))
        logs = await call(client, "get_job_logs", {"job_id": job_id})
        text = json.dumps(logs)
        for value in [*planted.values(), "abcdefghijklmnop123", "pa55word"]:
            assert value not in text
        assert "LTAI****" in text and "step 1 loss 0.5 num_token=1024" in text
        resource = await client.read_resource(f"cloudjobs://jobs/{job_id}/logs")
        body = resource.contents[0].text
        assert "LTAI****" in body and planted["secret"] not in body


async def test_tail_lines_and_one_pod(settings):
    async with connect(settings, asker=Asker()) as client:
        job_id = await run(client, py("import os\nfor i in range(50): print(os.environ['RANK'], i)"), workers=2)
        logs = await call(client, "get_job_logs", {"job_id": job_id, "tail_lines": 3, "pod_id": f"{job_id}-worker-0"})
        assert [p["pod_id"] for p in logs["pods"]] == [f"{job_id}-worker-0"]
        assert logs["pods"][0]["lines"] == ["1 47", "1 48", "1 49"]


async def test_logs_resource_template(settings):
    async with connect(settings, asker=Asker()) as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert any(t.uri_template == "cloudjobs://jobs/{job_id}/logs" for t in templates)
        job_id = await run(client, "echo resource-read")
        body = (await client.read_resource(f"cloudjobs://jobs/{job_id}/logs")).contents[0].text
        assert "resource-read" in body and f"== {job_id}-worker-0" in body
