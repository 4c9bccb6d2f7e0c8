"""The broker's jars without mvn: the shipped lock, and fetches from a real HTTP repository.

The repository is a local ``http.server`` holding a Maven layout (jar and ``.sha1`` beside it), so
the fetch, the checks and every refusal run over real HTTP without reaching Maven Central (the CI
run's Python-only demo fetches the real lock from Maven Central).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.errors import InfraError
from shared.core.settings import Settings
from shared.infra import kafka as local_kafka
from shared.infra.jars import Artifact, JarLock, download_locked, load_lock
from shared.infra.ports import free_port

JARS = {
    "org/example/one/1.0/one-1.0.jar": b"PK\x03\x04 first jar " * 100,
    "org/example/two/2.1/two-2.1.jar": b"PK\x03\x04 second jar " * 50,
}


def _lock(version: str = "4.4.0", **tampered: bytes) -> JarLock:
    artifacts = []
    for path, data in JARS.items():
        pinned = tampered.get(path.rsplit("/", 1)[-1], data)
        artifacts.append(Artifact(path, len(pinned), hashlib.sha256(pinned).hexdigest()))
    return JarLock(version, tuple(artifacts))


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Path]:
    """A Maven repository served over HTTP on loopback; yields its folder (its URL is
    ``folder.url``-less: see :func:`_url`)."""
    root = tmp_path / "repo"
    for path, data in JARS.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        (root / f"{path}.sha1").write_text(
            hashlib.sha1(data).hexdigest() + "  " + target.name  # noqa: S324 - as Maven publishes
        )
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root.joinpath(".port").write_text(str(server.server_address[1]))
    yield root
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _url(root: Path) -> str:
    return f"http://127.0.0.1:{root.joinpath('.port').read_text()}"


def test_locked_jars_are_fetched_checked_and_kept(repository: Path, tmp_path: Path) -> None:
    said: list[str] = []
    libs = download_locked(
        tmp_path / "cache" / "libs", "4.4.0", _url(repository), said.append, lock=_lock()
    )
    assert sorted(p.name for p in libs.iterdir()) == [".complete", "one-1.0.jar", "two-2.1.jar"]
    assert (libs / "two-2.1.jar").read_bytes() == JARS["org/example/two/2.1/two-2.1.jar"]
    assert "2 jars" in said[0]
    assert _url(repository) in said[0]


def test_a_jar_that_is_not_the_locked_one_is_refused_and_nothing_kept(
    repository: Path, tmp_path: Path
) -> None:
    lock = _lock(**{"two-2.1.jar": b"what the lock was written from"})
    libs = tmp_path / "cache" / "libs"
    with pytest.raises(InfraError) as caught:
        download_locked(libs, "4.4.0", _url(repository), lock=lock)
    message = str(caught.value)
    assert "two-2.1.jar is not the jar driftline's lock pins" in message
    assert "DRIFTLINE_MAVEN_REPOSITORY" in message
    assert not libs.exists()
    assert list((tmp_path / "cache").iterdir()) == []  # no staging folder left either


def test_a_jar_whose_published_sha1_differs_is_refused(repository: Path, tmp_path: Path) -> None:
    (repository / "org/example/one/1.0/one-1.0.jar.sha1").write_text("0" * 40)
    with pytest.raises(InfraError, match=r"one-1.0.jar.sha1 says 0{40}, but the jar's SHA-1"):
        download_locked(tmp_path / "libs", "4.4.0", _url(repository), lock=_lock())
    assert not (tmp_path / "libs").exists()


def test_a_jar_the_repository_lacks_names_the_url_and_the_setting(
    repository: Path, tmp_path: Path
) -> None:
    (repository / "org/example/two/2.1/two-2.1.jar").unlink()
    with pytest.raises(InfraError, match=r"two-2.1.jar answered HTTP 404.*MAVEN_REPOSITORY"):
        download_locked(tmp_path / "libs", "4.4.0", _url(repository), lock=_lock())


def test_an_unreachable_repository_says_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match=r"cannot reach http://127.0.0.1:\d+/org.*HTTPS_PROXY"):
        download_locked(tmp_path / "libs", "4.4.0", f"http://127.0.0.1:{free_port()}", lock=_lock())


def test_another_kafka_version_without_mvn_says_the_fixes(tmp_path: Path) -> None:
    with pytest.raises(InfraError) as caught:
        download_locked(tmp_path / "libs", "4.9.0", "http://unused", lock=_lock())
    message = str(caught.value)
    assert "Apache Kafka 4.9.0 is not the version driftline pins its jars for (4.4.0)" in message
    assert "apt-get install maven" in message


def test_without_mvn_auto_fetches_by_the_lock(
    repository: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no mvn
    monkeypatch.setattr(local_kafka, "download_locked", _with_lock(_lock()))
    libs = local_kafka.fetch_jars(tmp_path / "cache", "4.4.0", repository=_url(repository))
    assert (libs / "one-1.0.jar").exists()
    assert libs == tmp_path / "cache" / "kafka-4.4.0" / "libs"


def _with_lock(lock: JarLock):  # type: ignore[no-untyped-def]
    return functools.partial(download_locked, lock=lock)


def test_the_shipped_lock_pins_the_default_kafka_and_its_jars() -> None:
    lock = load_lock()
    assert lock.kafka_version == Settings().kafka_version
    names = {artifact.file_name for artifact in lock.artifacts}
    version = lock.kafka_version
    for needed in (f"kafka_2.13-{version}.jar", f"kafka-clients-{version}.jar"):
        assert needed in names
    assert any(name.startswith("log4j-core-") for name in names)  # the broker's log
    assert any(name.startswith("slf4j-api-2.") for name in names)
    for artifact in lock.artifacts:
        assert re.fullmatch(r"[0-9a-f]{64}", artifact.sha256)
        assert artifact.path.endswith(".jar") and artifact.size > 0
        assert ".." not in artifact.path and not artifact.path.startswith("/")
    assert len(names) == len(lock.artifacts)  # one folder: no two jars of the same name
