"""A kernel manager for Voila with a cap on concurrent kernels (each dashboard page is a ~340 MB
Python kernel): a page load beyond the cap gets HTTP 503 instead of another kernel."""

from __future__ import annotations

from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from traitlets import Int


class CappedKernelManager(AsyncMappingKernelManager):  # type: ignore[misc]
    """`AsyncMappingKernelManager` that refuses to start more than `max_kernels` kernels."""

    max_kernels = Int(4, config=True, help="most kernels alive at once (preheated ones included)")

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]  # async in the Async manager
        if len(self.list_kernel_ids()) >= self.max_kernels:
            raise web.HTTPError(503, "too many open dashboard pages; close one or try again in a minute")
        return str(await super().start_kernel(*args, **kwargs))
