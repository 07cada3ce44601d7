# PyTorch peer of mtm-flow's NDT1 (docs/method.md §4.1) for the training-throughput benchmark:
# the same model, loss, masking and optimiser as plugins/ndt1, timed on the same CPU.
# Run by bench/torch-peer.ts with bench/.venv's python (bench/setup-peer.sh: pip's torch) or Debian's
# /usr/bin/python3 with python3-torch; prints ONE JSON line.
#
# Attention: --attention manual (default) writes it by hand (one fused q/k/v nn.Linear, torch.matmul,
# softmax), the same op sequence as the tfjs side's plain path (core/tensor/layers.ts); --attention
# sdpa uses F.scaled_dot_product_attention (torch >= 2.0: a fused CPU kernel, forward and backward),
# PyTorch's fastest eager attention. The benchmark runs both and keeps the faster.
import argparse
import json
import math
import os
import re
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

N_PROMPTS = 4  # one learned prompt per MtM mode (neuron, causal, inter-region, intra-region), as plugins/ndt1


class Attention(nn.Module):
    def __init__(self, d, heads, attn_dropout, sdpa=False):
        super().__init__()
        self.sdpa = sdpa
        if d % heads != 0:
            raise SystemExit(f"--d {d} is not divisible by --heads {heads}")
        self.heads = heads
        self.head_dim = d // heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.attn_dropout = attn_dropout

    def forward(self, x):
        b, s, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=-1)

        def heads(t):
            return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

        if self.sdpa:
            p = self.attn_dropout if self.training else 0.0
            ctx = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), dropout_p=p)
            return self.out(ctx.transpose(1, 2).reshape(b, s, d))
        scores = torch.matmul(heads(q) * (1.0 / math.sqrt(self.head_dim)), heads(k).transpose(-2, -1))
        probs = F.dropout(torch.softmax(scores, dim=-1), self.attn_dropout, self.training)
        ctx = torch.matmul(probs, heads(v)).transpose(1, 2).reshape(b, s, d)
        return self.out(ctx)


class EncoderLayer(nn.Module):
    """Pre-LayerNorm: x + drop(attn(LN(x))), then x + drop(fc2(drop(gelu(fc1(LN(x))))))."""

    def __init__(self, d, heads, mlp, dropout, attn_dropout, sdpa=False):
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = Attention(d, heads, attn_dropout, sdpa)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, mlp)
        self.fc2 = nn.Linear(mlp, d)
        self.p = dropout

    def forward(self, x):
        x = x + F.dropout(self.attn(self.ln1(x)), self.p, self.training)
        h = F.dropout(F.gelu(self.fc1(self.ln2(x))), self.p, self.training)
        return x + F.dropout(self.fc2(h), self.p, self.training)


class Ndt1(nn.Module):
    def __init__(self, n, bins, d, layers, heads, mlp, dropout, attn_dropout, sdpa=False):
        super().__init__()
        self.in1 = nn.Linear(n, 2 * n)
        self.in2 = nn.Linear(2 * n, d)
        self.position = nn.Parameter(torch.randn(bins, d) * 0.02)
        self.prompts = nn.Parameter(torch.randn(N_PROMPTS, d) * 0.02)
        self.embed_dropout = dropout
        self.layers = nn.ModuleList(EncoderLayer(d, heads, mlp, dropout, attn_dropout, sdpa) for _ in range(layers))
        self.final_norm = nn.LayerNorm(d)
        self.readout = nn.Linear(d, n)

    def forward(self, x, prompt=0):
        b, t, _ = x.shape
        tokens = self.in2(F.softsign(self.in1(x))) + self.position[:t]
        # The prompt token is prepended after the position embedding: it carries no position.
        pre = self.prompts[prompt].reshape(1, 1, -1).expand(b, 1, -1)
        h = F.dropout(torch.cat([pre, tokens], dim=1), self.embed_dropout, self.training)
        for layer in self.layers:
            h = layer(h)
        return self.readout(self.final_norm(h)[:, 1:])


def poisson_nll(log_rates, target, loss_mask):
    per_entry = torch.exp(log_rates) - target * log_rates
    return (per_entry * loss_mask).sum() / loss_mask.sum().clamp(min=1.0)


def temporal_mask(batch, bins, neurons, ratio, gen):
    """docs/method.md §3.1 'temporal': each bin masked with p = ratio, all neurons at that bin."""
    bins_masked = (torch.rand(batch, bins, 1, generator=gen) < ratio).float()
    return bins_masked.expand(batch, bins, neurons).contiguous()


def blas_summary():
    """Build-time BLAS from torch's config, and the BLAS library actually mapped into this process
    (Debian's alternatives decide the latter: reference BLAS is ~15x slower than OpenBLAS)."""
    cfg = torch.__config__.show()
    build = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    line = next((ln.strip() for ln in cfg.splitlines() if "BLAS" in ln), "")
    loaded = set()
    try:
        with open("/proc/self/maps") as f:
            for ln in f:
                path = ln.split()[-1] if ln.split() else ""
                name = os.path.basename(path)
                if re.search(r"blas|lapack|mkl", name, re.I):
                    loaded.add(os.path.realpath(path))
    except OSError:
        pass
    return {
        "buildBlas": build.group(1) if build else None,
        "configLine": line[:300],
        "loadedLibraries": sorted(loaded),
        "openblas": any("openblas" in p for p in loaded),
    }


def gemm_rate(n, min_seconds=1.0):
    """Best GFLOP/s of C = A B for n x n float32 (2 n^3 flops each), repeated for min_seconds."""
    x = torch.randn(n, n)
    y = torch.randn(n, n)
    out = torch.empty(n, n)
    torch.matmul(x, y, out=out)
    best = float("inf")
    t_end = time.perf_counter() + min_seconds
    reps = 0
    while reps < 3 or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        torch.matmul(x, y, out=out)
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return {"gemmGflops": round(2.0 * n ** 3 / best / 1e9, 1), "n": n, "reps": reps, "threads": torch.get_num_threads(),
            "torchVersion": torch.__version__, "python": sys.executable, "parallel": parallel_summary()}


def parallel_summary():
    """torch's threading backend and the CPU capability its kernels dispatch to (AVX2 / AVX512)."""
    info = torch.__config__.parallel_info()
    keep = [ln.strip() for ln in info.splitlines() if re.match(r"\s*(ATen parallel backend|MKL|MKLDNN|OpenMP|std::thread)", ln)]
    cap = None
    try:
        cap = torch.backends.cpu.get_cpu_capability()
    except AttributeError:
        pass
    return {"cpuCapability": cap, "mkldnn": torch.backends.mkldnn.is_available(), "info": keep}


def main():
    ap = argparse.ArgumentParser(description="Train NDT1 in PyTorch on Poisson counts; print one JSON line of throughput.")
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--mlp", type=int, default=512)
    ap.add_argument("--neurons", type=int, default=300)
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (BLAS threads come from OPENBLAS_NUM_THREADS)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--attn-dropout", type=float, default=0.0)
    ap.add_argument("--mask-ratio", type=float, default=0.3)
    ap.add_argument("--rate", type=float, default=0.3, help="Poisson mean count per bin of the synthetic data")
    ap.add_argument("--attention", choices=("manual", "sdpa"), default="manual")
    ap.add_argument("--gemm", type=int, default=0, help="instead of training: time torch.matmul of two N x N float32 matrices, print GFLOP/s")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    a = ap.parse_args()
    for name in ("d", "layers", "heads", "mlp", "neurons", "bins", "batch", "steps", "threads"):
        if getattr(a, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(a, name)}")

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.gemm > 0:
        print(json.dumps(gemm_rate(a.gemm)))
        return
    gen = torch.Generator().manual_seed(a.seed + 1)

    sdpa = a.attention == "sdpa"
    if sdpa and not hasattr(F, "scaled_dot_product_attention"):
        raise SystemExit(f"--attention sdpa needs torch >= 2.0 (this is {torch.__version__})")
    model = Ndt1(a.neurons, a.bins, a.d, a.layers, a.heads, a.mlp, a.dropout, a.attn_dropout, sdpa)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)
    params = sum(p.numel() for p in model.parameters())

    # A few fixed batches drawn up front, so data generation is never inside the timed loop.
    n_batches = 4
    data = []
    for _ in range(n_batches):
        counts = torch.poisson(torch.full((a.batch, a.bins, a.neurons), a.rate), generator=gen)
        mask = temporal_mask(a.batch, a.bins, a.neurons, a.mask_ratio, gen)
        data.append((counts * (1.0 - mask), counts, mask))

    losses = []

    def step(i):
        inp, target, mask = data[i % n_batches]
        opt.zero_grad(set_to_none=True)
        loss = poisson_nll(model(inp), target, mask)
        loss.backward()
        opt.step()
        losses.append(loss.item())

    for i in range(a.warmup):
        step(i)
    t0 = time.perf_counter()
    c0 = time.process_time()
    for i in range(a.steps):
        step(a.warmup + i)
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0

    ms_per_step = 1000.0 * elapsed / a.steps
    print(json.dumps({
        "trialsPerS": round(a.batch * a.steps / elapsed, 3),
        "msPerStep": round(ms_per_step, 2),
        # CPU time of the whole process per step: with one thread, the work itself, unaffected
        # by other processes sharing the cores.
        "cpuMsPerStep": round(1000.0 * cpu / a.steps, 2),
        "params": params,
        "torchVersion": torch.__version__,
        "python": sys.executable,
        "parallel": parallel_summary(),
        "blas": blas_summary(),
        "threads": {
            "torch": torch.get_num_threads(),
            "interop": torch.get_num_interop_threads(),
            "openblasEnv": os.environ.get("OPENBLAS_NUM_THREADS"),
            "ompEnv": os.environ.get("OMP_NUM_THREADS"),
        },
        "config": {
            "d": a.d, "layers": a.layers, "heads": a.heads, "mlp": a.mlp, "neurons": a.neurons,
            "bins": a.bins, "batch": a.batch, "steps": a.steps, "warmup": a.warmup, "seed": a.seed,
            "dropout": a.dropout, "attnDropout": a.attn_dropout, "maskRatio": a.mask_ratio,
            "lr": a.lr, "weightDecay": a.weight_decay,
            "attention": "F.scaled_dot_product_attention" if sdpa else "hand-written: fused qkv nn.Linear + torch.matmul + softmax",
            "optimizer": "AdamW",
        },
        "wallS": round(elapsed, 3),
        "lossFirst": round(losses[0], 5) if losses else None,
        "lossLast": round(losses[-1], 5) if losses else None,
    }))


if __name__ == "__main__":
    main()
