"""The wall: one read-only page at `/`, the same for every viewer, streamed from the shared store.

NiceGUI 3 gives each browser its own element tree, so the wall is shared through its model: one
process-wide store (written by the collectors) and one `WallFeed` that formats each tick once for
all viewers. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from nicegui import ui

from monitor.app import Monitor
from monitor.wall.feed import WallFeed
from monitor.wall.guard import install_event_guard
from monitor.wall.page import register_page
from monitor.wall.theme import CSS, OVERVIEW_CSS


def register_wall(monitor: Monitor) -> WallFeed:
    """Register the page; the returned feed is the one every viewer's page reads."""
    feed = WallFeed(monitor.store, monitor.config)
    ui.add_css(CSS, shared=True)
    ui.add_css(OVERVIEW_CSS, shared=True)
    install_event_guard()
    register_page(feed, monitor.config)
    return feed
