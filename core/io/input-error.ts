// An input file that cannot be read as what it claims to be (a malformed phy table, params.py):
// bad input, reported with the file named and exit code 2, never a stack (docs/architecture.md §10).

export class InputFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputFileError';
  }
}

/** The InputFileError in `e` or its causes, if any. */
export function findInputFileError(e: unknown): InputFileError | undefined {
  let cur: unknown = e;
  for (let i = 0; i < 8 && cur; i++) {
    if (cur instanceof InputFileError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}
