// Append-only .npy files for streamed predictions and counts (docs/method.md §1.3): rows
// are appended as they come, and the header's row count is rewritten in place after each flush,
// so the file is a valid .npy at every flush and nothing of the recording is held in memory.
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Fixed header size (magic + version + length + dict), a multiple of 64 as numpy aligns it. */
const HEADER_BYTES = 128;

export type GrowingDtype = '<f4' | '<i4';

/**
 * A 2-D (rows x cols) .npy written row block by row block. The header is reserved at a fixed
 * size with room for any row count, so updating the shape never moves the data.
 */
export class GrowingNpy {
  private readonly fd: number;
  private rowsWritten = 0;
  private rowsInHeader = -1;
  private closed = false;
  readonly rowBytes: number;

  constructor(
    readonly path: string,
    readonly dtype: GrowingDtype,
    readonly cols: number,
  ) {
    if (!Number.isInteger(cols) || cols < 1) throw new Error(`${path}: a streamed .npy needs at least one column, got ${cols}`);
    mkdirSync(dirname(path), { recursive: true });
    try {
      this.fd = openSync(path, 'w');
    } catch (e) {
      throw new Error(`${path}: cannot create (${(e as Error).message})`);
    }
    this.rowBytes = cols * 4;
    this.writeHeader();
  }

  get rows(): number {
    return this.rowsWritten;
  }

  private writeHeader(): void {
    const dict = `{'descr': '${this.dtype}', 'fortran_order': False, 'shape': (${this.rowsWritten}, ${this.cols}), }`;
    const room = HEADER_BYTES - 10;
    if (dict.length + 1 > room) throw new Error(`${this.path}: npy header too long for ${this.rowsWritten} x ${this.cols}`);
    const buf = Buffer.alloc(HEADER_BYTES, 0x20);
    buf.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    buf.writeUInt16LE(room, 8);
    buf.write(dict, 10, 'latin1');
    buf[HEADER_BYTES - 1] = 0x0a;
    writeSync(this.fd, buf, 0, HEADER_BYTES, 0);
    this.rowsInHeader = this.rowsWritten;
  }

  /** Appends whole rows (length a multiple of cols), in the file's dtype. */
  append(rows: Float32Array | Int32Array): void {
    if (this.closed) throw new Error(`${this.path}: append after close`);
    if ((this.dtype === '<f4') !== rows instanceof Float32Array) throw new Error(`${this.path}: rows of the wrong type for dtype ${this.dtype}`);
    if (rows.length % this.cols !== 0) throw new Error(`${this.path}: ${rows.length} values are not whole rows of ${this.cols}`);
    const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
    writeSync(this.fd, bytes, 0, bytes.length, HEADER_BYTES + this.rowsWritten * this.rowBytes);
    this.rowsWritten += rows.length / this.cols;
  }

  /** Makes the header count every row appended so far. */
  flush(): void {
    if (!this.closed && this.rowsInHeader !== this.rowsWritten) this.writeHeader();
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.closed = true;
  }
}
