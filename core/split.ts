// Which part of a session's trials a trial belongs to. A leaf type: the contract types above it
// (payloads.ts, masking/types.ts) both use it without importing each other in a circle.
export type Split = 'train' | 'val' | 'test';
