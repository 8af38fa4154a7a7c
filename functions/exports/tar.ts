// A minimal ustar writer: the headers only (the bodies are streamed by the caller). No maintained tar
// library fits here: `tar-stream` and `tar` are built on Node streams and buffer whole entries, while the
// export streams each member from object storage into an S3 multipart upload with a size known up front.
// The format is small and fixed (POSIX.1-1988 ustar): a 512-byte header per member, the body padded to
// 512 bytes, two zero blocks at the end. Tests read the archives with GNU tar.

export const BLOCK = 512;

const encoder = new TextEncoder();

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length > length) throw new RangeError(`tar field too long: ${value}`);
  block.set(bytes, offset);
}

/** An octal number field: digits, zero-padded, then NUL. */
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new RangeError(`tar number too large: ${value}`);
  writeString(block, offset, length, `${digits.padStart(length - 1, "0")}\0`);
}

/** The header block of a regular file `name` (≤ 100 bytes) of `size` bytes, modified at `mtime`. */
export function tarHeader(name: string, size: number, mtime: Date): Uint8Array {
  const block = new Uint8Array(BLOCK);
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, 0o644);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.floor(mtime.getTime() / 1000));
  block.fill(0x20, 148, 156); // the checksum field counts as spaces while summing
  block[156] = 0x30; // '0': regular file
  writeString(block, 257, 6, "ustar\0");
  writeString(block, 263, 2, "00");
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return block;
}

/** Zero bytes that pad a body of `size` bytes to a whole block. */
export function tarPadding(size: number): Uint8Array {
  return new Uint8Array((BLOCK - (size % BLOCK)) % BLOCK);
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Uint8Array {
  return new Uint8Array(2 * BLOCK);
}
