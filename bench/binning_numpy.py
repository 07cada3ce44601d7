"""numpy peer of bench/binning.ts: the same trial-aligned spike binning, vectorised with
searchsorted + bincount (the usual numpy way), timed as best of N runs excluding file I/O.

Usage: python3 bench/binning_numpy.py <dir> <nNeurons> <windowStart> <windowEnd> <binSizeMs> <repeats>
<dir> holds times.npy (f8, sorted), clusters.npy (i4, neuron index per spike) and align.npy (f8);
the counts of the last run are written to <dir>/counts_numpy.npy as int32 [trial, bin, neuron]
and one JSON line with the timings is printed.
"""
import json
import sys
import time

import numpy as np


def bin_spikes(times, clusters, align, n_neurons, w0, w1, bin_s):
    n_bins = int(round((w1 - w0) / bin_s))
    n_trials = len(align)
    starts = align + w0
    ends = starts + n_bins * bin_s
    # Spikes of each trial window (windows may overlap: a spike can belong to several trials).
    i0 = np.searchsorted(times, starts, side="left")
    i1 = np.searchsorted(times, ends, side="left")
    lens = i1 - i0
    total = int(lens.sum())
    offsets = np.cumsum(lens) - lens
    idx = np.repeat(i0 - offsets, lens) + np.arange(total)
    trial = np.repeat(np.arange(n_trials), lens)
    b = np.floor((times[idx] - starts[trial]) / bin_s).astype(np.int64)
    np.clip(b, 0, n_bins - 1, out=b)
    flat = (trial * n_bins + b) * n_neurons + clusters[idx]
    counts = np.bincount(flat, minlength=n_trials * n_bins * n_neurons)
    return counts.reshape(n_trials, n_bins, n_neurons)


def main():
    d, n_neurons, w0, w1, bin_ms, repeats = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
    times = np.load(f"{d}/times.npy")
    clusters = np.load(f"{d}/clusters.npy").astype(np.int64)
    align = np.load(f"{d}/align.npy")
    runs = []
    counts = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        counts = bin_spikes(times, clusters, align, n_neurons, w0, w1, bin_ms / 1000.0)
        runs.append(time.perf_counter() - t0)
    np.save(f"{d}/counts_numpy.npy", counts.astype(np.int32))
    print(json.dumps({"runsS": runs, "bestS": min(runs), "numpy": np.__version__, "python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
