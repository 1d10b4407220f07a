"""The private-by-default file mode, in a module light enough for every CLI start (no pydantic)."""

from __future__ import annotations

import os

PRIVATE_UMASK = 0o077  # files Cascade creates: 0600, folders 0700 (the one place the umask is set)


def private_umask() -> None:
    """Make every file this process (and the kernels, dbt and servers it starts) creates private."""
    os.umask(PRIVATE_UMASK)
