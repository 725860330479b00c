"""Hostile firmware images (issue #12): payload archives, headers, image files and stub folders,
generated here, each refused with exactly its message before anything is inflated or written.

Ids starting with ``guard-`` were refused before #12 too; the others were accepted (inflated a
bomb, packed a file from outside the folder, wrote outside the folder), hung or crashed.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zipfile
import zlib
from functools import partial

import pytest

from hil.errors import DeployError, SpecError
from hil.files import MiB, size_text
from hil.firmware import image
from hil.firmware.build import build, load_image
from tests.hilcli import hil as run_hil

MAIN = ("blink.py", b"def setup(mcu):\n    pass\n")


def info(name: str, mode: int | None = None, method: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    zi = zipfile.ZipInfo(name, (2020, 1, 1, 0, 0, 0))
    zi.compress_type = method
    if mode is not None:
        zi.external_attr = mode << 16
    return zi


def payload(*members: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name"
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def patched_end(raw: bytes, entries: int | None = None, size: int | None = None) -> bytes:
    """``raw`` with the zip end record announcing other ``entries`` / directory ``size``."""
    at = raw.rfind(b"PK\x05\x06")
    end = list(struct.unpack_from("<4s4H2LH", raw, at))
    if entries is not None:
        end[3] = end[4] = entries
    if size is not None:
        end[5] = size
    return raw[:at] + struct.pack("<4s4H2LH", *end) + raw[at + 22:]


def lying_sizes(raw: bytes, size: int) -> bytes:
    """Every central directory entry claims ``size`` unpacked bytes."""
    buf = bytearray(raw)
    at = buf.find(b"PK\x01\x02")
    while at >= 0:
        struct.pack_into("<I", buf, at + 24, size)
        at = buf.find(b"PK\x01\x02", at + 4)
    return bytes(buf)


def encrypted(raw: bytes) -> bytes:
    """Every member flagged as encrypted (zipfile does not write that flag itself)."""
    buf = bytearray(raw)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = buf.find(signature)
        while at >= 0:
            buf[at + offset] |= 0x1
            at = buf.find(signature, at + 4)
    return bytes(buf)


PAYLOADS = [
    ("zip-bomb", lambda: payload(MAIN, ("map.bin", bytes(10 * MiB))),
     "the payload unpacks to 10.0 MiB; a payload of {packed} may unpack to at most 2.0 MiB "
     "(limits: 200× its size above 1.0 MiB, 64.0 MiB in all)"),
    ("sizes-declared-at-3-gib", lambda: lying_sizes(payload(MAIN), 3 << 30),
     "the payload unpacks to 3.0 GiB; a payload of {packed} may unpack to at most 1.0 MiB "
     "(limits: 200× its size above 1.0 MiB, 64.0 MiB in all)"),
    ("too-many-members", lambda: payload(*((f"m{i}.py", b"") for i in range(1025))),
     "the payload announces 1,025 members in 54,240 bytes of directory; at most 1,024 members are accepted"),
    ("directory-announcing-60000-members", lambda: patched_end(payload(MAIN), entries=60_000),
     "the payload announces 60,000 members in 54 bytes of directory; at most 1,024 members are accepted"),
    ("guard-directory-of-100-mib", lambda: patched_end(payload(MAIN), size=100 * MiB),
     "the payload announces 1 members in 100.0 MiB of directory; at most 1,024 members are accepted"),
    ("zip64", lambda: patched_end(payload(MAIN), entries=0xFFFF),
     "the payload is a ZIP64 archive; a firmware payload is a plain zip"),
    ("member-climbing-out", lambda: payload(MAIN, ("../../evil.py", b"")),
     "payload member '../../evil.py' climbs out with '..'; refused"),
    ("absolute-member", lambda: payload(MAIN, ("/etc/cron.d/evil", b"")),
     "payload member '/etc/cron.d/evil' is an absolute path; refused"),
    ("backslash-member", lambda: payload(MAIN, ("..\\..\\evil.py", b"")),
     "payload member '..\\\\..\\\\evil.py' contains a backslash; refused"),
    ("escape-in-a-member-name", lambda: payload(MAIN, ("\x1b]0;owned\x07.py", b"")),
     "payload member '\\x1b]0;owned\\x07.py' has a part that contains the control character '\\x1b'; refused"),
    ("duplicate-member", lambda: payload(MAIN, ("blink.py", b"import os; os.system('reboot')\n")),
     "payload member 'blink.py' appears twice; refused"),
    ("symbolic-link-member", lambda: payload(MAIN, (info("dbc", stat.S_IFLNK | 0o777), b"/etc/shadow")),
     "payload member 'dbc' is a symbolic link; refused"),
    ("fifo-member", lambda: payload(MAIN, (info("pipe", stat.S_IFIFO | 0o644), b"")),
     "payload member 'pipe' is a special file; refused"),
    ("encrypted-member", lambda: encrypted(payload((info("secret.py"), b"x"))),
     "payload member 'secret.py' is encrypted; refused"),
    ("bzip2-member", lambda: payload(MAIN, (info("b.py", method=zipfile.ZIP_BZIP2), b"x" * 100)),
     "payload member 'b.py' uses compression method 12 (only stored and deflated are read); refused"),
    ("guard-not-a-zip", lambda: b"not a zip at all",
     "the payload is not a firmware archive: File is not a zip file"),
]


@pytest.mark.parametrize("make, message", [p[1:] for p in PAYLOADS], ids=[p[0] for p in PAYLOADS])
def test_hostile_payload_is_refused_before_it_is_inflated(make, message):
    data = make()
    img = image.parse(image.pack_header("blink", "1.0", data) + data)  # the header is sound
    with pytest.raises(image.ImageError) as exc:
        img.files()
    assert str(exc.value) == message.format(packed=size_text(len(data)))


def header(name: bytes, version: bytes, payload_: bytes = b"") -> bytes:
    head = image.HEADER.pack(image.MAGIC, 1, image.HEADER.size, name.ljust(32, b"\0"), version.ljust(32, b"\0"),
                             len(payload_), zlib.crc32(payload_), 0)
    return head[:-4] + struct.pack("<I", zlib.crc32(head[:-4])) + payload_


HEADERS = [
    ("name-with-a-slash", header(b"../../boot", b"1.0"), "image name '../../boot' contains '/'"),
    ("version-dotdot", header(b"blink", b".."), "image version '..' is '..', which names a folder, not a file"),
    ("escape-in-the-name", header(b"\x1b[2J\x1b]0;owned\x07", b"1"),
     "image name '\\x1b[2J\\x1b]0;owned\\x07' contains the control character '\\x1b'"),
    ("name-not-utf8", header(b"\xff\xfe", b"1"), "the header's name or version is not UTF-8 (invalid start byte)"),
    ("nul-inside-the-version", header(b"blink", b"1\x002"), "image version '1\\x002' contains the control "
                                                            "character '\\x00'"),
]


@pytest.mark.parametrize("raw, message", [h[1:] for h in HEADERS], ids=[h[0] for h in HEADERS])
def test_hostile_header_is_refused(raw, message):
    with pytest.raises(image.ImageError) as exc:
        image.parse(raw)
    assert str(exc.value) == message


def test_image_files_are_regular_and_bounded(tmp_path):
    fifo = tmp_path / "fw.hilfw"
    os.mkfifo(fifo)
    sparse = tmp_path / "app.bin"
    with open(sparse, "wb") as f:
        f.truncate(1 << 40)
    cases = {"/dev/zero": "firmware image /dev/zero is not a regular file (a character device)",
             str(fifo): f"firmware image {fifo} is not a regular file (a FIFO)",
             str(sparse): f"firmware image {sparse} is 1,024.0 GiB; at most 64.0 MiB is accepted"}
    for path, message in cases.items():
        with pytest.raises(DeployError) as exc:
            load_image(path)
        assert str(exc.value) == message


def test_a_raw_images_version_cannot_name_a_file_outside(tmp_path):
    from hil.firmware.image import RawImage

    with pytest.raises(image.ImageError, match=r"^image version '../../../etc/cron.d/x' contains '/'$"):
        RawImage("app", "../../../etc/cron.d/x", b"\x00")


# -- stub folders -------------------------------------------------------------------------------


def test_a_link_to_a_file_outside_the_stub_is_not_packed(stub, tmp_path):
    (tmp_path / "id_ed25519").write_text("PRIVATE KEY\n")
    (stub / "keys.py").symlink_to(tmp_path / "id_ed25519")
    with pytest.raises(SpecError) as exc:
        build(stub)
    assert str(exc.value) == (f"{stub}: keys.py is a symbolic link to {tmp_path / 'id_ed25519'}, which is not a "
                              "file in the folder; refused")


def test_a_link_inside_the_stub_is_packed_as_its_file(stub):
    (stub / "alias.py").symlink_to("blink.py")
    assert build(stub).files()["alias.py"] == (stub / "blink.py").read_bytes()


def test_a_fifo_in_the_stub_is_refused_not_read(stub):
    os.mkfifo(stub / "pipe")
    with pytest.raises(SpecError) as exc:
        build(stub)
    assert str(exc.value) == f"{stub}: pipe is not a regular file (a FIFO); refused"


def test_a_huge_file_in_the_stub_is_refused_unread(stub):
    with open(stub / "map.bin", "wb") as f:
        f.truncate(100 * MiB)
    with pytest.raises(SpecError) as exc:
        build(stub)
    assert str(exc.value) == f"{stub}: firmware file {stub / 'map.bin'} is 100.0 MiB; at most 64.0 MiB is accepted"


def test_a_stub_that_would_be_a_bomb_is_refused_at_build(stub):
    (stub / "map.bin").write_bytes(bytes(10 * MiB))
    with pytest.raises(SpecError, match=rf"^{stub}: the payload unpacks to 10.0 MiB; a payload of .* may unpack to "
                                        r"at most 2.0 MiB"):
        build(stub)


def test_a_climbing_version_is_a_manifest_error_at_its_position(stub):
    (stub / "firmware.yaml").write_text("name: blink\nversion: ../../../x\nentry: blink:setup\n")
    with pytest.raises(SpecError) as exc:
        build(stub)
    assert str(exc.value) == (f"{stub / 'firmware.yaml'}:2:10: version: '../../../x' contains '/'; it is part of "
                              "the image's file name")


hil = partial(run_hil, "--no-color")


def test_hil_firmware_build_writes_nothing_outside_for_a_climbing_version(stub, tmp_path):
    (stub / "firmware.yaml").write_text("name: blink\nversion: ../escape\nentry: blink:setup\n")
    work = tmp_path / "work"
    work.mkdir()
    r = hil("firmware", "build", str(stub), cwd=work)
    assert r.returncode == 2
    assert r.stderr.startswith(f"error: {stub / 'firmware.yaml'}:2:10: version: '../escape' contains '/'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blink", "work"] and list(work.iterdir()) == []


def test_hil_firmware_info_refuses_a_device_at_once(tmp_path):
    r = hil("firmware", "info", "/dev/zero", cwd=tmp_path)
    assert (r.returncode, r.stderr) == (2, "error: firmware image /dev/zero is not a regular file (a character "
                                           "device)\n")
