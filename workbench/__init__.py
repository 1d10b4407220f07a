"""Cascade workbench: the helper package behind the notebooks, the CLI and the dashboards."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Lakehouse", "get_settings"]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from workbench.lakehouse import Lakehouse
    from workbench.settings import get_settings


def __getattr__(name: str) -> Any:  # lazy: `import workbench` stays cheap for the CLI
    if name == "Lakehouse":
        from workbench.lakehouse import Lakehouse

        return Lakehouse
    if name == "get_settings":
        from workbench.settings import get_settings

        return get_settings
    raise AttributeError(name)
