"""``python -m hil.firmware CONFIG.json``: run one emulated MCU (see :mod:`hil.firmware.mcu`)."""

import sys

from hil.firmware.mcu import main

sys.exit(main(sys.argv[1:]))
