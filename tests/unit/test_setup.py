"""ops/setup.sh decides which system packages a command still needs (its `--check` mode): a
machine is faked by a PATH of stub programs, so nothing is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "ops" / "setup.sh"
STACK = "make openjdk-17-jre-headless maven redis-server"
_PINNED = re.search(r"^STRIPE_MOCK_VERSION=(\S+)$", SETUP.read_text(), re.MULTILINE)
assert _PINNED is not None, "ops/setup.sh pins stripe-mock's version"
STRIPE_MOCK = _PINNED[1]
TOOLS = SETUP.parent / "tools"
HELM = re.findall(r"^HELM_VERSION=(\S+)$", (TOOLS / "helm.sh").read_text(), re.MULTILINE)[0]
TOFU = re.findall(r"^TOFU_VERSION=(\S+)$", (TOOLS / "terraform.sh").read_text(), re.MULTILINE)[0]


def _stub(folder: Path, name: str, script: str = "exit 0") -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def _java(version: str) -> str:
    return f"echo 'openjdk version \"{version}\" 2025-04-15' >&2"


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """A PATH with the shell tools the script uses and nothing else."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("ls", "sed", "head", "sort", "tail", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (folder / tool).symlink_to(found)
    return folder


def _missing(machine: Path, want: str, python: str = "exit 1", **env: str) -> str:
    _stub(machine, "python", python)
    env.setdefault("OPTIBID_VENDOR_DIR", str(machine / "no-vendor"))
    env.setdefault("OPTIBID_GO_ROOT", str(machine / "no-go"))  # not this machine's /usr/local/go
    env.setdefault("XDG_CACHE_HOME", str(machine.parent / "cache"))
    result = subprocess.run(
        ["/bin/sh", str(SETUP), "--check", want],
        capture_output=True,
        text=True,
        env={"PATH": str(machine), "PYTHON": str(machine / "python"), **env},
        check=True,
    )
    assert result.stderr == ""
    return result.stdout.strip()


def _built_stripe_mock(machine: Path) -> None:
    """The pinned stripe-mock as ops/setup.sh leaves it in the (fake) user's cache."""
    folder = machine.parent / "cache" / "optibid" / "stripe-mock" / STRIPE_MOCK / "bin"
    folder.mkdir(parents=True)
    _stub(folder, "stripe-mock")


def _built_tools(machine: Path) -> None:
    """helm and OpenTofu as ops/tools/*.sh leave them in the (fake) user's cache."""
    for name, version, binary in (("helm", HELM, "helm"), ("tofu", TOFU, "tofu")):
        folder = machine.parent / "cache" / "optibid" / name / version / "bin"
        folder.mkdir(parents=True)
        _stub(folder, binary)


def _postgres_installed() -> bool:
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


def test_a_bare_machine_needs_the_stack_and_pip(machine: Path) -> None:
    _stub(machine, "initdb")  # PostgreSQL is found on PATH as well as in its Debian folder
    assert _missing(machine, "demo") == f"{STACK} python3-pip"
    assert _missing(machine, "test") == (
        f"{STACK} chromium chromium-driver xmlsec1 nodejs npm prometheus golang-go python3-pip"
        f" stripe-mock@{STRIPE_MOCK} helm@{HELM} tofu@{TOFU}"
    )
    assert _missing(machine, "uv") == "python3-pip"


def test_a_machine_with_everything_needs_nothing(machine: Path) -> None:
    for name in ("make", "mvn", "redis-server", "initdb", "chromium", "chromedriver", "xmlsec1",
                 "node", "npm", "promtool"):  # fmt: skip
        _stub(machine, name)
    _stub(machine, "java", _java("17.0.15"))
    _built_stripe_mock(machine)
    _built_tools(machine)
    assert _missing(machine, "test", python="exit 0") == ""


def test_helm_and_opentofu_need_go_until_built_and_terraform_stands_for_opentofu(
    machine: Path,
) -> None:
    for name in ("make", "mvn", "redis-server", "initdb", "chromium", "chromedriver", "xmlsec1",
                 "node", "npm", "promtool"):  # fmt: skip
        _stub(machine, name)
    _stub(machine, "java", _java("17.0.15"))
    _built_stripe_mock(machine)
    everything = {"python": "exit 0"}
    assert _missing(machine, "test", **everything) == f"golang-go helm@{HELM} tofu@{TOFU}"
    assert _missing(machine, "demo", **everything) == ""  # only the tests use them
    _stub(machine, "terraform")  # a terraform on PATH formats the modules as well
    assert _missing(machine, "test", **everything) == f"golang-go helm@{HELM}"
    _built_tools(machine)
    assert _missing(machine, "test", **everything) == ""


def test_stripe_mock_needs_go_only_until_it_is_built(machine: Path) -> None:
    for name in ("make", "mvn", "redis-server", "initdb", "chromium", "chromedriver", "xmlsec1",
                 "node", "npm", "promtool"):  # fmt: skip
        _stub(machine, name)
    _stub(machine, "java", _java("17.0.15"))
    _built_tools(machine)
    everything = {"python": "exit 0"}
    assert _missing(machine, "test", **everything) == f"golang-go stripe-mock@{STRIPE_MOCK}"
    go_root = machine.parent / "go"  # Go's release tarball, off PATH
    (go_root / "bin").mkdir(parents=True)
    _stub(go_root / "bin", "go")
    assert _missing(machine, "test", OPTIBID_GO_ROOT=str(go_root), **everything) == (
        f"stripe-mock@{STRIPE_MOCK}"
    )
    assert _missing(machine, "demo", **everything) == ""  # only the tests use it
    _built_stripe_mock(machine)
    assert _missing(machine, "test", **everything) == ""  # built: no Go needed


def test_uv_that_runs_needs_no_pip_and_java_11_is_not_enough(machine: Path) -> None:
    for name in ("make", "mvn", "redis-server", "initdb"):
        _stub(machine, name)
    _stub(machine, "java", _java("11.0.2"))
    uv_only = 'if [ "$2" = uv ]; then exit 0; fi; exit 1'  # `python -m uv` runs, pip does not
    assert _missing(machine, "demo", python=uv_only) == "openjdk-17-jre-headless"
    _stub(machine, "java", _java("21.0.1"))
    assert _missing(machine, "demo", python=uv_only) == ""


@pytest.mark.skipif(_postgres_installed(), reason="PostgreSQL is installed in its Debian folder")
def test_postgres_is_needed_when_initdb_is_nowhere(machine: Path) -> None:
    assert "postgresql" in _missing(machine, "demo").split()


def test_an_unknown_command_is_refused(machine: Path) -> None:
    result = subprocess.run(
        ["/bin/sh", str(SETUP), "--check", "everything"],
        capture_output=True,
        text=True,
        env={"PATH": str(machine)},
        check=False,
    )
    assert result.returncode == 2
    assert "usage: ops/setup.sh" in result.stderr


SERVER = "15.18-0+deb12u1"
BUILD = "cmake build-essential libssl-dev libkrb5-dev"
HEADERS = f"postgresql-server-dev-15={SERVER} libpq-dev={SERVER} libpq5={SERVER}"


@pytest.fixture
def timescale_machine(machine: Path, tmp_path: Path) -> dict[str, str]:
    """A machine with everything the stack needs, PostgreSQL 15 from Debian's package, no
    TimescaleDB, and its source in the vendor folder; dpkg-query answers from a table."""
    for name in ("make", "mvn", "redis-server", "initdb", "chromium", "chromedriver", "xmlsec1",
                 "node", "npm", "promtool"):  # fmt: skip
        _stub(machine, name)
    _stub(machine, "java", _java("17.0.15"))
    _built_stripe_mock(machine)
    _built_tools(machine)
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "timescaledb-2.28.3.tar.gz").write_bytes(b"")
    server = tmp_path / "postgresql" / "15"
    (server / "lib").mkdir(parents=True)
    (server / "bin").mkdir()
    _stub(server / "bin", "postgres")
    versions = tmp_path / "versions"
    versions.write_text(f"postgresql-15 {SERVER}\n")
    _stub(
        machine,
        "dpkg-query",
        f'v=$(sed -n "s/^$3 //p" {versions}); [ -n "$v" ] && printf "install ok installed %s" "$v"',
    )
    return {"OPTIBID_VENDOR_DIR": str(vendor), "OPTIBID_PG_ROOT": str(tmp_path / "postgresql")}


def test_building_timescaledb_needs_the_tools_and_headers_pinned_to_the_server(
    machine: Path, tmp_path: Path, timescale_machine: dict[str, str]
) -> None:
    env = timescale_machine
    assert _missing(machine, "test", python="exit 0", **env) == f"{BUILD} {HEADERS}"
    assert _missing(machine, "demo", python="exit 0", **env) == f"{BUILD} {HEADERS}"
    assert _missing(machine, "uv", python="exit 0", **env) == ""
    # the tools there, and a libpq newer than the server: pinned back to the server's
    installed = ["cmake", "build-essential", "libssl-dev", "libkrb5-dev", "libpq-dev"]
    with (tmp_path / "versions").open("a") as versions:
        versions.writelines(f"{p} 1.0\n" for p in installed[:4])
        versions.write(f"libpq-dev {SERVER}\nlibpq5 15.20-0+deb12u1\n")
    assert _missing(machine, "test", python="exit 0", **env) == (
        f"postgresql-server-dev-15={SERVER} libpq5={SERVER}"
    )


def test_building_timescaledb_is_not_asked_for_when_it_is_not_wanted(
    machine: Path, tmp_path: Path, timescale_machine: dict[str, str]
) -> None:
    env = timescale_machine
    assert _missing(machine, "test", python="exit 0", OPTIBID_TIMESCALEDB="false", **env) == ""
    no_source = {**env, "OPTIBID_VENDOR_DIR": str(tmp_path / "elsewhere")}
    assert _missing(machine, "test", python="exit 0", **no_source) == ""
    (tmp_path / "postgresql" / "15" / "lib" / "timescaledb-2.28.3.so").write_bytes(b"")
    assert _missing(machine, "test", python="exit 0", **env) == ""
