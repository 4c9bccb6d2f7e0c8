"""The local broker's jars straight from Maven Central, without `mvn`: pinned and verified.

``kafka-jars.lock.json`` beside this module lists every jar the broker runs for the Kafka version
it pins: its path in a Maven repository, its size and its SHA-256. :func:`download_locked` fetches
each one over HTTPS and keeps it only when its SHA-256 is the lock's and its SHA-1 is the one the
repository publishes beside it (``<jar>.sha1``); one wrong byte, and nothing is kept. The lock is
written by ``python -m shared.infra.jars`` on a machine with `mvn`, from the pom beside this
module, for a new Kafka version.

DRIFTLINE_MAVEN_REPOSITORY points at a mirror (a company's Nexus or Artifactory) instead of Maven
Central; the lock's checksums hold for every mirror.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from shared.core.errors import InfraError

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
LOCK = "kafka-jars.lock.json"
_CHUNK = 1 << 16
_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Artifact:
    """One jar of the lock."""

    path: str
    """Where it is in a Maven repository: ``group/as/folders/artifact/version/file.jar``."""
    size: int
    sha256: str

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class JarLock:
    """Every jar of one Kafka version."""

    kafka_version: str
    artifacts: tuple[Artifact, ...]

    @property
    def size(self) -> int:
        return sum(artifact.size for artifact in self.artifacts)


def load_lock(text: str | None = None) -> JarLock:
    """The lock shipped with driftline (or the one ``text`` holds)."""
    if text is None:
        text = (resources.files("shared.infra") / LOCK).read_text()
    data = json.loads(text)
    return JarLock(
        data["kafka_version"],
        tuple(Artifact(a["path"], int(a["size"]), a["sha256"]) for a in data["artifacts"]),
    )


def download_locked(
    libs: Path,
    version: str,
    repository: str = MAVEN_CENTRAL,
    progress: Callable[[str], None] = print,
    lock: JarLock | None = None,
) -> Path:
    """Fetch the locked jars of Kafka ``version`` into ``libs`` (made only once all are verified);
    an :class:`InfraError` that says what to do when the version is not the locked one, the
    repository cannot be reached, or a jar is not the one the lock pins."""
    lock = lock or load_lock()
    if version != lock.kafka_version:
        raise InfraError(
            f"Apache Kafka {version} is not the version driftline pins its jars for "
            f"({lock.kafka_version}), and mvn is not on the PATH to resolve another: unset "
            f"DRIFTLINE_KAFKA_VERSION to run {lock.kafka_version}, install Maven (Debian/Ubuntu: "
            "`apt-get install maven`), or set DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        )
    base = repository.rstrip("/")
    progress(
        f"fetching Apache Kafka {version}: {len(lock.artifacts)} jars, "
        f"{lock.size / 1e6:.0f} MB, from {base} (first run only; each checked against "
        "driftline's lock and the repository's SHA-1)"
    )
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    context = ssl.create_default_context()
    done = 0
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(_fetch, base, artifact, staging, context) for artifact in lock.artifacts
            ]
            for future in futures:
                future.result()
                done += 1
                if done % 15 == 0 and done < len(futures):
                    progress(f"  {done} of {len(futures)} jars verified")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / ".complete").write_text(version)
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    progress(f"  {len(lock.artifacts)} jars verified into {libs}")
    return libs


def _fetch(base: str, artifact: Artifact, staging: Path, context: ssl.SSLContext) -> None:
    url = f"{base}/{artifact.path}"
    sha256, sha1 = hashlib.sha256(), hashlib.sha1()  # noqa: S324 - the repository publishes SHA-1
    size = 0
    target = staging / artifact.file_name
    with _open(url, context) as response, target.open("wb") as out:
        while chunk := response.read(_CHUNK):
            sha256.update(chunk)
            sha1.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if size != artifact.size or sha256.hexdigest() != artifact.sha256:
        raise InfraError(
            f"{url} is not the jar driftline's lock pins (SHA-256 {sha256.hexdigest()}, "
            f"{size} bytes; the lock says {artifact.sha256}, {artifact.size} bytes): nothing was "
            "kept. A proxy or mirror may be serving something else: check "
            "DRIFTLINE_MAVEN_REPOSITORY, or set DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        )
    with _open(f"{url}.sha1", context) as response:
        published = response.read(200).decode("ascii", "replace").split()
    if not published or published[0].lower() != sha1.hexdigest():
        raise InfraError(
            f"{url}.sha1 says {published[0] if published else 'nothing'}, but the jar's SHA-1 is "
            f"{sha1.hexdigest()}: nothing was kept. Check DRIFTLINE_MAVEN_REPOSITORY."
        )


def _open(url: str, context: ssl.SSLContext) -> urllib.request._UrlopenRet:
    try:
        return urllib.request.urlopen(url, timeout=_TIMEOUT_S, context=context)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raise InfraError(
            f"{url} answered HTTP {exc.code}: the repository does not serve this jar. Check "
            "DRIFTLINE_MAVEN_REPOSITORY (unset: Maven Central), or set DRIFTLINE_KAFKA_BOOTSTRAP "
            "to an existing broker."
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InfraError(
            f"cannot reach {url} ({reason}): check that the machine reaches Maven Central over "
            "HTTPS (a proxy goes in HTTPS_PROXY), point DRIFTLINE_MAVEN_REPOSITORY at a mirror, "
            "or set DRIFTLINE_KAFKA_BOOTSTRAP to an existing broker."
        ) from None


def write_lock(version: str, out: Path, repository: str = MAVEN_CENTRAL) -> JarLock:
    """Resolve Kafka ``version``'s runtime jars with `mvn` (the pom beside this module), check each
    against the repository's published SHA-1, and write the lock to ``out``."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("writing the jar lock needs mvn on the PATH (`apt-get install maven`)")
    with tempfile.TemporaryDirectory() as folder:
        pom = resources.files("shared.infra") / "kafka-pom.xml"
        with resources.as_file(pom) as pom_path:
            subprocess.run(
                [
                    mvn,
                    "-B",
                    "-q",
                    "-f",
                    str(pom_path),
                    "dependency:copy-dependencies",
                    f"-Dkafka.version={version}",
                    "-DincludeScope=runtime",
                    "-Dmdep.useRepositoryLayout=true",
                    f"-DoutputDirectory={folder}",
                ],
                check=True,
            )
        artifacts = []
        context = ssl.create_default_context()
        for jar in sorted(Path(folder).rglob("*.jar")):
            data = jar.read_bytes()
            path = jar.relative_to(folder).as_posix()
            with _open(f"{repository.rstrip('/')}/{path}.sha1", context) as response:
                published = response.read(200).decode().split()[0].lower()
            if published != hashlib.sha1(data).hexdigest():  # noqa: S324
                raise InfraError(f"{path}: mvn's copy does not match the published SHA-1")
            artifacts.append(Artifact(path, len(data), hashlib.sha256(data).hexdigest()))
    lock = JarLock(version, tuple(artifacts))
    body = {
        "kafka_version": version,
        "written_by": "python -m shared.infra.jars VERSION",
        "artifacts": [{"path": a.path, "size": a.size, "sha256": a.sha256} for a in artifacts],
    }
    out.write_text(json.dumps(body, indent=1) + "\n")
    return lock


if __name__ == "__main__":
    chosen = sys.argv[1] if len(sys.argv) > 1 else load_lock().kafka_version
    written = write_lock(chosen, Path(__file__).with_name(LOCK))
    print(f"{LOCK}: Kafka {chosen}, {len(written.artifacts)} jars, {written.size / 1e6:.1f} MB")
