"""The server's own template store (server/templates.py): versions, defaults, validation, two processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudjobs_mcp.server.errors import InvalidRequest, NotFound
from cloudjobs_mcp.server.models import TemplateConfig
from cloudjobs_mcp.server.templates import TemplateStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cfg(**kw: object) -> TemplateConfig:
    return TemplateConfig.model_validate({"user_command": "python train.py", "ecs_spec": "local.cpu-1", **kw})


async def test_create_update_get_versions(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    t = await store.create("train-mnist", cfg(envs={"LR": "0.1"}), {"$.ecs_spec": "locked"}, "first")
    assert t.template_id.startswith("tpl-") and len(t.template_id) > 8
    assert (t.version, t.default_version, t.versions) == (1, 1, [1])
    assert t.source == "server state" and t.description == "first"
    assert t.constraints == {"$.ecs_spec": "locked"} and t.config.envs == {"LR": "0.1"}
    assert (tmp_path / "templates.db").exists()

    t2 = await store.update(t.template_id, cfg(worker_count=2), {"$.envs.LR": "required"})
    assert (t2.version, t2.default_version, t2.versions) == (2, 1, [1, 2])
    assert t2.description == "first"  # kept when not given
    assert t2.config.worker_count == 2 and t2.constraints == {"$.envs.LR": "required"}

    default = await store.get(t.template_id)
    assert default.version == 1 and default.config.worker_count is None and default.versions == [1, 2]
    v2 = await store.get(t.template_id, 2)
    assert v2.version == 2 and v2.config.worker_count == 2
    assert (await store.get("train-mnist")).template_id == t.template_id  # a name works too

    with pytest.raises(NotFound, match=r"no version 7; its versions are: 1, 2"):
        await store.get(t.template_id, 7)
    with pytest.raises(NotFound, match=r"no version 3; its versions are: 1, 2"):
        await store.set_default_version(t.template_id, 3)
    moved = await store.set_default_version(t.template_id, 2)
    assert (moved.version, moved.default_version) == (2, 2)
    assert (await store.get(t.template_id)).version == 2
    t3 = await store.update(t.template_id, cfg(), {}, description="third")
    assert (t3.version, t3.default_version, t3.description) == (3, 2, "third")

    with pytest.raises(InvalidRequest, match="exists"):
        await store.create("train-mnist", cfg(), {}, "")
    with pytest.raises(NotFound, match="no template"):
        await store.get("tpl-nope")
    with pytest.raises(NotFound):
        await store.update("tpl-nope", cfg(), {})


async def test_list_newest_first_and_delete(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    a = await store.create("a", cfg(), {}, "")
    b = await store.create("b", cfg(), {}, "")
    await store.update(a.template_id, cfg(worker_count=3), {})
    listed = await store.list()
    assert [t.name for t in listed] == ["b", "a"]
    assert listed[1].version == 1 and listed[1].versions == [1, 2]
    await store.delete(b.template_id)
    assert [t.name for t in await store.list()] == ["a"]
    with pytest.raises(NotFound):
        await store.delete(b.template_id)
    with pytest.raises(NotFound):
        await store.get(b.template_id)
    # the name is free again
    assert (await store.create("b", cfg(), {}, "")).version == 1


@pytest.mark.parametrize(
    ("name", "constraints", "match"),
    [
        ("", {}, "invalid template name"),
        ("x" * 65, {}, "invalid template name"),
        ("has space", {}, "invalid template name"),
        ("ok", {"ecs_spec": "locked"}, "JSONPaths"),
        ("ok", {"$.nope": "locked"}, "JSONPaths"),
        ("ok", {"$.ecs_spec.x": "locked"}, "has no keys"),
        ("ok", {"$.ecs_spec": "frozen"}, "not a constraint"),
        ("ok", {"$.image": "locked"}, "sets no value"),
        ("ok", {"$.envs.MISSING": "locked"}, "sets no value"),
    ],
)
async def test_validation(tmp_path: Path, name: str, constraints: dict[str, str], match: str) -> None:
    store = TemplateStore(tmp_path)
    with pytest.raises(InvalidRequest, match=match):
        await store.create(name, cfg(), constraints, "")  # type: ignore[arg-type]
    assert await store.list() == []


async def test_accepted_constraints(tmp_path: Path) -> None:
    store = TemplateStore(tmp_path)
    c = {
        "$.ecs_spec": "locked",
        "$.worker_count": "overridable",
        "$.user_command": "locked",
        "$.image": "required",
        "$.envs.KEY": "required",
        "$.hyperparameters.lr": "overridable",
        "$.envs": "overridable",
    }
    t = await store.create("x.y_z-1", cfg(), c, "")  # type: ignore[arg-type]
    assert t.constraints == c
    with pytest.raises(InvalidRequest, match="worker_count"):
        await store.create("bad-count", cfg(worker_count=0), {}, "")


async def test_two_stores_one_state_dir(tmp_path: Path) -> None:
    one, two = TemplateStore(tmp_path), TemplateStore(tmp_path)
    t = await one.create("shared", cfg(), {}, "")
    await two.update(t.template_id, cfg(worker_count=2), {})
    got = await one.get(t.template_id, 2)
    assert got.config.worker_count == 2 and got.versions == [1, 2]
    with pytest.raises(InvalidRequest, match="exists"):
        await two.create("shared", cfg(), {}, "")
    await two.set_default_version(t.template_id, 2)
    assert (await one.get(t.template_id)).version == 2
