"""Stack bundles: a versioned tar.gz of the stack's component files with a manifest.

Layout of ``NAME-VERSION.tar.gz``::

    manifest.json                    {"format", "name", "version", "components": {...}}
    files/COMPONENT/PATH             every file of COMPONENT (a process's ``files``, a firmware image)

The manifest maps each component to its target and lists every file with its sha256, size and
mode (symbolic links with their link text). Archives are reproducible: sorted members, zero
times, root ownership. Reading an archive refuses absolute paths, ``..``, links leaving the
component's folder, duplicate paths, special files and files the manifest does not list — before
anything is written; :func:`verify_tree` then checks every checksum where the files landed (the
target side), and :func:`sha256sums` gives the same check as ``sha256sum -c`` input for remote hosts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import shlex
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from hil.errors import BundleError
from hil.spec.stack import Component, Stack

FORMAT = "hil-bundle/1"
MANIFEST = "manifest.json"
FILES = "files"
_CHUNK = 1 << 20


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
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise BundleError(f"{where}: expected format {FORMAT!r}, got {doc.get('format')!r}")
            comps = {}
            for name, c in doc["components"].items():
                files = {p: Entry(p, link=e["link"]) if "link" in e else
                         Entry(p, e["sha256"], int(e["size"]), int(e["mode"], 8))
                         for p, e in c["files"].items()}
                comps[name] = ComponentFiles(c["target"], c["kind"], files)
            return cls(str(doc["name"]), str(doc["version"]), comps)
        except BundleError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BundleError(f"{where}: not a valid bundle manifest ({type(exc).__name__}: {exc})") from None

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


def bundle_name(stack: Stack) -> str:
    return f"{stack.name}-{stack.version}.tar.gz"


def build_stack(stack: Stack, out: Path) -> Manifest:
    """Write the bundle of the whole stack to ``out``."""
    return build(stack.name, stack.version, stack.components, out)


def component_sources(comp: Component) -> list[Path]:
    """The local files and folders a component ships."""
    return list(comp.files) if comp.kind == "process" else [comp.image]


def build(name: str, version: str, components: Mapping[str, Component], out: Path) -> Manifest:
    """Write the bundle ``name`` ``version`` of ``components`` to ``out``; return its manifest."""
    manifest = Manifest(name, version, {})
    payload: list[tuple[str, Path, Entry]] = []
    for cname, comp in components.items():
        files: dict[str, Entry] = {}
        for source in component_sources(comp):
            for rel, path, entry in _walk(cname, source):
                if rel in files:
                    raise BundleError(f"component {cname!r}: two files would land at {rel!r} "
                                      f"(the second from {path})")
                files[rel] = entry
                payload.append((manifest.member(cname, rel), path, entry))
        manifest.components[cname] = ComponentFiles(comp.target, comp.kind, files)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest.to_json().encode())
        for member, path, entry in sorted(payload, key=lambda p: p[0]):
            _add(tar, member, path, entry)
    tmp.replace(out)
    return manifest


def _walk(component: str, source: Path) -> Iterable[tuple[str, Path, Entry]]:
    """(relative path, local path, entry) for a file, or every file below a folder."""
    if not source.exists() and not source.is_symlink():
        raise BundleError(f"component {component!r}: file {source} does not exist")
    if not source.is_dir():
        yield source.name, source, _entry(source.name, source)
        return
    root = source.resolve()
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames.sort()
        for fname in sorted(filenames) + [d for d in dirnames if Path(dirpath, d).is_symlink()]:
            path = Path(dirpath, fname)
            rel = PurePosixPath(source.name, path.relative_to(source)).as_posix()
            if path.is_symlink():
                target = Path(os.readlink(path))
                try:
                    resolved = (path.parent / target).resolve()
                except (RuntimeError, OSError):  # a loop of links
                    raise BundleError(f"component {component!r}: symbolic link {path} -> {target} "
                                      "never reaches a file (a loop)") from None
                if target.is_absolute() or not resolved.is_relative_to(root):
                    raise BundleError(f"component {component!r}: symbolic link {path} -> {target} "
                                      f"leaves {source}")
                yield rel, path, Entry(rel, link=target.as_posix())
            elif path.is_file():
                yield rel, path, _entry(rel, path)
            else:
                raise BundleError(f"component {component!r}: {path} is not a regular file")


def _entry(rel: str, path: Path) -> Entry:
    st = path.stat()
    return Entry(rel, file_sha256(path), st.st_size, stat.S_IMODE(st.st_mode) & 0o755 | 0o644)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tarinfo(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _tarinfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _add(tar: tarfile.TarFile, name: str, path: Path, entry: Entry) -> None:
    info = _tarinfo(name)
    if entry.link is not None:
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
        tar.addfile(info)
        return
    info.size, info.mode = entry.size, entry.mode
    with open(path, "rb") as f:
        tar.addfile(info, f)


# -- reading -------------------------------------------------------------------------------------


def read(archive: Path) -> Manifest:
    """Open ``archive``, check every member against the rules and the manifest; return the manifest.

    Nothing is extracted. Checksums are not computed here: that is the target side's job
    (:func:`verify_tree`, or ``sha256sum -c`` on a remote host).
    """
    where = str(archive)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = tar.getmembers()
            manifest = _manifest(tar, members, where)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{where}: not a readable tar.gz bundle ({exc})") from None
    seen: set[str] = set()
    for m in members:
        name = _safe_name(m.name, where)
        if name in seen:
            raise BundleError(f"{where}: duplicate path {name!r} in the archive")
        seen.add(name)
        _check_member(m, name, manifest, where)
    missing = {manifest.member(c, p) for c, cf in manifest.components.items() for p in cf.files} - seen
    if missing:
        raise BundleError(f"{where}: the manifest lists files the archive lacks: {', '.join(sorted(missing))}")
    return manifest


def _manifest(tar: tarfile.TarFile, members: list[tarfile.TarInfo], where: str) -> Manifest:
    found = [m for m in members if m.name in (MANIFEST, "./" + MANIFEST)]
    if not found or not found[0].isfile():
        raise BundleError(f"{where}: no {MANIFEST} at the top of the archive")
    f = tar.extractfile(found[0])
    return Manifest.from_json(f.read() if f else b"", f"{where}: {MANIFEST}")


def _safe_name(name: str, where: str) -> str:
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise BundleError(f"{where}: absolute path {name!r} in the archive; refused")
    parts = PurePosixPath(name).parts
    if ".." in parts:
        raise BundleError(f"{where}: path {name!r} climbs out with '..'; refused")
    return posixpath.normpath(name)


def _check_member(m: tarfile.TarInfo, name: str, manifest: Manifest, where: str) -> None:
    if name == MANIFEST:
        return
    if m.isdir():
        return
    parts = PurePosixPath(name).parts
    comp = manifest.components.get(parts[1]) if len(parts) > 2 and parts[0] == FILES else None
    rel = "/".join(parts[2:])
    entry = comp.files.get(rel) if comp else None
    if entry is None:
        raise BundleError(f"{where}: {name!r} is not listed in the manifest; refused")
    if m.issym():
        link = PurePosixPath(m.linkname)
        inside = posixpath.normpath(posixpath.join(posixpath.dirname(rel), m.linkname))
        if link.is_absolute() or inside == ".." or inside.startswith("../"):
            raise BundleError(f"{where}: symbolic link {name!r} -> {m.linkname!r} leaves the bundle; refused")
        if entry.link != m.linkname:
            raise BundleError(f"{where}: symbolic link {name!r} -> {m.linkname!r}, the manifest says "
                              f"-> {entry.link!r}")
        return
    if not m.isfile():
        raise BundleError(f"{where}: {name!r} is a {'hard link' if m.islnk() else 'special file'}; "
                          "bundles hold only regular files and symbolic links")
    if entry.link is not None:
        raise BundleError(f"{where}: {name!r} is a file, the manifest says a link")


def unpack(archive: Path, dest: Path, components: Iterable[str] | None = None) -> Manifest:
    """Check ``archive`` (:func:`read`), extract it (only ``components``, when given) into ``dest``
    and verify every checksum there."""
    manifest = read(archive)
    names = list(components) if components is not None else list(manifest.components)
    prefixes = tuple(f"{FILES}/{n}/" for n in names)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        wanted = [m for m in tar.getmembers() if posixpath.normpath(m.name).startswith(prefixes)]
        tar.extractall(dest, members=wanted, filter="data")
    verify_tree(dest, manifest, names)
    return manifest


def verify_tree(dest: Path, manifest: Manifest, components: Iterable[str] | None = None) -> None:
    """Every listed file under ``dest`` has its manifest checksum; raise listing each mismatch."""
    bad: list[str] = []
    for cname in components if components is not None else manifest.components:
        for rel, entry in manifest.components[cname].files.items():
            path = dest / manifest.member(cname, rel)
            if entry.link is not None:
                if not path.is_symlink() or os.readlink(path) != entry.link:
                    bad.append(f"{manifest.member(cname, rel)}: expected a link to {entry.link}")
            elif not path.is_file() or path.is_symlink():
                bad.append(f"{manifest.member(cname, rel)}: missing")
            elif (got := file_sha256(path)) != entry.sha256:
                bad.append(f"{manifest.member(cname, rel)}: sha256 {got[:16]}…, "
                           f"manifest {entry.sha256[:16]}…")
    if bad:
        raise BundleError(f"bundle {manifest.name} {manifest.version}: checksum verification failed "
                          f"for {len(bad)} file(s):\n  " + "\n  ".join(bad))


def link_checks(manifest: Manifest, components: Iterable[str]) -> str:
    """An ``sh`` script (run in the bundle's root) that names each link of ``components`` that is
    missing or points elsewhere than the manifest says, and then fails; empty without links."""
    links = [(manifest.member(c, p), e.link) for c in components
             for p, e in sorted(manifest.components[c].files.items()) if e.link is not None]
    if not links:
        return ""
    return "".join(["bad=0\n",
                    'check() { [ -L "$1" ] && [ "$(readlink -- "$1")" = "$2" ] || '
                    '{ printf \'%s: expected a link to %s\\n\' "$1" "$2"; bad=1; }; }\n',
                    *(f"check {shlex.quote(m)} {shlex.quote(t)}\n" for m, t in links),
                    "exit $bad\n"])


def sha256sums(manifest: Manifest, components: Iterable[str]) -> str:
    """``sha256sum -c`` input for the regular files of ``components`` (paths relative to the root)."""
    return "".join(f"{e.sha256}  {manifest.member(c, p)}\n"
                   for c in components for p, e in sorted(manifest.components[c].files.items())
                   if e.link is None)

