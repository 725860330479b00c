"""Column decoding of DBC signals must give exactly what cantools gives frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from hil.analysis.signals import bit_positions, byte_column, frames_with_id, signal_column
from hil.errors import AnalysisError
from hil.canframe import FLAG_ERROR

from .conftest import make_frames


@pytest.mark.parametrize("message", ["Radar", "BrakeCmd", "Calib"])
def test_every_signal_decodes_like_cantools(db, message):
    msg = db.message(message)
    rng = np.random.default_rng(7)
    payloads = [bytes(rng.integers(0, 256, 8, dtype=np.uint8)) for _ in range(200)]
    frames = make_frames("b", [(i * 1000, msg.frame_id, p) for i, p in enumerate(payloads)])
    for sig in msg.signals:
        col = signal_column(frames, sig)
        expected = [msg.decode(p, decode_choices=False, scaling=True)[sig.name] for p in payloads]
        np.testing.assert_allclose(col.value, expected, rtol=0, atol=0, equal_nan=True,
                                   err_msg=f"{message}.{sig.name}")
        assert list(col.t_ns) == [i * 1000 for i in range(200)]


def test_raw_values_skip_scaling(db):
    msg, sig = db.signal("Radar", "Distance")
    frames = make_frames("b", [(0, msg.frame_id, (12345).to_bytes(2, "little") + bytes(6))])
    assert signal_column(frames, sig, raw=True).value.tolist() == [12345]
    assert signal_column(frames, sig).value.tolist() == pytest.approx([123.45])
    assert signal_column(frames, sig).unit == "m"


def test_frames_too_short_for_a_signal_are_left_out(db):
    msg, sig = db.signal("Radar", "Counter")  # in byte 7
    frames = make_frames("b", [(0, 0x100, bytes(8)), (1, 0x100, bytes(4)), (2, 0x100, bytes([0] * 7 + [9]))])
    col = signal_column(frames, sig)
    assert col.t_ns.tolist() == [0, 2]
    assert col.value.tolist() == [0, 9]
    assert byte_column(frames, 5).t_ns.tolist() == [0, 2]


def test_motorola_bit_positions_run_down_then_to_the_next_byte():
    assert bit_positions(7, 16, "big_endian") == list(range(8, 16)) + list(range(0, 8))
    assert bit_positions(3, 4, "little_endian") == [3, 4, 5, 6]


def test_error_frames_are_not_data(db):
    good = make_frames("b", [(0, 0x100, bytes(8))])
    bad = make_frames("b", [(5, 0x100, bytes(8))], flags=FLAG_ERROR)
    from .conftest import merge
    assert frames_with_id({"b": merge("b", good, bad)}, "b", 0x100).t_ns.tolist() == [0]


def test_unknown_names_say_what_exists(db):
    with pytest.raises(AnalysisError, match=r"no DBC message 'Radr'; known messages: BrakeCmd, Calib, Radar"):
        db.message("Radr")
    with pytest.raises(AnalysisError, match=r"message 'Radar' has no signal 'Dist'; it has: Distance, ClosingSpeed"):
        db.signal("Radar", "Dist")
    with pytest.raises(AnalysisError, match=r"bus 'x' is not in the recording; it has: b"):
        frames_with_id({"b": make_frames("b", [])}, "x", 1)


MUX_DBC = """VERSION ""
BS_:
BU_: RADAR
BO_ 1280 Objects: 8 RADAR
 SG_ Mux M : 0|8@1+ (1,0) [0|255] "" Vector__XXX
 SG_ Distance m0 : 8|16@1+ (0.01,0) [0|655] "m" Vector__XXX
 SG_ Speed m1 : 8|16@1+ (0.1,0) [0|6553] "km/h" Vector__XXX
"""


def test_a_multiplexed_signal_is_read_only_where_its_multiplexer_selects_it(tmp_path):
    """Radar object lists are multiplexed: Distance and Speed share bits 8..23. Reading Distance
    from a Speed frame gave 6000 m for 600 km/h."""
    from hil.analysis import Database

    (tmp_path / "mux.dbc").write_text(MUX_DBC)
    db = Database([tmp_path / "mux.dbc"])
    msg, distance = db.signal("Objects", "Distance")
    payloads = [bytes([0]) + (5000).to_bytes(2, "little"), bytes([1]) + (6000).to_bytes(2, "little"),
                bytes([0]) + (5100).to_bytes(2, "little")]
    frames = make_frames("b", [(i, msg.frame_id, p + bytes(5)) for i, p in enumerate(payloads)])
    col = signal_column(frames, distance, message=msg)
    assert (col.t_ns.tolist(), col.value.tolist()) == ([0, 2], pytest.approx([50.0, 51.0]))
    speed = signal_column(frames, msg.get_signal_by_name("Speed"), message=msg)
    assert (speed.t_ns.tolist(), speed.value.tolist()) == ([1], pytest.approx([600.0]))
    assert [msg.decode(p + bytes(5))["Distance"] for p in payloads[::2]] == pytest.approx([50.0, 51.0])
