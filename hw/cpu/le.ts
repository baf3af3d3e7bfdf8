/**
 * Little-endian coding of a 1, 2, 4 or 8-byte value in a DataView's first bytes, as CPU loads
 * and stores, DMA ports and PIO registers move them (8 bytes as a Number, exact below 2^53).
 *
 * Free-standing helpers used by the memory system and by device models alike, so they live
 * apart from any one of them.
 */

export function decodeLe(v: DataView, size: number): number {
  switch (size) {
    case 1:
      return v.getUint8(0);
    case 2:
      return v.getUint16(0, true);
    case 4:
      return v.getUint32(0, true);
    default:
      return v.getUint32(0, true) + v.getUint32(4, true) * 0x100000000;
  }
}

export function encodeLe(v: DataView, size: number, value: number): void {
  switch (size) {
    case 1:
      v.setUint8(0, value & 0xff);
      break;
    case 2:
      v.setUint16(0, value & 0xffff, true);
      break;
    case 4:
      v.setUint32(0, value >>> 0, true);
      break;
    default:
      v.setUint32(0, value >>> 0, true);
      v.setUint32(4, Math.floor(value / 0x100000000) >>> 0, true);
  }
}
