"""Stack bundles: build, read, unpack and verify; hostile archives refused before anything lands."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import tarfile

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
    with pytest.raises(BundleError, match="symbolic link 'app/pw' -> '/etc/passwd' leaves"):
        bundle.build_stack(stack, tmp_path / "b.tar.gz")


def test_build_refuses_a_loop_of_links(sf, tmp_path):
    sf.file("app/a.txt", "a")
    os.symlink("loop-b", sf.root / "app" / "loop-a")
    os.symlink("loop-a", sf.root / "app" / "loop-b")
    stack = sf.stack({"x": {"files": ["app"], "argv": ["true"]}})
    with pytest.raises(BundleError, match=r"symbolic link 'app/loop-a' -> 'loop-b' never reaches a file \(a loop\)"):
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


# -- hostile sources: what a stack ships (hostile archives: test_bundle_corpus.py) --------------
#
# Ids starting with guard- were refused before issue #12 too; the others were accepted (written
# outside the bundle folder, hashed forever, hung, or packed into a bundle no reader accepts).


def _fifo(sf, rel):
    (sf.root / rel).parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(sf.root / rel)
    return rel


def _sparse(sf, rel, size):
    path = sf.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    return rel


def _socket(sf, rel):
    (sf.root / rel).parent.mkdir(parents=True, exist_ok=True)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sf.root / rel))
    s.close()
    return rel


def _links(sf, **links):
    sf.file("app/main.py", "print()\n")
    for rel, target in links.items():
        (sf.root / "app" / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, sf.root / "app" / rel)
    return "app"


def _hard_link(sf, tmp_path):
    secret = tmp_path / "secret.key"
    secret.write_text("k")
    sf.file("app/main.py", "print()\n")
    os.link(secret, sf.root / "app" / "innocent.txt")
    return "app"


SOURCES = [
    ("files-dev-zero", lambda sf, t: "/dev/zero",
     "component 'x': file /dev/zero is not a regular file (a character device)"),
    ("named-fifo", lambda sf, t: _fifo(sf, "pipe"), "component 'x': file {root}/pipe is not a regular file (a FIFO)"),
    ("guard-fifo-in-a-folder", lambda sf, t: (sf.file("app/a", "a"), _fifo(sf, "app/pipe"), "app")[-1],
     "component 'x': {root}/app/pipe is not a regular file (a FIFO); bundles hold only files, folders and "
     "symbolic links"),
    ("guard-socket-in-a-folder", lambda sf, t: (_socket(sf, "app/s"), "app")[-1],
     "component 'x': {root}/app/s is not a regular file (a socket); bundles hold only files, folders and "
     "symbolic links"),
    ("sparse-file-of-1-tib", lambda sf, t: _sparse(sf, "map.bin", 1 << 40),
     "component 'x': file {root}/map.bin is 1,024.0 GiB; at most 4.0 GiB is accepted"),
    ("hard-link-to-a-file-outside", _hard_link,
     "{root}/app/innocent.txt is a hard link: the file has 2 names, 1 of them outside what the stack ships; "
     "copy it if it belongs in the bundle"),
    ("terminal-escape-in-a-file-name", lambda sf, t: (sf.file("app/\x1b]0;owned\x07", "x"), "app")[-1],
     "bundle demo 1.0: component 'x': path 'app/\\x1b]0;owned\\x07' has a part that contains the control "
     "character '\\x1b'"),
    ("dangling-link", lambda sf, t: _links(sf, current="releases/42"),
     "bundle demo 1.0: component 'x': symbolic link 'app/current' -> 'releases/42' points to nothing in the "
     "bundle ('app/releases' does not exist)"),
    ("guard-chain-of-links-out", lambda sf, t: _links(sf, **{"a/b/c/l": "../../..", "z": "a/b/c/l/../../.."}),
     "bundle demo 1.0: component 'x': symbolic link 'app/z' -> 'a/b/c/l/../../..' leaves the component's "
     "folder"),
    ("guard-link-to-a-device", lambda sf, t: _links(sf, rnd="/dev/urandom"),
     "bundle demo 1.0: component 'x': symbolic link 'app/rnd' -> '/dev/urandom' leaves the component's folder: "
     "it is absolute"),
    ("guard-relative-link-to-a-device", lambda sf, t: _links(sf, zero="../" * 30 + "dev/zero"),
     "bundle demo 1.0: component 'x': symbolic link 'app/zero' -> '" + "../" * 30 + "dev/zero' leaves the "
     "component's folder"),
]


@pytest.mark.parametrize("make, message", [s[1:] for s in SOURCES], ids=[s[0] for s in SOURCES])
def test_hostile_sources_are_refused_and_nothing_is_written(sf, tmp_path, make, message):
    shipped = make(sf, tmp_path)
    stack = sf.stack({"x": {"files": [shipped], "argv": ["true"]}})
    out = tmp_path / "out" / "b.tar.gz"
    with pytest.raises(BundleError) as exc:
        bundle.build_stack(stack, out)
    assert str(exc.value) == message.format(root=sf.root)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.parametrize("version, problem", [
    ("../../escape", "contains '/'"),
    ("1.0/../../../escape", "contains '/'"),
    ("..", "is '..', which names a folder, not a file"),
    ("1.0\n", "contains the control character '\\n'"),
    ("1.0\x1b[2J", "contains the control character '\\x1b'"),
    ("9" * 300, "is 300 bytes; a file name holds at most 255"),
])
def test_a_version_cannot_move_the_bundle_out_of_its_folder(sf, tmp_path, version, problem):
    """The stack layer is safe by itself, whatever the spec loader lets through."""
    sf.file("a.txt", "a")
    stack = sf.stack({"x": {"files": ["a.txt"], "argv": ["true"]}}).model_copy(update={"version": version})
    folder = tmp_path / "runs" / "deep" / "run"
    with pytest.raises(BundleError) as exc:
        bundle.build_stack(stack, bundle.bundle_path(folder, stack))
    assert str(exc.value) == f"stack version {version!r} {problem}; it is part of the bundle's file name"
    assert not (tmp_path / "escape").exists() and not (tmp_path / "runs").exists()


def test_a_component_name_cannot_climb_out_of_the_bundle(sf, tmp_path):
    sf.file("a.txt", "a")
    stack = sf.stack({"x": {"files": ["a.txt"], "argv": ["true"]}})
    hostile = {"../../x": stack.components["x"]}
    with pytest.raises(BundleError, match=r"^component name '../../x' contains '/'; it is a folder of the bundle$"):
        bundle.build("demo", "1.0", hostile, tmp_path / "b.tar.gz")
    assert list(tmp_path.iterdir()) == [tmp_path / "stack"]


def test_hil_stack_build_refuses_a_climbing_version_and_writes_nothing_outside(sf, tmp_path):
    sf.file("a.txt", "a")
    sf.stack({"x": {"files": ["a.txt"], "argv": ["true"]}}, version="../../escape")
    cwd = tmp_path / "a" / "b"
    cwd.mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "hil", "--no-color", "stack", "build", str(sf.root / "stack.yaml")],
                       cwd=cwd, capture_output=True, text=True, timeout=120)
    assert r.returncode in (2, 3), r.stderr  # a spec error (2) if the loader refuses it first, else a bundle error
    assert "'../../escape'" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if "stack" not in p.parts) == \
        ["a", "a/b"]


def test_a_bundle_the_reader_would_refuse_is_not_written(sf, tmp_path):
    """Building checks the written archive with the reader's limits before it lands."""
    sf.file("zeros.bin", "\0" * 200_000)
    stack = sf.stack({"x": {"files": ["zeros.bin"], "argv": ["true"]}})
    out = tmp_path / "b.tar.gz"
    tight = bundle.Limits(ratio=10, ratio_floor=0)
    with pytest.raises(BundleError, match=rf"^{out}: unpacks to more than .*; a bundle of .* may unpack to at most"):
        bundle.build_stack(stack, out, tight)
    assert list(tmp_path.iterdir()) == [tmp_path / "stack"]
    bundle.build_stack(stack, out)  # within the default limits
    assert bundle.read(out).components["x"].files["zeros.bin"].size == 200_000
