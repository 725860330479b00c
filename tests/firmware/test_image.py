"""Image format: build from a stub folder, verify, and refuse every kind of damage with a reason."""

from __future__ import annotations

import struct

import pytest

from hil.errors import SpecError
from hil.firmware import image
from hil.firmware.build import build


def test_build_is_deterministic_and_round_trips(stub):
    one, two = build(stub).to_bytes(), build(stub).to_bytes()
    assert one == two
    img = image.parse(one + b"\xff" * 100)  # trailing erased flash is ignored
    assert (img.name, img.version) == ("blink", "1.0.3")
    assert set(img.files()) == {"blink.py", "manifest.json"}
    assert image.image_length(one) == len(one)


def test_manifest_errors_point_at_the_line(stub):
    (stub / "firmware.yaml").write_text("name: blink\nversion: 1.0.3\nentry: nothere:setup\ntick_hz: 0\n")
    with pytest.raises(SpecError) as err:
        build(stub)
    text = str(err.value)
    assert "firmware.yaml:4:10: tick_hz:" in text


def test_missing_entry_module_is_named(stub):
    (stub / "firmware.yaml").write_text("name: blink\nversion: 1.0.3\nentry: nothere:setup\n")
    with pytest.raises(SpecError, match=r"firmware.yaml:3:8: entry: module 'nothere' needs nothere.py"):
        build(stub)


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b"\xff" * len(b), "no image: flash is erased"),
    (lambda b: b"XILF" + b[4:], "bad magic: expected b'HILF', got b'XILF'"),
    (lambda b: b[:40] + b"2" + b[41:], "header CRC32 mismatch"),
    (lambda b: b[:-1] + bytes([b[-1] ^ 0x01]), "payload CRC32 mismatch: header says 0x"),
    (lambda b: b[:-10], "truncated payload: header says"),
    (lambda b: b[:20], "truncated: 20 bytes, a header needs 84"),
])
def test_damage_is_refused_with_the_reason(stub, damage, reason):
    with pytest.raises(image.ImageError, match=reason.replace("(", r"\(")):
        image.parse(damage(build(stub).to_bytes()))


def test_other_format_version_is_refused(stub):
    raw = bytearray(build(stub).to_bytes())
    struct.pack_into("<H", raw, 4, 7)
    raw[80:84] = struct.pack("<I", __import__("zlib").crc32(bytes(raw[:80])))
    with pytest.raises(image.ImageError, match="expected version 1 with an 84-byte header, got version 7"):
        image.parse(bytes(raw))


def test_a_name_or_version_too_long_for_the_header_is_a_manifest_error(stub):
    (stub / "firmware.yaml").write_text("name: " + "b" * 40 + "\nversion: 1.0.3-rc.ünïcödé-ßüffïx-lönger\nentry: blink:setup\n")
    with pytest.raises(SpecError) as err:
        build(stub)
    assert str(err.value).splitlines() == [
        f"{stub / 'firmware.yaml'}:1:7: name: at most 32 bytes of UTF-8 fit the image header, got 40",
        f"{stub / 'firmware.yaml'}:2:10: version: at most 32 bytes of UTF-8 fit the image header, got 38"]


def test_a_built_image_in_the_folder_is_not_packed_again(stub):
    first = build(stub)
    (stub / "blink-1.0.3.hilfw").write_bytes(first.to_bytes())  # hil firmware build run inside the folder
    assert build(stub).to_bytes() == first.to_bytes()


def test_a_payload_that_is_no_archive_is_an_image_error():
    with pytest.raises(image.ImageError, match="the payload is not a firmware archive"):
        image.Image("x", "1", b"not a zip").files()


def test_name_too_long_is_refused():
    with pytest.raises(image.ImageError, match="image name must be 1..32 bytes"):
        image.Image("x" * 33, "1", b"").to_bytes()
