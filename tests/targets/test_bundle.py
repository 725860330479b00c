"""Stack bundles: build, read, unpack and verify; hostile archives refused before anything lands."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from hil.errors import BundleError
from hil.spec.stack import Stack
from hil.targets import bundle


@pytest.fixture
def stack(sf):
    sf.file("bin/fusion.sh", "#!/bin/sh\necho fusion\n", 0o755)
    sf.file("bin/lib/util.txt", "util\n")
    os.symlink("lib/util.txt", sf.root / "bin" / "util-link")
    sf.file("calib.json", '{"k": 1}\n')
    return sf.stack({"fusion": {"files": ["bin", "calib.json"], "argv": ["./bin/fusion.sh"]},
                     "planner": {"files": ["calib.json"], "argv": ["true"]}})


def test_build_writes_manifest_with_checksums_and_targets(stack, tmp_path):
    out = tmp_path / bundle.bundle_name(stack)
    manifest = bundle.build_stack(stack, out)
    assert out.name == "demo-1.0.tar.gz"
    fusion = manifest.components["fusion"]
    assert fusion.target == "hpc" and fusion.kind == "process"
    assert sorted(fusion.files) == ["bin/fusion.sh", "bin/lib/util.txt", "bin/util-link", "calib.json"]
    assert fusion.files["calib.json"].sha256 == hashlib.sha256(b'{"k": 1}\n').hexdigest()
    assert fusion.files["bin/fusion.sh"].mode == 0o755
    assert fusion.files["bin/util-link"].link == "lib/util.txt"
    assert bundle.read(out) == manifest
    doc = json.loads(tarfile.open(out).extractfile("manifest.json").read())
    assert doc["format"] == "hil-bundle/1" and doc["name"] == "demo" and doc["version"] == "1.0"
    assert doc["components"]["planner"]["files"]["calib.json"]["size"] == 9


def test_build_is_reproducible(stack, tmp_path):
    bundle.build_stack(stack, tmp_path / "a.tar.gz")
    bundle.build_stack(stack, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_unpack_verifies_and_keeps_modes_and_links(stack, tmp_path):
    out = tmp_path / "b.tar.gz"
    bundle.build_stack(stack, out)
    dest = tmp_path / "sandbox"
    bundle.unpack(out, dest, ["fusion"])
    root = dest / "files" / "fusion"
    assert os.access(root / "bin/fusion.sh", os.X_OK)
    assert (root / "bin/util-link").read_text() == "util\n"
    assert not (dest / "files" / "planner").exists()


def test_checksum_mismatch_is_refused_naming_the_file(stack, tmp_path):
    out = tmp_path / "b.tar.gz"
    manifest = bundle.build_stack(stack, out)
    dest = tmp_path / "sandbox"
    bundle.unpack(out, dest)
    (dest / "files/planner/calib.json").write_text('{"k": 2}\n')
    with pytest.raises(BundleError, match=r"checksum verification failed for 1 file\(s\):\n  files/planner/calib.json: sha256"):
        bundle.verify_tree(dest, manifest)


def test_sha256sums_lists_regular_files(stack, tmp_path):
    manifest = bundle.build_stack(stack, tmp_path / "b.tar.gz")
    sums = bundle.sha256sums(manifest, ["fusion"]).splitlines()
    assert len(sums) == 3  # the link is checked apart
    calib = hashlib.sha256(b'{"k": 1}\n').hexdigest()
    assert sums[-1] == f"{calib}  files/fusion/calib.json"


def test_check_stack_refuses_another_version(stack, tmp_path, sf):
    manifest = bundle.build_stack(stack, tmp_path / "b.tar.gz")
    other = sf.stack({"fusion": {"files": ["calib.json"], "argv": ["x"]}}, version="1.1")
    with pytest.raises(BundleError, match="bundle is demo 1.0, but the stack is demo 1.1"):
        manifest.check_stack(other)
    with pytest.raises(BundleError, match="maps component 'fusion' to target 'hpc', not 'mcu'"):
        manifest.check_components({"fusion": None}, "mcu")


def test_build_refuses_a_symlink_leaving_the_folder(sf, tmp_path):
    sf.file("app/a.txt", "a")
    os.symlink("/etc/passwd", sf.root / "app" / "pw")
    stack = sf.stack({"x": {"files": ["app"], "argv": ["true"]}})
    with pytest.raises(BundleError, match="symbolic link .*pw -> /etc/passwd leaves"):
        bundle.build_stack(stack, tmp_path / "b.tar.gz")


def test_build_refuses_a_loop_of_links(sf, tmp_path):
    sf.file("app/a.txt", "a")
    os.symlink("loop-b", sf.root / "app" / "loop-a")
    os.symlink("loop-a", sf.root / "app" / "loop-b")
    stack = sf.stack({"x": {"files": ["app"], "argv": ["true"]}})
    with pytest.raises(BundleError, match=r"symbolic link .*loop-a -> loop-b never reaches a file \(a loop\)"):
        bundle.build_stack(stack, tmp_path / "b.tar.gz")


def test_build_refuses_two_files_landing_on_one_path(sf, tmp_path):
    """The bundle's own guard: a stack file saying this is refused before (Stack.problems)."""
    files = [str(sf.file("a/cfg.json", "1")), str(sf.file("b/cfg.json", "2"))]
    stack = Stack.model_validate({"name": "demo", "version": "1.0", "components": {
        "x": {"kind": "process", "target": "hpc", "files": files, "argv": ["true"]}}})
    with pytest.raises(BundleError, match="component 'x': two files would land at 'cfg.json'"):
        bundle.build_stack(stack, tmp_path / "b.tar.gz")


def test_build_names_a_missing_file(sf, tmp_path):
    stack = sf.stack({"x": {"files": ["nope.bin"], "argv": ["true"]}})
    with pytest.raises(BundleError, match="component 'x': file .*nope.bin does not exist"):
        bundle.build_stack(stack, tmp_path / "b.tar.gz")


# -- hostile archives ---------------------------------------------------------------------------


def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], files: dict[str, dict]) -> Path:
    manifest = {"format": "hil-bundle/1", "name": "evil", "version": "1",
                "components": {"c": {"target": "hpc", "kind": "process", "files": files}}}
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, body in members:
            tar.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def _file(name: str, body: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    return info, body


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


X = {"sha256": hashlib.sha256(b"x").hexdigest(), "size": 1, "mode": "644"}


@pytest.mark.parametrize("members, files, message", [
    ([_file("/etc/evil")], {}, "absolute path '/etc/evil'"),
    ([_file("files/c/../../../evil")], {}, r"path 'files/c/../../../evil' climbs out with '..'"),
    ([_link("files/c/out", "../../../etc")], {"out": {"link": "../../../etc"}}, "symbolic link 'files/c/out' -> '../../../etc' leaves the bundle"),
    ([_link("files/c/abs", "/etc/passwd")], {"abs": {"link": "/etc/passwd"}}, "leaves the bundle"),
    ([_file("files/c/a"), _file("files/c/a")], {"a": X}, "duplicate path 'files/c/a'"),
    ([_file("files/c/a"), _file("files/c/b")], {"a": X}, "'files/c/b' is not listed in the manifest"),
    ([_link("files/c/h", "files/c/a", tarfile.LNKTYPE)], {"h": X}, "'files/c/h' is a hard link"),
    ([], {"a": X}, "the manifest lists files the archive lacks: files/c/a"),
])
def test_hostile_archives_are_refused(tmp_path, members, files, message):
    archive = _archive(tmp_path / "evil.tar.gz", members, files)
    with pytest.raises(BundleError, match=message):
        bundle.unpack(archive, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    assert not Path("/etc/evil").exists()


def test_archive_without_manifest_or_not_gzip(tmp_path):
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        info, body = _file("files/c/a")
        tar.addfile(info, io.BytesIO(body))
    with pytest.raises(BundleError, match="no manifest.json at the top"):
        bundle.read(plain)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(BundleError, match="not a readable tar.gz bundle"):
        bundle.read(junk)
    bad = _archive(tmp_path / "bad.tar.gz", [], {"a": {"size": 1}})
    with pytest.raises(BundleError, match="manifest.json: not a valid bundle manifest"):
        bundle.read(bad)
