"""Running sibling jobs so that our own errors come out as themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from ..errors import MnemoError

__all__ = ("run_all",)


async def run_all(*jobs: Callable[[], Awaitable[None]]) -> None:
    """Run jobs concurrently; the first of our errors stops the others and is raised as itself.

    (A task group would wrap it in an ExceptionGroup, and callers want to catch ``StoreError``.)
    """
    failure: MnemoError | None = None

    async def guarded(job: Callable[[], Awaitable[None]], scope: anyio.CancelScope) -> None:
        nonlocal failure
        try:
            await job()
        except MnemoError as exc:
            failure = failure or exc
            scope.cancel()

    async with anyio.create_task_group() as tasks:
        for job in jobs:
            tasks.start_soon(guarded, job, tasks.cancel_scope)
    if failure is not None:
        raise failure
