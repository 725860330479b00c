"""Hostile bundles (issue #12): each archive is generated here, and each must be refused by
``bundle.read`` and ``bundle.unpack`` with exactly its message, before anything is written.

Cases whose id starts with ``guard-`` were refused before #12 too and guard against regressions;
every other case was accepted (or hung, or ended in a traceback) before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.errors import BundleError
from hil.files import MiB, size_text
from hil.targets import bundle

SHA_X = hashlib.sha256(b"x").hexdigest()
X = {"sha256": SHA_X, "size": 1, "mode": "644"}


def manifest(files: dict, **over) -> dict:
    doc = {"format": "hil-bundle/1", "name": "evil", "version": "1",
           "components": {"c": {"target": "hpc", "kind": "process", "files": files}}}
    doc.update(over)
    return doc


def header(name: str, *, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644,
           pax: dict | None = None, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode = size, kind, link, mode
    if pax:
        info.pax_headers = pax
    return info.tobuf(fmt, "utf-8", "surrogateescape")


def block(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def member(name: str, data: bytes = b"x", **kw) -> bytes:
    return header(name, size=len(data), **kw) + block(data)


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> bytes:
    return header(name, kind=kind, link=target)


def archive(path: Path, *members: bytes, files: dict | None = None, doc: dict | bytes | None = None,
            level: int = 6) -> Path:
    """manifest.json (``doc``, or one listing ``files``) followed by ``members``, as tar.gz."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc or manifest(files or {})).encode()
    stream = member("manifest.json", body) + b"".join(members) + b"\0" * 1024
    path.write_bytes(gzip.compress(stream, level))
    return path


def patch_header(raw: bytes, offset: int, field: bytes) -> bytes:
    """``raw`` (one 512-byte header) with ``field`` at ``offset`` and its checksum made right again."""
    buf = bytearray(raw)
    buf[offset:offset + len(field)] = field
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf[:512])
    return bytes(buf)


def gnu_sparse(name: str, real: int) -> bytes:
    """An old-GNU sparse member ('S'): 512 bytes of data standing for ``real`` bytes."""
    raw = header(name, size=512, kind=tarfile.GNUTYPE_SPARSE, fmt=tarfile.GNU_FORMAT)
    raw = patch_header(raw, 386, b"%011o\0" % 0 + b"%011o\0" % 512)  # one chunk: offset 0, 512 bytes
    raw = patch_header(raw, 483, b"\x80" + real.to_bytes(11, "big"))  # realsize, base-256
    return raw + b"x" * 512


def pax_sparse(name: str, real: int) -> bytes:
    """A PAX 1.0 sparse member: its map, then 512 bytes of data standing for ``real`` bytes."""
    pax = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": name,
           "GNU.sparse.realsize": str(real)}
    data = block(b"1\n0\n512\n") + b"y" * 512
    return header("GNUSparseFile.0/" + name, size=len(data), pax=pax) + data


def pax_chain(n: int) -> bytes:
    rec = b"20 comment=aaaaaaaa\n"
    return (header("PaxHeader", size=len(rec), kind=tarfile.XHDTYPE, fmt=tarfile.USTAR_FORMAT) + block(rec)) * n


def big_header(kind: bytes, size: int) -> bytes:
    """An extended header (PAX 'x' or GNU long name 'L') of ``size`` bytes, followed by its member."""
    body = b"%d comment=" % (size) + b"a" * (size - 20)
    body = body[:size - 1] + b"\n"
    return header("././@LongLink", size=len(body), kind=kind, fmt=tarfile.USTAR_FORMAT) + block(body) + \
        member("files/c/a")


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Path], Path]
    error: str  # the whole message; {a} is the archive's path
    limits: bundle.Limits = bundle.LIMITS


def zeros(path: Path, sizes: list[int]) -> Path:
    """A bomb: members files/c/zNNN of ``sizes`` zero bytes (listed in the manifest), written without
    holding them in memory."""
    listed = {f"z{i:03}": {"sha256": "0" * 64, "size": size, "mode": "644"} for i, size in enumerate(sizes)}
    with gzip.open(path, "wb", 9) as gz:
        gz.write(member("manifest.json", json.dumps(manifest(listed)).encode()))
        for i, size in enumerate(sizes):
            gz.write(header(f"files/c/z{i:03}", size=size))
            for _ in range(size // MiB):
                gz.write(bytes(MiB))
        gz.write(b"\0" * 1024)
    return path


ESCAPE = "files/c/\x1b]0;pwned\x07\x1b[2J"
CHAIN = {"a/b/c/l": {"link": "../../.."}, "z": {"link": "a/b/c/l/../../../.."}}

CASES = [
    # -- names and paths
    Case("guard-absolute-member", lambda p: archive(p, member("/etc/evil")),
         "{a}: archive member '/etc/evil' is an absolute path; refused"),
    Case("guard-dotdot-member", lambda p: archive(p, member("files/c/../../../evil")),
         "{a}: archive member 'files/c/../../../evil' climbs out with '..'; refused"),
    Case("dot-member-inside-a-path", lambda p: archive(p, member("files/c/./a"), files={"a": X}),
         "{a}: archive member 'files/c/./a' has a part that is '.', which names a folder, not a file; refused"),
    Case("terminal-escape-in-a-member-name", lambda p: archive(p, member(ESCAPE), files={ESCAPE[8:]: X}),
         "{a}: archive member 'files/c/\\x1b]0;pwned\\x07\\x1b[2J' has a part that contains the control "
         "character '\\x1b'; refused"),
    Case("newline-in-a-member-name-would-forge-a-sha256sum-line",
         lambda p: archive(p, member(f"files/c/a\n{SHA_X}  files/c/b"), files={f"a\n{SHA_X}  files/c/b": X}),
         "{a}: archive member 'files/c/a\\n" + SHA_X + "  files/c/b' has a part that contains the control "
         "character '\\n'; refused"),
    Case("guard-duplicate-member", lambda p: archive(p, member("files/c/a"), member("files/c/a"), files={"a": X}),
         "{a}: duplicate path 'files/c/a' in the archive"),
    Case("guard-unlisted-member", lambda p: archive(p, member("files/c/a"), member("files/c/b"), files={"a": X}),
         "{a}: 'files/c/b' is not listed in the manifest; refused"),
    Case("unlisted-folder-member", lambda p: archive(p, header("files/c/empty", kind=tarfile.DIRTYPE)),
         "{a}: 'files/c/empty' is not listed in the manifest; refused"),
    Case("guard-listed-file-missing", lambda p: archive(p, files={"a": X}),
         "{a}: the manifest lists files the archive lacks: files/c/a"),
    Case("file-that-is-also-a-folder",
         lambda p: archive(p, member("files/c/a"), member("files/c/a/b"), files={"a": X, "a/b": X}),
         "{a}: manifest.json: component 'c': 'a' is a file and also a folder of other files"),
    Case("guard-component-name-with-a-slash",
         lambda p: archive(p, member("files/a/b/f"), doc=manifest({}, components={
             "a/b": {"target": "hpc", "kind": "process", "files": {"f": X}}})),
         "{a}: manifest.json: component name 'a/b' contains '/'"),
    Case("component-name-dotdot",
         lambda p: archive(p, doc=manifest({}, components={
             "..": {"target": "hpc", "kind": "process", "files": {}}})),
         "{a}: manifest.json: component name '..' is '..', which names a folder, not a file"),
    Case("version-that-climbs", lambda p: archive(p, doc=manifest({}, version="../../x")),
         "{a}: manifest.json: bundle version '../../x' contains '/'"),
    Case("name-with-terminal-escapes", lambda p: archive(p, doc=manifest({}, name="\x1b]0;owned\x07")),
         "{a}: manifest.json: bundle name '\\x1b]0;owned\\x07' contains the control character '\\x1b'"),
    Case("guard-manifest-path-climbing", lambda p: archive(p, files={"../../x": X}),
         "{a}: manifest.json: component 'c': path '../../x' climbs out with '..'"),
    Case("guard-manifest-path-absolute", lambda p: archive(p, files={"/etc/passwd": X}),
         "{a}: manifest.json: component 'c': path '/etc/passwd' is an absolute path"),
    Case("manifest-checksum-not-a-string", lambda p: archive(p, member("files/c/a"), files={"a": {**X, "sha256": 5}}),
         "{a}: manifest.json: not a valid bundle manifest (ValueError: file 'a': expected a sha256 of 64 hex "
         "digits, a size ≥ 0 and a mode within 777, got {'sha256': 5, 'size': 1, 'mode': '644'})"),
    # -- links
    Case("guard-link-climbing-out", lambda p: archive(p, link("files/c/out", "../../../etc"),
                                                      files={"out": {"link": "../../../etc"}}),
         "{a}: manifest.json: component 'c': symbolic link 'out' -> '../../../etc' leaves the component's folder"),
    Case("guard-absolute-link", lambda p: archive(p, link("files/c/abs", "/etc/passwd"),
                                                  files={"abs": {"link": "/etc/passwd"}}),
         "{a}: manifest.json: component 'c': symbolic link 'abs' -> '/etc/passwd' leaves the component's folder: "
         "it is absolute"),
    Case("guard-link-to-a-device", lambda p: archive(p, link("files/c/rnd", "/dev/urandom"),
                                               files={"rnd": {"link": "/dev/urandom"}}),
         "{a}: manifest.json: component 'c': symbolic link 'rnd' -> '/dev/urandom' leaves the component's folder: "
         "it is absolute"),
    Case("chain-each-link-lexically-inside", lambda p: archive(  # z first: Python's data filter misses it too
        p, link("files/c/z", "a/b/c/l/../../../.."), link("files/c/a/b/c/l", "../../.."), files=CHAIN),
        "{a}: manifest.json: component 'c': symbolic link 'z' -> 'a/b/c/l/../../../..' leaves the component's folder"),
    Case("chain-through-a-folder-link", lambda p: archive(
        p, link("files/c/sub/up", ".."), link("files/c/x", "sub/up/.."),
        files={"sub/up": {"link": ".."}, "x": {"link": "sub/up/.."}}),
        "{a}: manifest.json: component 'c': symbolic link 'x' -> 'sub/up/..' leaves the component's folder"),
    Case("guard-chain-to-an-absolute-link", lambda p: archive(
        p, link("files/c/a", "b"), link("files/c/b", "/etc/shadow"),
        files={"a": {"link": "b"}, "b": {"link": "/etc/shadow"}}),
        "{a}: manifest.json: component 'c': symbolic link 'a' -> 'b' leads to 'b' -> '/etc/shadow', which is absolute"),
    Case("link-loop", lambda p: archive(p, link("files/c/a", "b"), link("files/c/b", "a"),
                                        files={"a": {"link": "b"}, "b": {"link": "a"}}),
         "{a}: manifest.json: component 'c': symbolic link 'a' -> 'b' never reaches a file (a loop)"),
    Case("dangling-link", lambda p: archive(p, link("files/c/a", "nowhere"), files={"a": {"link": "nowhere"}}),
         "{a}: manifest.json: component 'c': symbolic link 'a' -> 'nowhere' points to nothing in the bundle "
         "('nowhere' does not exist)"),
    Case("link-through-a-file", lambda p: archive(p, member("files/c/f"), link("files/c/a", "f/.."),
                                                  files={"f": X, "a": {"link": "f/.."}}),
         "{a}: manifest.json: component 'c': symbolic link 'a' -> 'f/..' goes through 'f', which is a file"),
    Case("member-written-through-a-link", lambda p: archive(
        p, member("files/c/sub/x"), link("files/c/d", "sub"), member("files/c/d/y"),
        files={"sub/x": X, "d": {"link": "sub"}, "d/y": X}),
        "{a}: manifest.json: component 'c': 'd' is a symbolic link and also a folder of other files"),
    Case("guard-link-text-differs-from-manifest", lambda p: archive(p, member("files/c/f"), link("files/c/a", "../../x"),
                                                              files={"f": X, "a": {"link": "f"}}),
         "{a}: symbolic link 'files/c/a' -> '../../x', the manifest says -> 'f'"),
    Case("link-with-control-characters", lambda p: archive(
        p, member("files/c/f"), link("files/c/a", "f\x1b[2J"), files={"f": X, "a": {"link": "f\x1b[2J"}}),
        "{a}: manifest.json: component 'c': symbolic link 'a' -> 'f\\x1b[2J' has a target whose part contains the "
        "control character '\\x1b'"),
    Case("empty-link-target", lambda p: archive(p, link("files/c/a", ""), files={"a": {"link": ""}}),
         "{a}: manifest.json: component 'c': symbolic link 'a' -> '' has an empty target"),
    Case("guard-pax-path-override-climbing", lambda p: archive(p, member("files/c/a", pax={"path": "../../x"}),
                                                               files={"a": X}),
         "{a}: archive member '../../x' climbs out with '..'; refused"),
    Case("non-utf8-member-name", lambda p: archive(
        p, member("files/c/\udcff", fmt=tarfile.GNU_FORMAT), files={"\udcff": X}),
        "{a}: archive member 'files/c/\\udcff' has a part that is not valid UTF-8; refused"),
    # -- member kinds
    Case("guard-hard-link", lambda p: archive(p, link("files/c/h", "files/c/a", tarfile.LNKTYPE), files={"h": X}),
         "{a}: 'files/c/h' is a hard link; bundles hold only regular files and symbolic links"),
    Case("guard-fifo", lambda p: archive(p, header("files/c/f", kind=tarfile.FIFOTYPE), files={"f": X}),
         "{a}: 'files/c/f' is a special file; bundles hold only regular files and symbolic links"),
    Case("guard-character-device", lambda p: archive(p, header("files/c/z", kind=tarfile.CHRTYPE), files={"z": X}),
         "{a}: 'files/c/z' is a special file; bundles hold only regular files and symbolic links"),
    Case("guard-block-device", lambda p: archive(p, header("files/c/sda", kind=tarfile.BLKTYPE),
                                                 files={"sda": X}),
         "{a}: 'files/c/sda' is a special file; bundles hold only regular files and symbolic links"),
    Case("setuid-member", lambda p: archive(p, member("files/c/a", mode=0o4755), files={"a": {**X, "mode": "755"}}),
         "{a}: 'files/c/a' has mode 4755: setuid, setgid and sticky bits are refused"),
    Case("sticky-folder-member", lambda p: archive(p, header("files/c", kind=tarfile.DIRTYPE, mode=0o1777)),
         "{a}: 'files/c' has mode 1777: setuid, setgid and sticky bits are refused"),
    Case("setuid-in-the-manifest", lambda p: archive(p, member("files/c/a"), files={"a": {**X, "mode": "4755"}}),
         "{a}: manifest.json: not a valid bundle manifest (ValueError: file 'a': expected a sha256 of 64 hex "
         "digits, a size ≥ 0 and a mode within 777, got {'sha256': '" + SHA_X + "', 'size': 1, 'mode': '4755'})"),
    Case("gnu-sparse-member-of-1-tib", lambda p: archive(p, gnu_sparse("files/c/s", 1 << 40), files={"s": X}),
         "{a}: 'files/c/s' is a sparse file (claiming 1,024.0 GiB); bundles hold only plain files"),
    Case("pax-sparse-member-of-1-tib", lambda p: archive(p, pax_sparse("files/c/s", 1 << 40), files={"s": X}),
         "{a}: 'files/c/s' is a sparse file (claiming 1,024.0 GiB); bundles hold only plain files"),
    # -- sizes, ratio, counts
    Case("guard-member-claiming-1-tib", lambda p: archive(p, header("files/c/big", size=1 << 40), files={"big": X}),
         "{a}: 'files/c/big' is 1,024.0 GiB; a bundle file is at most 4.0 GiB"),
    Case("gzip-bomb", lambda p: zeros(p, [100 * MiB]),
         "{a}: unpacks to more than 64.0 MiB (at 'files/c/z000'); a bundle of {size} may unpack to at most "
         "64.0 MiB (limits: 200× its size above 64.0 MiB, 16.0 GiB in all)"),
    Case("many-small-members-adding-up", lambda p: zeros(p, [MiB] * 80),
        "{a}: unpacks to more than 64.0 MiB (at 'files/c/z063'); a bundle of {size} may unpack to at most "
        "64.0 MiB (limits: 200× its size above 64.0 MiB, 16.0 GiB in all)"),
    Case("too-many-members", lambda p: archive(p, *(member(f"files/c/m{i}") for i in range(20)),
                                               files={f"m{i}": X for i in range(20)}),
         "{a}: more than 10 members; refused", bundle.Limits(members=10)),
    Case("pax-header-of-2-mib", lambda p: archive(p, big_header(tarfile.XHDTYPE, 2 * MiB), files={"a": X}),
         "{a}: holds a tar header of 2.0 MiB; at most 1.0 MiB is read"),
    Case("guard-gnu-long-name-of-2-mib", lambda p: archive(p, big_header(tarfile.GNUTYPE_LONGNAME, 2 * MiB),
                                                     files={"a": X}),
         "{a}: holds a tar header of 2.0 MiB; at most 1.0 MiB is read"),
    Case("chain-of-3000-pax-headers", lambda p: archive(p, pax_chain(3000) + member("files/c/a"), files={"a": X}),
         "{a}: not a readable tar.gz bundle (a chain of extended headers too long to follow)"),
    Case("manifest-too-large", lambda p: archive(p, *(member(f"files/c/f{i}") for i in range(2000)),
                                                 files={f"f{i}": X for i in range(2000)}),
         "{a}: manifest.json is 229,018 bytes; at most 100,000 bytes is read", bundle.Limits(manifest_size=100_000)),
    # -- the archive itself
    Case("guard-not-gzip", lambda p: (p.write_bytes(b"not an archive"), p)[1],
         "{a}: not a readable tar.gz bundle (Not a gzipped file (b'no'))"),
    Case("guard-truncated", lambda p: (p.write_bytes(archive(p, member("files/c/a"),
                                                             files={"a": X}).read_bytes()[:60]), p)[1],
         "{a}: not a readable tar.gz bundle (Compressed file ended before the end-of-stream marker was reached)"),
    Case("archive-is-a-fifo", lambda p: (os.mkfifo(p), p)[1], "bundle {a} is not a regular file (a FIFO)"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_bundle_is_refused_before_anything_is_written(tmp_path, case):
    path = case.make(tmp_path / "evil.tar.gz")
    size = size_text(path.stat().st_size) if path.is_file() else ""
    expected = case.error.replace("{a}", str(path)).replace("{size}", size)
    with pytest.raises(BundleError) as exc:
        bundle.read(path, case.limits)
    assert str(exc.value) == expected
    with pytest.raises(BundleError) as exc:
        bundle.unpack(path, tmp_path / "dest", limits=case.limits)
    assert str(exc.value) == expected
    assert not (tmp_path / "dest").exists()


def test_corpus_is_large_and_mostly_new():
    assert len(CASES) >= 50
    assert sum(not c.id.startswith("guard-") for c in CASES) >= 30


def test_an_archive_made_by_gnu_tar_with_dot_prefixes_is_read(tmp_path):
    """``tar -C DIR -czf B .`` writes ``./`` before every name and a ``.`` member: still a bundle."""
    src = tmp_path / "src"
    (src / "files/c").mkdir(parents=True)
    (src / "files/c/a").write_bytes(b"x")
    (src / "manifest.json").write_text(json.dumps(manifest({"a": X})))
    out = tmp_path / "b.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=".")
    assert bundle.unpack(out, tmp_path / "dest").components["c"].files["a"].sha256 == SHA_X
    assert (tmp_path / "dest/files/c/a").read_bytes() == b"x"


def test_a_link_tampered_after_unpacking_is_caught_where_it_landed(tmp_path):
    """verify_tree resolves each link completely on disk, as the remote check does with readlink -e."""
    out = archive(tmp_path / "b.tar.gz", member("files/c/f"), link("files/c/sub/l", "../f"),
                  files={"f": X, "sub/l": {"link": "../f"}})
    dest = tmp_path / "dest"
    manifest_ = bundle.unpack(out, dest)
    (dest / "files/c/f").unlink()
    (dest / "files/c/f").symlink_to("../../../outside")  # the link text of sub/l is unchanged
    with pytest.raises(BundleError) as exc:
        bundle.verify_tree(dest, manifest_)
    assert str(exc.value).splitlines()[1:] == [
        "  files/c/f: missing",
        f"  files/c/sub/l: link leads to {tmp_path / 'outside'}, outside its component"]


def test_a_folder_swapped_for_a_link_after_unpacking_is_caught(tmp_path):
    """A folder replaced by a link would lead every file below it elsewhere, texts and all intact."""
    out = archive(tmp_path / "b.tar.gz", member("files/c/sub/f"), files={"sub/f": X})
    dest = tmp_path / "dest"
    manifest_ = bundle.unpack(out, dest)
    elsewhere = tmp_path / "elsewhere"
    (dest / "files/c/sub").rename(elsewhere)
    (dest / "files/c/sub").symlink_to(elsewhere)
    with pytest.raises(BundleError) as exc:
        bundle.verify_tree(dest, manifest_)
    assert str(exc.value).splitlines()[1:] == ["  files/c/sub: expected a folder"]
