// The ONE client (IBL's Open Neurophysiology Environment) in one import (docs/method.md §2.1).
export { OneClient, OneDownloadError, type DownloadCallOptions, type DownloadReport, type DownloadRow, type SearchFilters } from './one.ts';
export { AlyxClient, buildQuery, type Query } from './alyx.ts';
export { resolveOneConfig, describeConfig, hostKey, isResolvedConfig, PUBLIC_BASE_URL, type OneConfig, type OneMode, type OneOptions } from './config.ts';
export { downloadAll, downloadFile, md5File, type DownloadItem, type DownloadOptions, type DownloadResult } from './download.ts';
export { loadCacheTables, mergeIntoCacheTables, scanSessionFolders, writeCacheTables, type CacheDataset, type CacheTables } from './cache-tables.ts';
export { spikeSessionDatasets, defaultRevisions } from './spike-datasets.ts';
export { datasetPathFromUrl, parseSessionPath, sessionFolder, sessionRelPath, splitDatasetPath } from './alf-path.ts';
export type { DatasetRecord, InsertionRecord, SessionRecord } from './records.ts';
export { OneError, type OneErrorCode } from './errors.ts';
export { isUuid, uuidFromInt64Pair, int64PairFromUuid } from './uuid.ts';
