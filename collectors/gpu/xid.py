"""XID errors: NVML's critical-error events, read without ever blocking the GPU collector's tick.

An XID is an event, not a state: the driver queues it in every event set registered for that GPU,
and nvmlEventSetWait_v2(set, 0) hands them out one by one (NVML_ERROR_TIMEOUT when none is left).
One set per GPU, so each event's GPU is known without comparing device handles.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pynvml

from collectors.gpu.fields import UNSUPPORTED_CODES, error_code, error_text

XID_EVENT = pynvml.nvmlEventTypeXidCriticalError
MAX_PER_TICK = 32  # a GPU flooding XIDs must not keep the tick from its readings
KEPT_PER_GPU = 20  # the most recent XIDs shown on the GPU's document

# The well-known XIDs (NVIDIA's XID catalog), worded for a wall; others say "see the XID catalog".
XID_MEANINGS: dict[int, str] = {
    8: "GPU stopped processing",
    13: "graphics engine exception (often a bug in the application)",
    31: "GPU memory page fault (often a bug in the application)",
    32: "invalid or corrupted push buffer stream",
    38: "driver firmware error",
    43: "GPU stopped processing (the application faulted)",
    45: "preemptive cleanup after an earlier error",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint/warning",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remapping recorded",
    64: "ECC page retirement or row remapping failed",
    68: "video processor exception",
    69: "graphics engine class error",
    74: "NVLink error",
    79: "fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error (restart the application)",
    95: "uncontained ECC error (GPU reset required)",
    109: "context switch timeout",
    119: "GSP RPC timeout",
    120: "GSP error",
    154: "GPU recovery action changed",
}


def xid_meaning(code: int) -> str:
    return XID_MEANINGS.get(code, "see NVIDIA's XID catalog")


def xid_text(index: int, code: int) -> str:
    """`GPU 2 XID 79: fallen off the bus` — for events and alerts."""
    return f"GPU {index} XID {code}: {xid_meaning(code)}"


class XidEvents:
    """One NVML event set per GPU registered for XID critical errors, drained with a 0 ms wait."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self._sets: dict[int, Any] = {}
        self.unsupported: set[int] = set()  # GPUs that cannot report XIDs (noted once)

    def register(self, index: int, handle: Any) -> str | None:
        """(Re-)subscribe GPU `index`; returns a note the first time a GPU cannot report XIDs.
        Never raises: a GPU that fails here shows its trouble through its readings."""
        self.release(index)
        nvml = self.nvml
        event_set = None
        try:
            event_set = nvml.nvmlEventSetCreate()
            nvml.nvmlDeviceRegisterEvents(handle, XID_EVENT, event_set)
        except (nvml.NVMLError, AttributeError) as exc:  # AttributeError: a pynvml without events
            if event_set is not None:
                self._free(event_set)
            code = error_code(exc)
            if (code in UNSUPPORTED_CODES or isinstance(exc, AttributeError)) and index not in self.unsupported:
                self.unsupported.add(index)
                return f"GPU {index} cannot report XID errors ({error_text(exc)}); gpu_xid alerts are off for it"
            return None
        self.unsupported.discard(index)
        self._sets[index] = event_set
        return None

    def drain(self, index: int) -> list[int]:
        """The XID codes GPU `index` reported since the last call; never waits."""
        event_set = self._sets.get(index)
        if event_set is None:
            return []
        wait = getattr(self.nvml, "nvmlEventSetWait_v2", None) or self.nvml.nvmlEventSetWait
        codes: list[int] = []
        for _ in range(MAX_PER_TICK):
            try:
                data = wait(event_set, 0)
            except self.nvml.NVMLError:
                break  # TIMEOUT: nothing pending; anything else: the readings report the GPU's state
            if int(getattr(data, "eventType", 0)) & XID_EVENT:
                codes.append(int(data.eventData))
        return codes

    def release(self, index: int) -> None:
        event_set = self._sets.pop(index, None)
        if event_set is not None:
            self._free(event_set)

    def release_all(self) -> None:
        for index in list(self._sets):
            self.release(index)

    def _free(self, event_set: Any) -> None:
        with contextlib.suppress(self.nvml.NVMLError):  # the library or GPU may already be gone
            self.nvml.nvmlEventSetFree(event_set)
