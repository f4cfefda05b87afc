"""A cell is one displayed value of the wall: its text, the fill of its bar and its state class.

The shared feed computes every cell once per tick (`dict[key, Cell]`); each page keeps the element
that shows each key and pushes a change only when that cell differs from what it shows already.
Text always goes through `ui.label` (Vue text interpolation), never HTML.
"""

from __future__ import annotations

from typing import NamedTuple

from nicegui import ui
from nicegui.element import Element


class Cell(NamedTuple):
    text: str | None = None  # None: the element shows no text of its own (a container, a strip)
    pct: int | None = None  # 0..100: the fill of the bar drawn under the text (CSS variable --p)
    level: str = ""  # the one state class on the element ("ok", "warn", "crit", "off", "lost"…), or none
    data: tuple[int, ...] | None = None  # raw values for a custom element (the CPU heat strip)


class HeatStrip(Element, component="heat_strip.js"):
    """One cell per CPU core, coloured by load; values go over the wire as small integers."""

    def __init__(self, values: tuple[int, ...] = ()) -> None:
        super().__init__()
        self._props["values"] = list(values)

    def set_values(self, values: tuple[int, ...]) -> None:
        self._props["values"] = list(values)
        self.update()


class SparkLine(Element, component="spark_line.js"):
    """A small line of values 0..100 (a host's mean GPU utilisation over the lookback), drawn as SVG."""

    def __init__(self, values: tuple[int, ...] = ()) -> None:
        super().__init__()
        self._props["values"] = list(values)

    def set_values(self, values: tuple[int, ...]) -> None:
        self._props["values"] = list(values)
        self.update()


class CellView:
    """The elements of one page, keyed like the feed's cells, and what each one shows now."""

    def __init__(self) -> None:
        self.elements: dict[str, Element] = {}
        self.shown: dict[str, Cell] = {}

    def label(self, key: str, classes: str = "", cell: Cell | None = None) -> ui.label:
        element = ui.label("").classes(classes)
        self.bind(key, element, cell)
        return element

    def bind(self, key: str, element: Element, cell: Cell | None = None) -> Element:
        self.elements[key] = element
        self.shown[key] = Cell()
        if cell is not None:
            self.show(key, cell)
        return element

    def clear(self) -> None:
        self.elements.clear()
        self.shown.clear()

    def apply(self, cells: dict[str, Cell], keys: object = None) -> int:
        """Show `cells` (only `keys` of them when given); returns how many elements changed."""
        changed = 0
        for key in cells if keys is None else keys:  # type: ignore[union-attr]
            cell = cells.get(key)
            if cell is not None and key in self.elements and self.shown[key] != cell:
                self.show(key, cell)
                changed += 1
        return changed

    def show(self, key: str, cell: Cell) -> None:
        element, old = self.elements[key], self.shown[key]
        if cell.data is not None and isinstance(element, HeatStrip | SparkLine):
            if cell.data != old.data:
                element.set_values(cell.data)
        elif cell.text is not None and cell.text != old.text and isinstance(element, ui.label):
            element.set_text(cell.text)
        if cell.pct != old.pct:  # one dict write (one element update), not a parse of a style string
            if cell.pct is None:
                element.style.pop("--p", None)
            else:
                element.style["--p"] = f"{cell.pct}%"
        if cell.level != old.level:
            element.classes(add=cell.level or None, remove=old.level or None)
        self.shown[key] = cell
