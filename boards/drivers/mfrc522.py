"""MFRC522 RFID reader over SPI: ISO/IEC 14443-3 type A card UIDs.

Poll-based, no IRQ pin. Each poll():
  WUPA (7-bit short frame; wakes cards in IDLE and HALT) -> ATQA,
  per cascade level (SEL 0x93 / 0x95 / 0x97): ANTICOLLISION (NVB 0x20) ->
  4 UID bytes + BCC, SELECT (NVB 0x70 + those 5 bytes + CRC_A) -> SAK;
  SAK bit 0x04 = UID not complete: the level's first byte is the cascade
  tag 0x88, drop it and go one level up (4-, 7- and 10-byte UIDs),
  then HLTA, so the card sleeps in HALT until the next poll's WUPA.
A card that stays on the reader therefore answers every poll; it makes one
event until it has been missing for `gone_polls` polls in a row.

The idTag is the UID as upper-case hex (8, 14 or 20 characters: fits
OCPP CiString20). Several cards at once (collision) read as no card.

SPI (datasheet 8.1.2): address byte = reg << 1, bit 7 set to read;
a burst repeats the address. CRC_A is computed here (ISO/IEC 14443-3
Annex B: CRC-16, reflected poly 0x8408, preset 0x6363).
"""
from evse.compat import const, hexlify

# Registers
_COMMAND = const(0x01)
_COM_IRQ = const(0x04)
_ERROR = const(0x06)
_FIFO_DATA = const(0x09)
_FIFO_LEVEL = const(0x0A)
_BIT_FRAMING = const(0x0D)
_MODE = const(0x11)
_TX_CONTROL = const(0x14)
_TX_ASK = const(0x15)
_T_MODE = const(0x2A)
_T_PRESCALER = const(0x2B)
_T_RELOAD_H = const(0x2C)
_T_RELOAD_L = const(0x2D)
VERSION = const(0x37)
# Commands
_IDLE = const(0x00)
_TRANSCEIVE = const(0x0C)
_SOFT_RESET = const(0x0F)
_POWER_DOWN = const(0x10)  # CommandReg bit: set while the chip wakes up
# Bits
_START_SEND = const(0x80)
_RX_IDLE_IRQ = const(0x30)  # RxIRq | IdleIRq
_TIMER_IRQ = const(0x01)
_ERRORS = const(0x1B)  # BufferOvfl | CollErr | ParityErr | ProtocolErr
# ISO/IEC 14443-3 type A
WUPA = const(0x52)
HLTA = const(0x50)
CASCADE_TAG = const(0x88)
_SAK_INCOMPLETE = const(0x04)
_SEL = (0x93, 0x95, 0x97)
_WAIT = const(1000)  # IRQ register reads before giving up (the chip's timer fires first)


def crc_a(data):
    """ISO/IEC 14443-3 CRC_A of `data` as two bytes, low byte first."""
    crc = 0x6363
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return bytes((crc & 0xFF, crc >> 8))


def build(parts, cal=None):
    """The reader on pin-table entries "rfid_spi", "rfid_cs", optional "rfid_rst"."""
    rst = parts.out("rfid_rst", 1) if parts.has("rfid_rst") else None
    return Mfrc522(parts.spi("rfid_spi", 1000000), parts.out("rfid_cs", 1), rst)


class Mfrc522:
    """`spi`: write()/write_readinto() (mode 0, <= 10 MHz); `cs`: the NSS pin
    (value(), active low); `rst`: optional NRSTPD pin (high = running)."""

    def __init__(self, spi, cs, rst=None, gone_polls=2):
        self.spi = spi
        self.cs = cs
        self.rst = rst
        self.gone_polls = gone_polls
        self.present = None  # idTag of the card on the reader
        self._miss = 0
        self._b2 = bytearray(2)
        self._r2 = bytearray(2)
        cs.value(1)
        if rst is not None:
            rst.value(1)
        self.version = 0

    # -- SPI -------------------------------------------------------------
    def _w(self, reg, val):
        b = self._b2
        b[0] = (reg << 1) & 0x7E
        b[1] = val
        self.cs.value(0)
        self.spi.write(b)
        self.cs.value(1)

    def _r(self, reg):
        b = self._b2
        b[0] = 0x80 | ((reg << 1) & 0x7E)
        b[1] = 0
        self.cs.value(0)
        self.spi.write_readinto(b, self._r2)
        self.cs.value(1)
        return self._r2[1]

    def _write_fifo(self, data):
        buf = bytearray(len(data) + 1)
        buf[0] = (_FIFO_DATA << 1) & 0x7E
        buf[1:] = data
        self.cs.value(0)
        self.spi.write(buf)
        self.cs.value(1)

    def _read_fifo(self, n):
        a = 0x80 | ((_FIFO_DATA << 1) & 0x7E)
        out = bytearray(n + 1)
        tx = bytearray(n + 1)
        for i in range(n):
            tx[i] = a
        self.cs.value(0)
        self.spi.write_readinto(tx, out)
        self.cs.value(1)
        return bytes(out[1:])

    # -- chip ------------------------------------------------------------
    def init(self):
        """Reset and configure; returns VersionReg (0x91/0x92 for a genuine
        MFRC522, 0x00 or 0xFF when nothing answers)."""
        self._w(_COMMAND, _SOFT_RESET)
        for _ in range(_WAIT):
            if not self._r(_COMMAND) & _POWER_DOWN:
                break
        # Timer: TAuto, f = 13.56 MHz / (2 * 0xA9 + 1) = 40 kHz; 200 ticks =
        # 5 ms, ample for a PICC answer (frame delay ~0.1 ms).
        self._w(_T_MODE, 0x80)
        self._w(_T_PRESCALER, 0xA9)
        self._w(_T_RELOAD_H, 0x00)
        self._w(_T_RELOAD_L, 0xC8)
        self._w(_TX_ASK, 0x40)  # 100 % ASK modulation (type A)
        self._w(_MODE, 0x3D)  # CRC preset 0x6363
        self._w(_TX_CONTROL, self._r(_TX_CONTROL) | 0x03)  # antenna on
        self.version = self._r(VERSION)
        return self.version

    def ok(self):
        return self.version not in (0x00, 0xFF)

    def transceive(self, data, bits=0):
        """Send `data` (last byte `bits` bits, 0 = 8); the answer or None."""
        self._w(_COMMAND, _IDLE)
        self._w(_COM_IRQ, 0x7F)  # clear all IRQ bits (Set1 = 0)
        self._w(_FIFO_LEVEL, 0x80)  # flush
        self._write_fifo(data)
        self._w(_BIT_FRAMING, bits)
        self._w(_COMMAND, _TRANSCEIVE)
        self._w(_BIT_FRAMING, _START_SEND | bits)
        irq = 0
        for _ in range(_WAIT):
            irq = self._r(_COM_IRQ)
            if irq & (_RX_IDLE_IRQ | _TIMER_IRQ):
                break
        self._w(_BIT_FRAMING, bits)
        self._w(_COMMAND, _IDLE)
        if not irq & _RX_IDLE_IRQ or self._r(_ERROR) & _ERRORS:
            return None
        return self._read_fifo(self._r(_FIFO_LEVEL) & 0x7F)

    # -- ISO/IEC 14443-3 -------------------------------------------------
    def read_uid(self):
        """The UID of the card in the field (bytes), or None."""
        atqa = self.transceive(bytes((WUPA,)), 7)
        if atqa is None or len(atqa) != 2:
            return None
        uid = b""
        for sel in _SEL:
            r = self.transceive(bytes((sel, 0x20)))
            if r is None or len(r) != 5 or r[0] ^ r[1] ^ r[2] ^ r[3] != r[4]:
                return None
            frame = bytes((sel, 0x70)) + r
            sak = self.transceive(frame + crc_a(frame))
            if sak is None or len(sak) != 3 or crc_a(sak[:1]) != sak[1:]:
                return None
            if not sak[0] & _SAK_INCOMPLETE:
                uid += r[:4]
                halt = bytes((HLTA, 0))
                self.transceive(halt + crc_a(halt))  # no answer expected
                return uid
            if r[0] != CASCADE_TAG:
                return None
            uid += r[1:4]
        return None

    def poll(self):
        """One presence check; the idTag of a newly presented card, else None."""
        uid = self.read_uid()
        if uid is None:
            if self.present is not None:
                self._miss += 1
                if self._miss >= self.gone_polls:
                    self.present = None
            return None
        self._miss = 0
        tag = hexlify(uid).upper()
        if tag == self.present:
            return None
        self.present = tag
        return tag
