"""The HTML report opened in Debian's headless Chromium: it renders (two charts with real size, a
screenshot that is not blank) and logs no console error, failed request or script exception.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: fd 3 in,
fd 4 out, NUL-separated JSON), so no port, websocket client or driver package is needed.
Without Chromium the tests are skipped locally; under ``CI=true`` they fail instead (``.ci/run``
installs it).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import io
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_report_e2e import NOW, PERIOD, run_week, tw

TIMEOUT_S = 60.0


def chromium() -> str:
    """The Chromium binary; skips the test where there is none, fails under CI."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed; .ci/run installs it with apt-get")
    pytest.skip("chromium is not installed (apt-get install chromium)")


class Browser:
    """Headless Chromium over the DevTools protocol on a pipe."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_pipes() -> None:  # in the child: its fds 3 (reads) and 4 (writes)
            reads = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            writes = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",  # tests run as root in a container
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=wire_pipes,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                buffer += chunk
                *messages, buffer = buffer.split(b"\0")
                for message in messages:
                    self._messages.put(json.loads(message))
        self._messages.put(None)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and wait for its result; events seen meanwhile are kept."""
        self._next_id += 1
        call: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            call["sessionId"] = session
        os.write(self._to_browser, json.dumps(call).encode() + b"\0")
        while True:
            message = self._messages.get(timeout=TIMEOUT_S)
            if message is None:
                raise RuntimeError(f"chromium exited during {method}")
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message["result"])
            self.events.append(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The first event ``method`` (already seen, or the next to arrive)."""
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message = self._messages.get(timeout=TIMEOUT_S)
            if message is None:
                raise RuntimeError(f"chromium exited waiting for {method}")
            self.events.append(message)
            if message.get("method") == method:
                return message

    def problems(self) -> list[str]:
        """Console errors, failed loads and uncaught exceptions, as readable lines."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                found.append(f"console.{params['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}")
        return found

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError, queue.Empty):
            self.send("Browser.close")
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(chromium(), tmp_path / "profile")
    yield opened
    opened.close()


def open_page(browser: Browser, page: Path) -> tuple[str, bytes]:
    """Load ``page`` in a fresh tab with console, log and page events on; returns the session
    and a full-page PNG screenshot."""
    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
    session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
    for domain in ("Runtime", "Log", "Page"):
        browser.send(f"{domain}.enable", session)
    browser.send("Page.navigate", session, url=page.as_uri())
    browser.wait_for("Page.loadEventFired")
    shot = browser.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
    return session, base64.b64decode(shot["data"])


def evaluate(browser: Browser, session: str, expression: str) -> Any:
    result = browser.send("Runtime.evaluate", session, expression=expression, returnByValue=True)
    return result["result"]["value"]


@pytest.fixture(scope="module")
def html_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    week = run_week(tmp_path_factory.mktemp("browser"))
    page = week.directory / "report.html"
    result = tw(week.env, "report", "--as-of", NOW, *PERIOD, "--html", str(page))
    assert result.returncode == 0, result.stderr
    return page


def test_the_html_report_renders_in_chromium_without_console_errors(
    browser: Browser, html_page: Path, tmp_path: Path
) -> None:
    from PIL import Image  # Pillow comes with matplotlib

    session, png = open_page(browser, html_page)
    assert browser.problems() == []
    charts = evaluate(
        browser,
        session,
        "[...document.querySelectorAll('figure svg')].map(s => {"
        "const r = s.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]})",
    )
    assert len(charts) == 2 and all(w > 300 and h > 100 for w, h in charts), charts
    assert evaluate(browser, session, "document.querySelectorAll('table').length") == 3
    (tmp_path / "report.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("L")
    assert image.width >= 600 and image.height >= 600
    low, high = image.getextrema()
    assert high - low > 100, "the screenshot shows something"


def test_the_harness_sees_console_errors_and_failed_loads(browser: Browser, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
        "<img src='missing.png'><script>console.error('boom'); undefinedCall();</script>"
        "</body></html>",
        encoding="utf-8",
    )
    open_page(browser, broken)
    problems = browser.problems()
    assert any("console.error: boom" in p for p in problems), problems
    assert any(p.startswith("exception:") for p in problems), problems
    assert any("missing.png" in p for p in problems), problems
