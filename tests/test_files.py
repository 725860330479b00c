"""Spec-named files are read only when they are regular files within their limit."""

import os
import threading

import pytest

from hil.files import FileRefused, read_bytes, read_text


def test_a_regular_file_within_its_limit_is_read(tmp_path):
    p = tmp_path / "a.dbc"
    p.write_text("VERSION \"\"\n")
    assert read_text(p, 100, "DBC file") == "VERSION \"\"\n"


def test_missing_folder_fifo_device_and_oversized_files_are_refused_naming_the_file(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    cases = {tmp_path / "nope": "does not exist", tmp_path: "a folder", fifo: "a FIFO",
             "/dev/zero": "a character device", big: "101 bytes; at most 100 bytes"}
    for path, why in cases.items():
        with pytest.raises(FileRefused, match=why) as exc:
            read_bytes(path, 100, "DBC file")
        assert str(path) in str(exc.value) and "DBC file" in str(exc.value)


def test_a_fifo_is_refused_at_once_even_with_a_writer_waiting(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = threading.Event()

    def attempt():
        with pytest.raises(FileRefused):
            read_bytes(fifo, 100)
        done.set()

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    assert done.wait(10), "reading a FIFO blocked"


def test_non_utf8_text_names_the_offset(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"ab\xffcd")
    with pytest.raises(FileRefused, match="byte 2"):
        read_text(p, 100)
