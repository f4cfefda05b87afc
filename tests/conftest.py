from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import LabwallServer


@pytest.fixture
def labwall_server(tmp_path: Path) -> Iterator[Callable[..., LabwallServer]]:
    """Factory: `labwall_server(config={...}, args=[...])` starts a real server; all stop at teardown."""
    servers: list[LabwallServer] = []

    def start(config: dict[str, Any] | None = None, args: list[str] | None = None, wait: bool = True,
              env: dict[str, str] | None = None) -> LabwallServer:
        server = LabwallServer(tmp_path, config, args, env)
        servers.append(server)
        return server.start(wait=wait)

    yield start
    for server in servers:
        server.stop()
