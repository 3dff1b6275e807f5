"""Jars from Maven Central, resolved once per pom: Maven caches the downloads in its local
repository, and we cache the resolved classpath (keyed by the pom's hash) in the state folder."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

from optibid.stack import process
from optibid.stack.base import Server
from optibid.stack.errors import StackError

OPS_DIR = Path(__file__).resolve().parent.parent.parent / "ops"


def check_java() -> str:
    return process.require_binary("java", "openjdk-17-jre-headless")


class JavaServer(Server):
    """A server the JDK runs from Maven Central jars; `java` is the JDK's binary once
    `check_installed` has passed."""

    java: str

    def check_installed(self) -> None:
        self.java = check_java()


def check_maven() -> str:
    return process.require_binary("mvn", "maven")


def _pom_hash(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()[:16]


def resolve_classpath(pom: Path, cache_dir: Path) -> str:
    """The runtime classpath of `pom`'s dependencies, downloading jars only the first time."""
    cache = cache_dir / f"{pom.parent.name}-{_pom_hash(pom)}.classpath"
    if cache.exists():
        classpath = cache.read_text().strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(":")):
            return classpath
    mvn = check_maven()
    cache.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:build-classpath",
            "-Dmdep.includeScope=runtime",
            f"-Dmdep.outputFile={cache}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not cache.exists():
        cache.unlink(missing_ok=True)
        output = (result.stdout + result.stderr).strip()[-1500:]
        raise StackError(
            f"Maven could not resolve the jars of {pom}:\n{output}",
            "check that Maven Central is reachable (mvn's settings.xml, proxy), then retry",
        )
    return cache.read_text().strip()


def fetch_distribution(pom: Path, cache_dir: Path, archive: str, marker: str) -> Path:
    """Fetch the tar.gz distribution `pom` names and unpack it into a cache folder keyed by the
    pom's hash; `marker` is a file the unpacked distribution must contain."""
    target = cache_dir / f"{pom.parent.name}-{_pom_hash(pom)}"
    if (target / marker).exists():
        return target
    mvn = check_maven()
    download = target.with_suffix(".download")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), "package", f"-Dregistry.dir={download}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not (download / archive).exists():
        output = (result.stdout + result.stderr).strip()[-1500:]
        raise StackError(
            f"Maven could not fetch the distribution of {pom}:\n{output}",
            "check that Maven Central is reachable (mvn's settings.xml, proxy), then retry",
        )
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(download / archive) as tar:
        tar.extractall(partial, filter="data")
    if not (partial / marker).exists():
        raise StackError(f"{archive} from {pom} holds no {marker}", f"remove {download} and retry")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    shutil.rmtree(download, ignore_errors=True)
    return target
