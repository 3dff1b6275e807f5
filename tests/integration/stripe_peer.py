"""stripe-mock, Stripe's own mock of its API, on loopback for the billing gateway's tests.

stripe-mock answers every endpoint of Stripe's OpenAPI spec with fixture objects: it checks
the parameters against the spec (a wrong type or an unknown parameter is a 400 as Stripe
would send it), checks that a test-mode key is sent, echoes the Idempotency-Key header, and
keeps no state (a customer created is not there to read back). `ops/setup.sh test` builds the
version pinned there (STRIPE_MOCK_VERSION) into the user's cache folder; this module runs
that binary, HTTP on a port the system picks on 127.0.0.1.

    mock = start_stripe_mock(tmp_path / "stripe-mock.log")
    gateway = StripeGateway(API_KEY, api_base=mock.base_url)
    ...
    mock.stop()

Tests take the session's instance through the `stripe_mock` fixture (its base URL):

    from tests.integration.stripe_peer import stripe_mock  # noqa: F401  # the fixture
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integration.streams_util import PROJECT

SETUP = PROJECT / "ops" / "setup.sh"
# stripe-mock accepts any key shaped sk_test_<one word> (or rk_test_...), refuses the rest
API_KEY = "sk_test_optibidStripeMock"
_LISTENING = re.compile(r"Listening for HTTP at address: (127\.0\.0\.1:\d+)")


class StripeMockError(RuntimeError):
    """stripe-mock is not built, or did not start or answer."""


def pinned_version() -> str:
    """The stripe-mock version ops/setup.sh builds (its STRIPE_MOCK_VERSION)."""
    found = re.search(r"^STRIPE_MOCK_VERSION=(v[0-9][0-9.]*)$", SETUP.read_text(), re.MULTILINE)
    if found is None:
        raise StripeMockError(f"{SETUP} pins no STRIPE_MOCK_VERSION")
    return found.group(1)


def binary_path() -> Path:
    """Where ops/setup.sh puts the pinned build: ${XDG_CACHE_HOME:-~/.cache}/optibid/
    stripe-mock/VERSION/bin/stripe-mock."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "optibid" / "stripe-mock" / pinned_version() / "bin" / "stripe-mock"


@dataclass
class StripeMock:
    """One stripe-mock process; `base_url` is what StripeGateway's api_base takes."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stops the process (SIGTERM to its PID, SIGKILL after 10 s)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_stripe_mock(log_path: Path, timeout_s: float = 30.0) -> StripeMock:
    """Starts the pinned stripe-mock with HTTP on 127.0.0.1 (and its HTTPS listener, which it
    always opens, there too), on ports the system picks; returns once it answers an API call.
    StripeMockError, saying to run `sh ops/setup.sh test`, when the build is not there."""
    binary = binary_path()
    if not os.access(binary, os.X_OK):
        raise StripeMockError(
            f"stripe-mock {pinned_version()} is not built at {binary}: run `sh ops/setup.sh test`"
        )
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(binary), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    mock = StripeMock(base_url="", log_path=log_path, process=process)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StripeMockError(f"stripe-mock exited with {process.returncode}:\n{mock.logs()}")
        if not mock.base_url and (listening := _LISTENING.search(mock.logs())):
            mock.base_url = f"http://{listening.group(1)}"
        if mock.base_url and _answers(mock):
            return mock
        time.sleep(0.05)
    mock.stop()
    raise StripeMockError(f"stripe-mock did not answer within {timeout_s:.0f} s:\n{mock.logs()}")


def _answers(mock: StripeMock) -> bool:
    """Whether stripe-mock answers an API call with API_KEY; StripeMockError when it answers
    with anything but 200."""
    try:
        response = httpx.get(
            f"{mock.base_url}/v1/customers",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=2,
        )
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        mock.stop()
        raise StripeMockError(
            f"stripe-mock answered GET /v1/customers with {response.status_code}: {response.text}"
        )
    return True


@pytest.fixture(scope="session")
def stripe_mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a stripe-mock running for the whole session; stopped at its end."""
    log_path = tmp_path_factory.mktemp("stripe-mock") / "stripe-mock.log"
    try:
        mock = start_stripe_mock(log_path)
    except StripeMockError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield mock.base_url
    finally:
        mock.stop()
