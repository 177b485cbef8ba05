"""The artifact store: a local folder, and S3 by configuration (a real S3-protocol server)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.artifacts import MARKER, ArtifactError, ArtifactStore
from tests.conftest import free_port

FILES = {"head.json": b'{"kind": "logreg"}', "weights.npz": b"\x93NUMPY..."}


def _round_trip(store: ArtifactStore) -> None:
    uri = store.write_version("intents", 3, FILES)
    assert uri.endswith("intents/3")
    assert store.read_version(uri) == FILES
    head_only = store.read_version(uri, ("head.json",))
    assert head_only == {"head.json": FILES["head.json"]}
    # A file the version was never written with (a logreg head has no booster) is not there;
    # one it was written with and lost since is an error.
    assert store.read_version(uri, ("head.json", "booster.ubj")) == head_only
    store.delete(f"{uri}/weights.npz")
    with pytest.raises(ArtifactError, match="damaged: weights.npz is missing"):
        store.read_version(uri, ("head.json", "weights.npz", "booster.ubj"))
    with pytest.raises(ArtifactError, match="damaged: weights.npz is missing"):
        store.read_version(uri)
    upload = store.put("_uploads/job.csv", b"text,label\n")
    assert store.get(upload) == b"text,label\n"
    store.delete(f"{uri}/{MARKER}")  # a half-written version is never read
    with pytest.raises(ArtifactError, match="missing or incomplete"):
        store.read_version(uri)
    with pytest.raises(ArtifactError, match="missing"):
        store.get(upload + ".nope")


def _confined(store: ArtifactStore, outside: str) -> None:
    """get, put and delete refuse paths that leave the store (``outside`` exists next to it)."""
    for key in ["../evil.csv", "_uploads/../../evil.csv", "/etc/evil", "a//b", "./a", "..", "",
                "a/./b", "_uploads/.."]:
        with pytest.raises(ArtifactError, match="refusing"):
            store.put(key, b"x")
    root = store.url
    for uri in [outside, f"{root}/../outside.txt", f"{root}/_uploads/../../outside.txt", root,
                f"{root}/", f"{root}/.", f"{root}/a/../../outside.txt", f"{root}-sibling/x"]:
        with pytest.raises(ArtifactError, match="outside the store"):
            store.get(uri)
        with pytest.raises(ArtifactError, match="outside the store"):
            store.delete(uri)
    assert store.get(store.put("_uploads/kept.csv", b"ok")) == b"ok"  # inside: fine


def test_local_folder(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    assert store.url.startswith("file://")
    _round_trip(store)


def test_versions_written_before_the_marker_listed_files(tmp_path: Path) -> None:
    """An empty marker (written before it listed the files): the folder's files are the
    version's, as they were read then."""
    store = ArtifactStore(str(tmp_path / "artifacts"))
    uri = store.write_version("intents", 1, FILES)
    (tmp_path / "artifacts" / "intents" / "1" / MARKER).write_bytes(b"")
    assert store.read_version(uri) == FILES
    head_only = store.read_version(uri, ("head.json", "booster.ubj"))
    assert head_only == {"head.json": FILES["head.json"]}


def test_get_put_delete_stay_inside_the_store(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    store = ArtifactStore(str(tmp_path / "artifacts"))
    store.write_version("intents", 1, FILES)
    _confined(store, str(outside))
    assert outside.read_text() == "secret"  # neither read out nor deleted
    assert store.read_version(f"{store.url}/intents/1") == FILES  # the store is still whole
    assert not (tmp_path / "evil.csv").exists() and not Path("/etc/evil").exists()


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """moto's standalone server: the S3 HTTP protocol on a local port (no AWS account here)."""
    server = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert server, "moto_server is missing: install the test extras"
    port = free_port()
    proc = subprocess.Popen([server, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        httpx.put(f"{url}/polyhead-test").raise_for_status()  # create the bucket
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_s3_by_configuration(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Configured the way a deployment would: the store URL plus the standard AWS variables.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    store = ArtifactStore("s3://polyhead-test/heads", skip_instance_cache=True)
    assert store.url == "s3://polyhead-test/heads"
    _round_trip(store)
    store.fs.pipe_file("polyhead-test/outside.txt", b"secret")
    _confined(store, "s3://polyhead-test/outside.txt")
    assert store.fs.cat_file("polyhead-test/outside.txt") == b"secret"
