"""FIT CRC-16 (CRC-16/ARC: the polynomial 0xA001 reflected, initial value 0, no final XOR), by
crcmod-plus's C extension.

The FIT SDK computes the checksum one nibble at a time; doing that in Python costs ~1 us per byte,
more than decoding the file. crcmod's table-driven C loop, measured against the NumPy blocks this
module used before: 7.6 against 102.7 us for a 2.4 KB monitoring file, 0.30 against 0.80 ms for
100 KB, 14.7 against 18.6 ms for 5 MB.
"""

from __future__ import annotations

import crcmod.predefined

# crc16(data, crc=0): the CRC of `data` continuing from register value `crc` (bytes or memoryview)
crc16 = crcmod.predefined.mkPredefinedCrcFun("crc-16")
