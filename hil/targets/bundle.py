"""Stack bundles: a versioned tar.gz of the stack's component files with a manifest.

Layout of ``NAME-VERSION.tar.gz``::

    manifest.json                    {"format", "name", "version", "components": {...}}
    files/COMPONENT/PATH             every file of COMPONENT (a process's ``files``, a firmware image)

The manifest maps each component to its target and lists every file with its sha256, size and
mode (symbolic links with their link text). Archives are reproducible: sorted members, zero
times, root ownership.

A bundle is untrusted input wherever it is read (``--bundle`` takes any file), so the same rules
hold when one is built and before anything of one is written: names are plain relative paths
(no ``..``, no control characters), only regular files and symbolic links, every link resolved
completely — through other links — to a file or folder of its own component, and the
:class:`Limits` on members, sizes and compression ratio, enforced on the tar headers and on the
decompressed stream itself, so a bomb costs at most what the limits allow. :func:`verify_tree`
then checks every checksum and link where the files landed (the target side), and
:func:`remote_checks` with :func:`sha256sums` do the same on a remote host.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shlex
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from hil.errors import BundleError
from hil.files import GiB, MiB, FileRefused, kind_text, name_problem, open_regular, size_text
from hil.spec.stack import Component, Stack

FORMAT = "hil-bundle/1"
MANIFEST = "manifest.json"
FILES = "files"
MAX_HOPS = 40  # symbolic links followed while resolving one path, as Linux does
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Limits:
    """What a bundle may hold. Building refuses what reading would refuse."""

    members: int = 100_000
    file_size: int = 4 * GiB
    total_size: int = 16 * GiB  # the whole tar stream: headers and every file
    ratio: int = 200  # unpacked : compressed, once a bundle unpacks to more than ratio_floor
    ratio_floor: int = 64 * MiB
    manifest_size: int = 64 * MiB
    header_size: int = 1 * MiB  # one extended (PAX or GNU long name) tar header

    def unpacked(self, compressed: int) -> int:
        """The most an archive of ``compressed`` bytes may unpack to."""
        return min(self.total_size, max(self.ratio * compressed, self.ratio_floor))


LIMITS = Limits()


@dataclass(frozen=True)
class Entry:
    """One file (or symbolic link) of a component, path relative to the component's folder."""

    path: str
    sha256: str | None = None
    size: int = 0
    mode: int = 0o644
    link: str | None = None

    def to_json(self) -> dict:
        if self.link is not None:
            return {"link": self.link}
        return {"sha256": self.sha256, "size": self.size, "mode": f"{self.mode:o}"}

    @classmethod
    def from_json(cls, path: str, doc: dict) -> Entry:
        if "link" in doc:
            return cls(path, link=str(doc["link"]))
        sha256 = str(doc["sha256"])
        entry = cls(path, sha256, int(doc["size"]), int(doc["mode"], 8))
        if not _SHA256.fullmatch(sha256) or entry.size < 0 or entry.mode & ~0o777:
            raise ValueError(f"file {path!r}: expected a sha256 of 64 hex digits, a size ≥ 0 and a mode "
                             f"within 777, got {doc!r}")
        return entry


@dataclass(frozen=True)
class ComponentFiles:
    target: str
    kind: str
    files: dict[str, Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    components: dict[str, ComponentFiles]

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "name": self.name, "version": self.version,
            "components": {n: {"target": c.target, "kind": c.kind,
                               "files": {p: e.to_json() for p, e in sorted(c.files.items())}}
                           for n, c in sorted(self.components.items())},
        }, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, where: str = MANIFEST) -> Manifest:
        """Parse and check a manifest: plain names and paths, links that stay in their component."""
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise BundleError(f"{where}: expected format {FORMAT!r}, got {doc.get('format')!r}")
            comps = {str(name): ComponentFiles(str(c["target"]), str(c["kind"]),
                                               {str(p): Entry.from_json(str(p), e) for p, e in c["files"].items()})
                     for name, c in doc["components"].items()}
            manifest = cls(str(doc["name"]), str(doc["version"]), comps)
        except BundleError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"{where}: not a valid bundle manifest ({type(exc).__name__}: {exc})") from None
        manifest.check(where)
        return manifest

    def check(self, where: str) -> None:
        """Raise BundleError at the first name, path or link that could leave its folder or would
        print as something else (see :func:`_tree_problem`)."""
        for what, text in (("name", self.name), ("version", self.version)):
            if problem := name_problem(text):
                raise BundleError(f"{where}: bundle {what} {text!r} {problem}")
        for name, comp in self.components.items():
            for what, text in (("component name", name), ("target", comp.target)):
                if problem := name_problem(text):
                    raise BundleError(f"{where}: {what} {text!r} {problem}")
            if problem := _tree_problem(comp.files):
                raise BundleError(f"{where}: component {name!r}: {problem}")

    def member(self, component: str, path: str) -> str:
        return f"{FILES}/{component}/{path}"

    def check_stack(self, stack: Stack) -> None:
        """The bundle was built from this stack: same name and version, every component mapped to
        the same target."""
        if (self.name, self.version) != (stack.name, stack.version):
            raise BundleError(f"bundle is {self.name} {self.version}, but the stack is "
                              f"{stack.name} {stack.version}")
        for name, comp in stack.components.items():
            self.check_components({name: comp}, comp.target)

    def check_components(self, components: Mapping[str, Component], target: str) -> None:
        """The bundle holds each of ``components``, mapped to ``target``."""
        for name in components:
            got = self.components.get(name)
            if got is None:
                raise BundleError(f"bundle {self.name} {self.version} has no component {name!r}")
            if got.target != target:
                raise BundleError(f"bundle {self.name} {self.version} maps component {name!r} to "
                                  f"target {got.target!r}, not {target!r}")


# -- the rules every bundle keeps ----------------------------------------------------------------


def _path_problem(path: str) -> str | None:
    """Why ``path`` is not a plain relative path below a component's folder (a sentence with the
    path as its subject), or None."""
    if path.startswith("/"):
        return f"{path!r} is an absolute path"
    for part in path.split("/"):
        if part == "..":
            return f"{path!r} climbs out with '..'"
        if problem := name_problem(part):
            return f"{path!r} has a part that {problem}"
    return None


def _folders(paths: Iterable[str]) -> set[str]:
    """The folders that ``paths`` imply: every proper prefix ("a/b/c" → "a", "a/b")."""
    return {p.rsplit("/", i)[0] for p in paths for i in range(1, p.count("/") + 1)}


def _tree_problem(files: Mapping[str, Entry]) -> str | None:
    """Why the files of one component do not form a safe tree, or None: every path plain, no path
    both a file (or link) and a folder, every link text printable and every link resolved
    completely, through other links, to a file or folder of the same component."""
    folders = _folders(files)
    for path, entry in sorted(files.items()):
        if problem := _path_problem(path):
            return f"path {problem}"
        if path in folders:
            kind = "a symbolic link" if entry.link is not None else "a file"
            return f"{path!r} is {kind} and also a folder of other files"
        if entry.link is not None and (problem := _link_problem(files, folders, path)):
            return f"symbolic link {path!r} -> {entry.link!r} {problem}"
    return None


def _link_problem(files: Mapping[str, Entry], folders: set[str], path: str) -> str | None:
    """Resolve the link at ``path`` the way the kernel will, inside its component's tree; say why
    it does not end at a file or folder there, or None."""
    text = files[path].link
    if not text:
        return "has an empty target"
    if text.startswith("/"):
        return "leaves the component's folder: it is absolute"
    for part in text.split("/"):
        if part not in ("", ".", "..") and (problem := name_problem(part)):
            return f"has a target whose part {problem}"
    here: list[str] = path.split("/")[:-1]
    todo = list(reversed(text.split("/")))
    hops = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not here:
                return "leaves the component's folder"
            here.pop()
            continue
        at = "/".join([*here, part])
        entry = files.get(at)
        if entry is not None and entry.link is not None:
            hops += 1
            if hops > MAX_HOPS:
                return "never reaches a file (a loop)"
            if entry.link.startswith("/"):
                return f"leads to {at!r} -> {entry.link!r}, which is absolute"
            todo.extend(reversed(entry.link.split("/")))
            continue
        if entry is None and at not in folders:
            return f"points to nothing in the bundle ({at!r} does not exist)"
        if entry is not None and any(p not in ("", ".") for p in todo):
            return f"goes through {at!r}, which is a file"
        here.append(part)
    return None


# -- building ------------------------------------------------------------------------------------


def bundle_name(stack: Stack) -> str:
    """``NAME-VERSION.tar.gz``; BundleError when the name or version cannot be part of a file name."""
    for what, text in (("name", stack.name), ("version", stack.version)):
        if problem := name_problem(text):
            raise BundleError(f"stack {what} {text!r} {problem}; it is part of the bundle's file name")
    name = f"{stack.name}-{stack.version}.tar.gz"
    if problem := name_problem(name):
        raise BundleError(f"bundle file name {name!r} {problem}")
    return name


def bundle_path(folder: Path, stack: Stack) -> Path:
    """Where the stack's bundle goes in ``folder``: always directly in it."""
    return Path(folder) / bundle_name(stack)


def build_stack(stack: Stack, out: Path, limits: Limits = LIMITS) -> Manifest:
    """Write the bundle of the whole stack to ``out``."""
    return build(stack.name, stack.version, stack.components, out, limits)


def component_sources(comp: Component) -> list[Path]:
    """The local files and folders a component ships."""
    return list(comp.files) if comp.kind == "process" else [comp.image]


def build(name: str, version: str, components: Mapping[str, Component], out: Path,
          limits: Limits = LIMITS) -> Manifest:
    """Write the bundle ``name`` ``version`` of ``components`` to ``out``; return its manifest.

    Every shipped file is opened as a regular file within ``limits.file_size`` (a FIFO or
    ``/dev/zero`` is refused, not read forever), and the bundle is checked by the rules a reader
    applies before a byte of it is written; it lands at ``out`` only when complete."""
    manifest = Manifest(name, version, {})
    payload: list[tuple[str, Path, Entry]] = []
    inodes: dict[tuple[int, int], tuple[int, set[Path]]] = {}
    for cname, comp in components.items():
        if problem := name_problem(cname):
            raise BundleError(f"component name {cname!r} {problem}; it is a folder of the bundle")
        files: dict[str, Entry] = {}
        for source in component_sources(comp):
            for rel, path, link in _walk(cname, Path(source)):
                if rel in files:
                    raise BundleError(f"component {cname!r}: two files would land at {rel!r} "
                                      f"(the second from {path})")
                files[rel] = Entry(rel, link=link) if link is not None else \
                    _entry(cname, rel, path, limits, inodes)
                payload.append((manifest.member(cname, rel), path, files[rel]))
        manifest.components[cname] = ComponentFiles(comp.target, comp.kind, files)
    _check_hard_links(inodes)
    manifest.check(f"bundle {name} {version}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    try:
        with open(fd, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add_bytes(tar, MANIFEST, manifest.to_json().encode())
            for member, path, entry in sorted(payload, key=lambda p: p[0]):
                _add(tar, member, path, entry)
        with ExitStack() as stack:  # the reader's rules, limits and ratio included
            _checked(stack, Path(tmp), limits, str(out))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return manifest


def _walk(component: str, source: Path) -> Iterable[tuple[str, Path, str | None]]:
    """(relative path, local path, link text or None) for a named file, or everything below a
    named folder — links are kept as links, never followed; anything but files, folders and
    links is refused."""
    if not source.exists() and not source.is_symlink():
        raise BundleError(f"component {component!r}: file {source} does not exist")
    if not source.is_dir():
        yield source.name, source, None  # opened as a regular file when it is hashed
        return

    def unreadable(exc: OSError) -> None:
        raise BundleError(f"component {component!r}: cannot read folder {exc.filename}: {exc.strerror}")

    for dirpath, dirnames, filenames in os.walk(source, onerror=unreadable):
        dirnames.sort()
        for fname in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, fname)
            rel = PurePosixPath(source.name, path.relative_to(source)).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                yield rel, path, os.readlink(path)
            elif stat.S_ISREG(mode):
                yield rel, path, None
            else:
                raise BundleError(f"component {component!r}: {path} is not a regular file "
                                  f"({kind_text(mode)}); bundles hold only files, folders and symbolic links")


def _entry(component: str, rel: str, path: Path, limits: Limits,
           inodes: dict[tuple[int, int], tuple[int, set[Path]]]) -> Entry:
    """The entry of a regular file, hashed; its inode noted for :func:`_check_hard_links`."""
    try:
        with open_regular(path, limits.file_size, f"component {component!r}: file") as f:
            st = os.fstat(f.fileno())
            digest = _sha256(f, st.st_size, path)
    except FileRefused as exc:
        raise BundleError(str(exc)) from None
    if st.st_nlink > 1:
        name = Path(os.path.realpath(path.parent), path.name)
        inodes.setdefault((st.st_dev, st.st_ino), (st.st_nlink, set()))[1].add(name)
    return Entry(rel, digest, st.st_size, stat.S_IMODE(st.st_mode) & 0o755 | 0o644)


def _check_hard_links(inodes: Mapping[tuple[int, int], tuple[int, set[Path]]]) -> None:
    """A file with more names than the bundle ships is a hard link to something outside it."""
    for nlink, names in inodes.values():
        if len(names) < nlink:
            shown = ", ".join(map(str, sorted(names)))
            raise BundleError(f"{shown} is a hard link: the file has {nlink} names, {nlink - len(names)} of them "
                              "outside what the stack ships; copy it if it belongs in the bundle")


def _sha256(f: BinaryIO, size: int, path: Path | str) -> str:
    """The sha256 of exactly ``size`` bytes of ``f`` (a file that shrinks meanwhile is an error)."""
    h = hashlib.sha256()
    left = size
    while left and (chunk := f.read(min(_CHUNK, left))):
        h.update(chunk)
        left -= len(chunk)
    if left:
        raise BundleError(f"{path} shrank while it was read ({size:,} bytes expected)")
    return h.hexdigest()


def file_sha256(path: Path, limit: int = LIMITS.total_size) -> str:
    """The sha256 of a regular file of at most ``limit`` bytes (BundleError for anything else)."""
    try:
        with open_regular(path, limit) as f:
            return _sha256(f, os.fstat(f.fileno()).st_size, path)
    except FileRefused as exc:
        raise BundleError(str(exc)) from None


def _tarinfo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _tarinfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


class _Hashing:
    """A file read through for tarfile, hashing what passes."""

    def __init__(self, f: BinaryIO):
        self.f, self.sha256 = f, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.sha256.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, path: Path, entry: Entry) -> None:
    """Add a file or link; a file must still be the one hashed for the manifest."""
    info = _tarinfo(name)
    if entry.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
        tar.addfile(info)
        return
    info.size, info.mode = entry.size, entry.mode
    try:
        with open_regular(path, entry.size) as f:
            body = _Hashing(f)
            tar.addfile(info, body)
            same = body.sha256.hexdigest() == entry.sha256
    except (FileRefused, OSError):  # it grew, or tarfile found it shorter ("unexpected end of data")
        same = False
    if not same:
        raise BundleError(f"{path} changed while the bundle was built; build it again")


# -- reading -------------------------------------------------------------------------------------


class _Inflated:
    """The tar stream inside a gzip file, as tarfile reads it: going past ``budget`` bytes, or
    reading more than ``header`` bytes at once (tarfile does that only for an extended header;
    hil reads members in smaller chunks) is a BundleError, so a bomb costs at most ``budget``."""

    def __init__(self, raw: BinaryIO, where: str, limits: Limits):
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
        compressed = os.fstat(raw.fileno()).st_size
        self.where, self.budget, self._header = where, limits.unpacked(compressed), limits.header_size
        self._why = (f"a bundle of {size_text(compressed)} may unpack to at most {size_text(self.budget)} "
                     f"(limits: {limits.ratio}× its size above {size_text(limits.ratio_floor)}, "
                     f"{size_text(limits.total_size)} in all)")

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self._header:
            raise BundleError(f"{self.where}: holds a tar header of {size_text(n)}; at most "
                              f"{size_text(self._header)} is read")
        data = self._gz.read(n)
        self.within(self._gz.tell())
        return data

    def seek(self, pos: int, whence: int = 0) -> int:
        self.within(pos if whence == 0 else self._gz.tell() + pos)
        return self._gz.seek(pos, whence)

    def tell(self) -> int:
        return self._gz.tell()

    def within(self, pos: int, at: str = "") -> None:
        """BundleError if the stream would reach ``pos`` (for the member ``at``)."""
        if pos > self.budget:
            raise BundleError(f"{self.where}: unpacks to more than {size_text(self.budget)}"
                              f"{f' (at {at!r})' if at else ''}; {self._why}")


def _checked(stack: ExitStack, archive: Path, limits: Limits,
             where: str | None = None) -> tuple[tarfile.TarFile, list[tarfile.TarInfo], Manifest]:
    """Open ``archive`` (closed with ``stack``) and check every header and the manifest; errors
    name it as ``where`` (the archive's path)."""
    where = where or str(archive)
    try:
        raw = stack.enter_context(open_regular(archive, limits.total_size, "bundle"))
    except FileRefused as exc:
        raise BundleError(str(exc)) from None
    stream = _Inflated(raw, where, limits)
    try:
        # tarfile reads it by read/seek/tell only; typeshed's file type also asks for write and close
        tar = stack.enter_context(tarfile.open(fileobj=stream, mode="r:"))  # type: ignore[call-overload]
        members = _members(tar, stream, limits)
        manifest = _manifest(tar, members, limits, where)
    except RecursionError:  # tarfile reads each extended header of a chain one call deeper
        raise BundleError(f"{where}: not a readable tar.gz bundle (a chain of extended headers too long to "
                          "follow)") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"{where}: not a readable tar.gz bundle ({exc})") from None
    _check_members(members, manifest, where)
    return tar, members, manifest


def _members(tar: tarfile.TarFile, stream: _Inflated, limits: Limits) -> list[tarfile.TarInfo]:
    """Every member header, checked as it is read: count, type, size, name, duplicates."""
    where = stream.where
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    while (m := tar.next()) is not None:
        if len(members) == limits.members:
            raise BundleError(f"{where}: more than {limits.members:,} members; refused")
        name = _name(m)
        if name != "." and (problem := _path_problem(name)):
            raise BundleError(f"{where}: archive member {problem}; refused")
        if name in seen:
            raise BundleError(f"{where}: duplicate path {name!r} in the archive")
        seen.add(name)
        if m.issparse():
            raise BundleError(f"{where}: {name!r} is a sparse file (claiming {size_text(m.size)}); "
                              "bundles hold only plain files")
        if not (m.isfile() or m.isdir() or m.issym()):
            what = "a hard link" if m.islnk() else "a special file"
            raise BundleError(f"{where}: {name!r} is {what}; bundles hold only regular files and symbolic links")
        if m.mode & ~0o777:
            raise BundleError(f"{where}: {name!r} has mode {m.mode:o}: setuid, setgid and sticky bits are refused")
        if m.isfile() and m.size > limits.file_size:
            raise BundleError(f"{where}: {name!r} is {size_text(m.size)}; a bundle file is at most "
                              f"{size_text(limits.file_size)}")
        stream.within(m.offset_data + m.size, name)
        members.append(m)
    return members


def _name(m: tarfile.TarInfo) -> str:
    """A member's path without the ``./`` that ``tar -C DIR .`` puts in front ("." for DIR itself)."""
    return m.name.removeprefix("./") or "."


def _manifest(tar: tarfile.TarFile, members: list[tarfile.TarInfo], limits: Limits, where: str) -> Manifest:
    found = [m for m in members if _name(m) == MANIFEST]
    if not found or not found[0].isfile():
        raise BundleError(f"{where}: no {MANIFEST} at the top of the archive")
    if found[0].size > limits.manifest_size:
        raise BundleError(f"{where}: {MANIFEST} is {size_text(found[0].size)}; at most "
                          f"{size_text(limits.manifest_size)} is read")
    f = tar.extractfile(found[0])
    assert f is not None  # a regular file (checked above)
    data = b"".join(iter(lambda: f.read(_CHUNK), b""))
    return Manifest.from_json(data, f"{where}: {MANIFEST}")


def _check_members(members: list[tarfile.TarInfo], manifest: Manifest, where: str) -> None:
    """Every member is what the manifest lists (or a folder it implies), and nothing it lists is missing."""
    listed = {manifest.member(c, p): e for c, cf in manifest.components.items() for p, e in cf.files.items()}
    folders = {".", FILES} | {f"{FILES}/{c}" for c in manifest.components} | _folders(listed)
    for m in members:
        name = _name(m)
        if name == MANIFEST or (m.isdir() and name in folders):
            continue
        entry = listed.pop(name, None)
        if entry is None:
            raise BundleError(f"{where}: {name!r} is not listed in the manifest; refused")
        if m.issym() and entry.link != m.linkname:
            raise BundleError(f"{where}: symbolic link {name!r} -> {m.linkname!r}, the manifest says "
                              f"-> {entry.link!r}")
        if m.isfile() and entry.link is not None:
            raise BundleError(f"{where}: {name!r} is a file, the manifest says a link")
        if not (m.isfile() or m.issym()):
            raise BundleError(f"{where}: {name!r} is a folder, the manifest says a file")
    if listed:
        raise BundleError(f"{where}: the manifest lists files the archive lacks: {', '.join(sorted(listed))}")


def read(archive: Path, limits: Limits = LIMITS) -> Manifest:
    """Open ``archive``, check every member against the rules and the manifest; return the manifest.

    Nothing is extracted. Checksums are not computed here: that is the target side's job
    (:func:`verify_tree`, or ``sha256sum -c`` on a remote host).
    """
    with ExitStack() as stack:
        return _checked(stack, Path(archive), limits)[2]


def unpack(archive: Path, dest: Path, components: Iterable[str] | None = None,
           limits: Limits = LIMITS) -> Manifest:
    """Check ``archive`` (as :func:`read`), extract the members it checked (only ``components``,
    when given) into ``dest`` from the same open file, and verify every checksum there."""
    with ExitStack() as stack:
        tar, members, manifest = _checked(stack, Path(archive), limits)
        names = list(components) if components is not None else list(manifest.components)
        prefixes = tuple(f"{FILES}/{n}/" for n in names)
        wanted = [m for m in members if _name(m).startswith(prefixes)]
        dest.mkdir(parents=True, exist_ok=True)
        try:
            tar.extractall(dest, members=wanted, filter="data")
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise BundleError(f"{archive}: cannot be unpacked ({exc})") from None
        except OSError as exc:
            raise BundleError(f"{archive}: cannot be unpacked into {dest}: {exc.strerror or exc}") from None
    verify_tree(dest, manifest, names)
    return manifest


def verify_tree(dest: Path, manifest: Manifest, components: Iterable[str] | None = None) -> None:
    """Every folder of the components under ``dest`` is a real folder (not a link), every listed
    file a regular file with its manifest checksum, every link has its manifest text and resolves
    inside its component; raise listing each mismatch."""
    bad: list[str] = []
    for cname in components if components is not None else manifest.components:
        root = os.path.realpath(dest / FILES / cname)
        files = manifest.components[cname].files
        bad += [f"{FILES}/{cname}/{f}: expected a folder" for f in sorted(_folders(files))
                if not stat.S_ISDIR(_lmode(dest / FILES / cname / f))]
        for rel, entry in files.items():
            member = manifest.member(cname, rel)
            if problem := _landed_problem(dest / member, entry, root):
                bad.append(f"{member}: {problem}")
    if bad:
        raise BundleError(f"bundle {manifest.name} {manifest.version}: checksum verification failed "
                          f"for {len(bad)} file(s):\n  " + "\n  ".join(bad))


def _lmode(path: Path) -> int:
    """The mode of ``path`` itself (0 when it is missing)."""
    try:
        return path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return 0


def _landed_problem(path: Path, entry: Entry, root: str) -> str | None:
    if not (mode := _lmode(path)):
        return "missing"
    if entry.link is not None:
        if not stat.S_ISLNK(mode) or os.readlink(path) != entry.link:
            return f"expected a link to {entry.link}"
        to = os.path.realpath(path)
        if not os.path.exists(to) or os.path.commonpath([root, to]) != root:
            return f"link leads to {to}, outside its component"
        return None
    if not stat.S_ISREG(mode):
        return "missing" if stat.S_ISLNK(mode) else f"expected a regular file, found {kind_text(mode)}"
    assert entry.sha256 is not None  # a file's entry (a link's returned above)
    if (size := path.stat().st_size) != entry.size:
        return f"sha256 differs: {size:,} bytes, manifest {entry.size:,}"
    try:
        got = file_sha256(path, entry.size)
    except BundleError as exc:  # changed under our feet
        return str(exc)
    return None if got == entry.sha256 else f"sha256 {got[:16]}…, manifest {entry.sha256[:16]}…"


_REMOTE_CHECKS = r"""bad=0
root=$(pwd -P)
no() { printf '%s: %s\n' "$1" "$2"; bad=1; }
folder() { if [ -L "$1" ] || [ ! -d "$1" ]; then no "$1" 'expected a folder'; fi; }
file() { if [ -L "$1" ] || [ ! -f "$1" ]; then no "$1" 'expected a regular file'; fi; }
link() {
  if [ ! -L "$1" ] || [ "$(readlink -- "$1")" != "$2" ]; then no "$1" "expected a link to $2"; return; fi
  to=$(readlink -e -- "$1")
  case $to in "$root/$3"|"$root/$3"/*) ;; *) no "$1" "link leads to ${to:-nothing}, outside its component";; esac
}
"""


def remote_checks(manifest: Manifest, components: Iterable[str]) -> str:
    """An ``sh`` script, run in the bundle's root on the target host, that names every folder of
    ``components`` that is not a real folder (a folder swapped for a link would lead every path
    through it elsewhere), every listed regular file that is not one, and every link whose text
    differs from the manifest or which does not resolve completely (``readlink -e``) inside its
    component — and then fails. Run before :func:`sha256sums`, so that ``sha256sum`` opens only
    regular files at their own paths. Only shell builtins run per file; ``readlink`` per link."""
    lines = [_REMOTE_CHECKS]
    for c in components:
        top, files = f"{FILES}/{c}", manifest.components[c].files
        folders = {f"{top}/{f}" for f in _folders(files)} | ({top} if files else set())
        lines += [f"folder {shlex.quote(f)}\n" for f in sorted(folders)]
        lines += [f"file {shlex.quote(manifest.member(c, p))}\n" if e.link is None else
                  f"link {shlex.quote(manifest.member(c, p))} {shlex.quote(e.link)} {shlex.quote(top)}\n"
                  for p, e in sorted(files.items())]
    return "".join([*lines, "exit $bad\n"])


def sha256sums(manifest: Manifest, components: Iterable[str]) -> str:
    """``sha256sum -c`` input for the regular files of ``components`` (paths relative to the root)."""
    return "".join(f"{e.sha256}  {manifest.member(c, p)}\n"
                   for c in components for p, e in sorted(manifest.components[c].files.items())
                   if e.link is None)
