"""A small client for Prometheus' HTTP API (`/api/v1/query`, `/api/v1/query_range`).

Standard library only (urllib): every call has a timeout, and every failure becomes one
`PrometheusError` whose text says what went wrong (refused, timed out, HTTP status, the server's
own error message, or which part of the answer was malformed), so the wall can show it as it is.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 64 * 1024 * 1024  # a larger answer is a misconfigured selector, not data to parse


class PrometheusError(Exception):
    """A query that gave no usable answer; `str(exc)` is the reason shown on the wall."""


@dataclass(frozen=True, slots=True)
class InstantSample:
    labels: dict[str, str]  # includes __name__ when the query returns raw series
    time: float
    value: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (time, value), oldest first; NaN points left out


def parse_answer(body: bytes, expect: str) -> list[Any]:
    """The `data.result` list of an API answer whose `resultType` is `expect` ("vector" or "matrix")."""
    try:
        doc = json.loads(body.decode("utf-8"))  # the API speaks UTF-8; json.loads(bytes) would guess
    except UnicodeDecodeError as exc:
        raise PrometheusError(f"answer is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise PrometheusError(f"answer is not JSON ({exc.msg} at character {exc.pos}): {_head(body)}") from None
    if not isinstance(doc, dict):
        raise PrometheusError(f"answer is a JSON {type(doc).__name__}, not an object: {_head(body)}")
    status = doc.get("status")
    if status == "error":
        raise PrometheusError(f"Prometheus says {doc.get('errorType', 'error')}: {doc.get('error', '(no message)')}")
    if status != "success":
        raise PrometheusError(f"answer has status {status!r}, expected 'success'")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("answer has no 'data' object")
    kind = data.get("resultType")
    if kind != expect:
        raise PrometheusError(f"answer has resultType {kind!r}, expected {expect!r}")
    result = data.get("result")
    if not isinstance(result, list):
        raise PrometheusError("answer's data.result is not a list")
    return result


def parse_vector(body: bytes) -> list[InstantSample]:
    samples = []
    for i, item in enumerate(parse_answer(body, "vector")):
        labels = _labels(item, i)
        t, v = _point(item.get("value"), f"result[{i}].value")
        if math.isfinite(v):  # NaN/Inf (a division by zero in a query) is "unknown", never a number
            samples.append(InstantSample(labels, t, v))
    return samples


def parse_matrix(body: bytes) -> list[RangeSeries]:
    series = []
    for i, item in enumerate(parse_answer(body, "matrix")):
        labels = _labels(item, i)
        values = item.get("values")
        if not isinstance(values, list):
            raise PrometheusError(f"result[{i}].values is not a list")
        points = [_point(p, f"result[{i}].values[{j}]") for j, p in enumerate(values)]
        series.append(RangeSeries(labels, [(t, v) for t, v in points if math.isfinite(v)]))
    return series


def _labels(item: Any, i: int) -> dict[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get("metric"), dict):
        raise PrometheusError(f"result[{i}] has no 'metric' object")
    labels = item["metric"]
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise PrometheusError(f"result[{i}].metric has a label that is not a string")
    return labels


def _point(point: Any, where: str) -> tuple[float, float]:
    if not (isinstance(point, list) and len(point) == 2 and isinstance(point[0], int | float)
            and not isinstance(point[0], bool) and isinstance(point[1], str)):
        raise PrometheusError(f"{where} is not [time, \"value\"]: {_head(json.dumps(point).encode())}")
    try:
        return float(point[0]), float(point[1])  # Prometheus sends values as strings ("NaN", "+Inf" too)
    except ValueError:
        raise PrometheusError(f"{where} has a value that is not a number: {point[1]!r}") from None


def _head(body: bytes, limit: int = 80) -> str:
    text = body[:limit].decode("utf-8", "replace").replace("\n", " ")
    return repr(text + ("…" if len(body) > limit else ""))


class PrometheusClient:
    """Queries one Prometheus server. Not thread-safe by design: one collector thread owns it."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        # No proxy: the wall talks to a server on the lab network; an http_proxy meant for the
        # internet must not swallow it.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.queries = 0  # how many HTTP requests were sent (benchmarks, tests)

    def query(self, promql: str, at: float | None = None, timeout_s: float | None = None) -> list[InstantSample]:
        """One instant query: every series the expression returns, with its value now (or `at`)."""
        params = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        return parse_vector(self._get("/api/v1/query", params, timeout_s))

    def query_range(self, promql: str, start: float, end: float, step_s: float,
                    timeout_s: float | None = None) -> list[RangeSeries]:
        """One range query: every series with its points from `start` to `end` every `step_s`."""
        params = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
        return parse_matrix(self._get("/api/v1/query_range", params, timeout_s))

    def _get(self, path: str, params: dict[str, str], timeout_s: float | None) -> bytes:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        # POST with a form body: long selectors never hit a URL length limit; Prometheus accepts both.
        request = urllib.request.Request(self.url + path, data=urllib.parse.urlencode(params).encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Accept": "application/json"})
        self.queries += 1
        try:
            with self._opener.open(request, timeout=timeout) as response:
                body = response.read(MAX_BODY_BYTES + 1)
        except urllib.error.HTTPError as exc:
            body = exc.read(64 * 1024) if exc.fp else b""
            try:  # Prometheus explains 400/422/503 in the usual JSON shape
                parse_answer(body, "vector")
            except PrometheusError as inner:
                if str(inner).startswith("Prometheus says"):
                    raise PrometheusError(f"HTTP {exc.code}: {inner}") from None
            raise PrometheusError(f"HTTP {exc.code} {exc.reason} from {self.url}{path}") from None
        except TimeoutError:
            raise PrometheusError(f"no answer within {timeout:g} s (timed out)") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                raise PrometheusError(f"no answer within {timeout:g} s (timed out)") from None
            text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
            raise PrometheusError(f"cannot reach {self.url}: {text}") from None
        except (ConnectionError, OSError) as exc:  # reset or closed mid-answer
            raise PrometheusError(f"connection to {self.url} failed: {exc.strerror or exc}") from None
        except http.client.HTTPException as exc:  # not HTTP at all, or cut short
            raise PrometheusError(f"bad HTTP answer from {self.url}: {type(exc).__name__} {exc}") from None
        if len(body) > MAX_BODY_BYTES:
            raise PrometheusError(f"answer larger than {MAX_BODY_BYTES // 1024**2} MiB: narrow host_selector")
        return body
