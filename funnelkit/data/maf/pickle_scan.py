"""Walk a pickle's opcodes before it is unpickled, so that no opcode can ask for more than the file has.

Python's unpickler trusts the sizes a pickle declares: a ``BYTEARRAY8`` opcode that promises
2 GB gets 2 GB allocated before its bytes are read, a ``FRAME`` that promises more than the file
holds is read with a buffer of the promised size, and a memo slot numbered 2**31 grows the memo
table to that many entries. :func:`scan_pickle` reads only the opcodes and their length fields
(it seeks past payloads, so it copies nothing) and refuses, before any unpickling:

* a byte that is no pickle opcode, or a file that ends before ``STOP``;
* a counted payload (strings, bytes, bytearrays, long integers) or a frame longer than what is
  left of the file;
* a memo slot number larger than the number of opcodes read so far (a pickler numbers its memo
  slots from 0 upwards, one per stored object);
* opcodes that need something outside the file: persistent ids, out-of-band buffers and the
  copyreg extension registry.

The opcode table and argument layouts are those of :mod:`pickletools`, the same ones
:mod:`pickle` reads, so the walk sees the same opcodes the unpickler will.
"""

import pickletools
import struct

_BY_CODE = {op.code.encode("latin1"): op for op in pickletools.opcodes}
_LENGTH_FIELDS = {  # pickletools' code for "the length comes first": (struct format, bytes)
    pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1),
    pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
    pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4),
    pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8),
}
_MEMO_PUTS = {"PUT": None, "BINPUT": "<B", "LONG_BINPUT": "<I"}
_REFUSED = {"PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER", "EXT1", "EXT2", "EXT4"}
_TWO_LINES = {"GLOBAL", "INST"}


class PickleScanError(ValueError):
    """The pickle declares more than its file holds, or is not a pickle."""


def scan_pickle(file, size):
    """Walk the opcodes of the pickle in the open binary ``file`` (``size`` bytes long).

    Returns the number of opcodes up to ``STOP`` and leaves ``file`` at offset 0. Raises
    :class:`PickleScanError` for the cases listed in the module text; the message is short.
    """
    file.seek(0)
    count = 0
    while True:
        where = file.tell()
        code = file.read(1)
        if not code:
            raise PickleScanError(f"the pickle ends at byte {where} without its STOP opcode "
                                  "(truncated)")
        op = _BY_CODE.get(code)
        if op is None:
            raise PickleScanError(f"byte 0x{code[0]:02x} at offset {where} is not a pickle opcode")
        if op.name in _REFUSED:
            raise PickleScanError(f"opcode {op.name} at offset {where} needs data from outside "
                                  "the file")
        count += 1
        if op.name == "STOP":
            file.seek(0)
            return count
        _skip_argument(file, op, where, size, count)


def _read_exact(file, n, op, where):
    data = file.read(n)
    if len(data) != n:
        raise PickleScanError(f"opcode {op.name} at offset {where} is cut off by the end of "
                              "the file (truncated)")
    return data


def _read_line(file, op, where):
    line = file.readline()
    if not line.endswith(b"\n"):
        raise PickleScanError(f"opcode {op.name} at offset {where} has no end of line "
                              "(truncated)")
    return line


def _skip_argument(file, op, where, size, count):
    arg = op.arg
    if arg is None:
        return
    if arg.n == pickletools.UP_TO_NEWLINE:
        for _ in range(2 if op.name in _TWO_LINES else 1):
            line = _read_line(file, op, where)
        if op.name == "PUT":
            _check_memo_slot(line.strip(), op, where, count)
        return
    if arg.n >= 0:  # a fixed-size argument
        data = _read_exact(file, arg.n, op, where)
        if op.name == "FRAME":
            _check_length(struct.unpack("<Q", data)[0], file, size, op, where)
        elif op.name in _MEMO_PUTS:
            _check_memo_slot(struct.unpack(_MEMO_PUTS[op.name], data)[0], op, where, count)
        return
    fmt, width = _LENGTH_FIELDS[arg.n]
    length = struct.unpack(fmt, _read_exact(file, width, op, where))[0]
    _check_length(length, file, size, op, where)
    file.seek(length, 1)


def _check_length(length, file, size, op, where):
    left = size - file.tell()
    if length < 0 or length > left:
        raise PickleScanError(f"opcode {op.name} at offset {where} declares {length} bytes, "
                              f"but only {left} bytes of the {size}-byte file follow it")


def _check_memo_slot(slot, op, where, count):
    try:
        slot = int(slot)
    except ValueError:
        raise PickleScanError(f"opcode {op.name} at offset {where} has no slot number") from None
    if not 0 <= slot <= count:
        raise PickleScanError(f"opcode {op.name} at offset {where} stores into memo slot "
                              f"{slot}, beyond the {count} opcodes read so far")
