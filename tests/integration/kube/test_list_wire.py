"""LIST and GET as the API server receives them: selector, paging, escaped names.

A real loopback HTTP server (`fakeapi`) plays the API server and records every request;
the assertions are on that record, never on what a function was handed (the LIST whose
selector never left the process passed every test that looked at the function's input).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from switchyard_kube import client as kubeclient
from switchyard_kube import pager, paths
from switchyard_kube.reflector import Obj, Reflector
from switchyard_operator import apply, refs
from tests.integration.kube.fakeapi import FakeApi, secret, serve

LABEL = {"switchyard.dev/credential": "true"}
SELECTOR = "switchyard.dev/credential=true"
SECRETS = paths.collection_path("v1", "secrets", namespace="ns")


def _collection() -> list[Obj]:
    labelled = [secret(f"key-{i}", LABEL) for i in range(5)]
    return [*labelled, secret("unlabelled"), secret("other", {"app": "x"})]


@pytest.fixture
def api() -> FakeApi:
    return FakeApi(_collection())


@pytest.fixture
async def client(api: FakeApi) -> AsyncIterator[kubeclient.Client]:
    async for c in serve(api):
        yield c


async def _reflect(api: FakeApi, client: kubeclient.Client, page_size: int) -> list[Obj]:
    got: list[Obj] = []

    async def replace(items: list[Obj]) -> None:
        got.extend(items)

    async def event(kind: str, obj: Obj) -> None:
        pass

    reflector = Reflector(client, SECRETS, label_selector=SELECTOR, on_replace=replace,
                          on_event=event, page_size=page_size)
    task = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 10)
        # `synced` is set when the LIST is applied, before the WATCH that follows it has
        # reached the server: wait for the server to have seen it (CI lost this race once).
        await asyncio.wait_for(api.watched.wait(), 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return got


async def test_list_sends_label_selector_and_limit(api: FakeApi, client: kubeclient.Client
                                                   ) -> None:
    got = await _reflect(api, client, page_size=2)
    lists = [s for s in api.seen if "watch" not in s.query]
    assert [s.query.get("continue") for s in lists] == [None, "2", "4"]
    assert all(s.query["labelSelector"] == SELECTOR for s in lists), lists
    assert all(s.query["limit"] == "2" for s in lists), lists
    assert sorted(o["metadata"]["name"] for o in got) == [f"key-{i}" for i in range(5)]
    watches = [s for s in api.seen if s.query.get("watch") == "true"]
    assert watches and watches[0].query["labelSelector"] == SELECTOR
    assert watches[0].query["resourceVersion"] == api.version


async def test_expired_continue_token_relists_from_the_first_page(
    api: FakeApi, client: kubeclient.Client
) -> None:
    api.expire = 1
    listing = await pager.list_all(client, SECRETS, label_selector=SELECTOR, page_size=2)
    names = [o["metadata"]["name"] for o in listing.items]
    assert names == [f"key-{i}" for i in range(5)]  # no page twice, none from two snapshots
    assert listing.restarts == 1
    assert [s.query.get("continue") for s in api.seen] == [None, "2", None, "2", "4"]


async def test_continue_that_keeps_expiring_ends_in_one_unpaged_filtered_list(
    api: FakeApi, client: kubeclient.Client
) -> None:
    api.expire = 100
    listing = await pager.list_all(client, SECRETS, label_selector=SELECTOR, page_size=2,
                                   max_restarts=2)
    assert len(listing.items) == 5 and listing.restarts == 3
    assert len(api.seen) == 3 * 2 + 1  # bounded: three paged attempts, then one list
    last = api.seen[-1].query
    assert "limit" not in last and "continue" not in last and last["labelSelector"] == SELECTOR


async def test_gone_on_the_first_page_is_raised(api: FakeApi, client: kubeclient.Client
                                                ) -> None:
    async def gone(*_: object, **__: object) -> None:
        raise kubeclient.Gone(410, "Expired", "too old")

    client.request = gone  # type: ignore[method-assign]
    with pytest.raises(kubeclient.Gone):
        await pager.list_all(client, SECRETS)


async def test_query_can_never_be_passed_where_the_body_goes(client: kubeclient.Client) -> None:
    with pytest.raises(TypeError):
        await client.request("GET", SECRETS, {"labelSelector": SELECTOR})  # type: ignore[misc]
    with pytest.raises(ValueError, match="takes no body"):
        await client.request("GET", SECRETS, body={"labelSelector": SELECTOR})


async def test_secret_name_traversal_reads_no_other_namespace(
    api: FakeApi, client: kubeclient.Client
) -> None:
    """A tenant's `secretKeyRef.name` must not steer the operator's GET into team-b."""
    team_b = paths.object_path("v1", "secrets", "b-key", namespace="team-b")
    api.objects[team_b] = secret("b-key", LABEL)
    state = await apply.secret_state(client, "team-a", "../../team-b/secrets/b-key")
    assert state.found is refs.Found.MISSING
    # The name guard (`refs.valid_name`) refuses it before any request; were it bypassed,
    # the path builder would still keep it one escaped segment in team-a (next test).
    assert api.seen == []
    with pytest.raises(kubeclient.NotFound):  # no such Secret in team-a; team-b untouched
        await client.request("GET", paths.object_path(
            "v1", "secrets", "../../team-b/secrets/b-key", namespace="team-a"))
    assert [s.raw_path for s in api.seen] == [
        "/api/v1/namespaces/team-a/secrets/..%2F..%2Fteam-b%2Fsecrets%2Fb-key"
    ]


@pytest.mark.parametrize("name", ["..", ".", ""])
async def test_names_that_are_no_object_never_leave_the_process(
    api: FakeApi, client: kubeclient.Client, name: str
) -> None:
    with pytest.raises(paths.InvalidPathSegment):
        paths.object_path("v1", "secrets", name, namespace="team-a")
    state = await apply.secret_state(client, "team-a", name)
    assert state.found is refs.Found.MISSING
    if name:
        handmade = paths.ResourcePath(f"/api/v1/namespaces/team-a/secrets/{name}")
        with pytest.raises(paths.InvalidPathSegment):
            await client.request("GET", handmade)
    assert api.seen == []
