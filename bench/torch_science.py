# PyTorch science peer of mtm-flow: the same NDT1, masking, loss, optimiser, checkpoint choice and
# evaluation as mtm-flow's TypeScript (plugins/ndt1/model.ts, core/tensor/layers.ts,
# core/masking/masking.ts, stages/masking-sampler.ts, stages/train-model.ts, core/train/,
# core/eval/tasks.ts, core/eval/bps.ts), written again in PyTorch and numpy, trained on the binned
# session folders that write-binned-session@1 writes (counts.npy, trials.parquet with `split`,
# neurons.parquet with the region labels, meta.json). Same splits, same mask distribution, same
# epochs; its own random numbers. Run by bench/science.ts; prints ONE JSON line (and writes it to
# --out when given).
#
#   python bench/torch_science.py --scheme mtm --epochs 70 --seed 1 SESSION_DIR [SESSION_DIR ...]
#   python bench/torch_science.py --mask-stats '{"trials": 8, ...}'    # masking only (numpy only)
#
# Layout: masking (numpy, no torch) | data and batches | model | training | evaluation | main.
# The masking is sample_mask(): one function, a port of core/masking/masking.ts's sampleMask.
import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

# ---------------------------------------------------------------------------------------------
# Masking (core/masking/types.ts, core/masking/masking.ts). numpy only.

MASKING_MODES = ["temporal", "neuron", "causal", "inter-region", "intra-region"]
# The modes `mtm` draws among; each has a learned prompt token, in this order.
MTM_MODES = ["neuron", "causal", "inter-region", "intra-region"]
DEFAULT_RATIOS = {"temporal": 0.3, "neuron": 0.3, "causal": 0.6, "intraRegion": 0.3}
# Time modes (temporal, causal): longest span of consecutive bins per draw (1: single bins), and
# the probability a causal trial is masked as a forecast (every bin from a cut point on).
DEFAULT_TIME_SHAPE = {"span": 1, "forecast": 0.0}


def distinct_regions(regions):
    return sorted(set(regions))


def applicable_modes(scheme, regions):
    multi = len(distinct_regions(regions)) >= 2
    if scheme == "mtm":
        return [m for m in MTM_MODES if m != "inter-region" or multi]
    if scheme == "inter-region" and not multi:
        return ["neuron"]
    return [scheme]


def _at_least_one_not_all(sel, rng):
    """An empty selection gets one entry chosen uniformly; a full one (n >= 2) gives one back."""
    n = sel.shape[0]
    c = int(sel.sum())
    if n > 0 and c == 0:
        sel[rng.integers(n)] = True
    elif n >= 2 and c == n:
        sel[rng.integers(n)] = False
    return sel


def bernoulli_subset(n, p, rng):
    return _at_least_one_not_all(rng.random(n) < p, rng)


def span_subset(n, p, max_span, rng):
    """Each bin starts a span with probability p / E[length], lengths uniform in 1..max_span."""
    if max_span <= 1:
        return bernoulli_subset(n, p, rng)
    start_p = min(1.0, p / ((max_span + 1) / 2))
    starts = rng.random(n) < start_p
    lengths = 1 + rng.integers(max_span, size=n)
    sel = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(starts):
        sel[i:i + lengths[i]] = True
    return _at_least_one_not_all(sel, rng)


def forecast_subset(n, rng):
    """Every bin from a cut point on, the cut uniform in 1..n-1 (n = 1: the bin)."""
    cut = 1 + int(rng.integers(n - 1)) if n >= 2 else 0
    sel = np.zeros(n, dtype=bool)
    sel[cut:] = True
    return sel


def sample_mask(shape, regions, scheme, rng, ratios=None, time_shape=None):
    """One batch's mask, as sampleMask: shape (trials, bins, neurons); regions labels each neuron.

    Returns dict(mode, causal, masked, loss, region): masked and loss are bool [trials, bins,
    neurons] (masked: zeroed in the input; loss: scored). One mode per batch (mtm: uniform among
    the applicable MtM modes); random draws per trial; the region modes choose one region per batch.
    """
    trials, bins, neurons = shape
    if len(regions) != neurons:
        raise ValueError(f"masking: {len(regions)} region labels for {neurons} neurons")
    r = dict(DEFAULT_RATIOS, **(ratios or {}))
    ts = dict(DEFAULT_TIME_SHAPE, **(time_shape or {}))
    modes = applicable_modes(scheme, regions)
    mode = modes[0] if len(modes) == 1 else modes[int(rng.integers(len(modes)))]
    regions = np.asarray(regions, dtype=object)
    masked = np.zeros((trials, bins, neurons), dtype=bool)
    region = None
    if mode in ("temporal", "causal"):
        p = r["temporal"] if mode == "temporal" else r["causal"]
        for t in range(trials):
            if mode == "causal" and ts["forecast"] > 0 and rng.random() < ts["forecast"]:
                sel = forecast_subset(bins, rng)
            else:
                sel = span_subset(bins, p, int(ts["span"]), rng)
            masked[t, sel, :] = True
        loss = masked
    elif mode == "neuron":
        for t in range(trials):
            masked[t, :, bernoulli_subset(neurons, r["neuron"], rng)] = True
        loss = masked
    elif mode == "inter-region":
        names = distinct_regions(regions.tolist())
        region = names[int(rng.integers(len(names)))]
        masked[:, :, regions == region] = True
        loss = masked
    elif mode == "intra-region":
        names = distinct_regions(regions.tolist())
        region = names[int(rng.integers(len(names)))]
        inside = np.flatnonzero(regions == region)
        loss = np.zeros_like(masked)
        for t in range(trials):
            pick = bernoulli_subset(len(inside), r["intraRegion"], rng)
            masked[t] = True
            masked[t, :, inside[~pick]] = False
            loss[t, :, inside[pick]] = True
    else:
        raise ValueError(f"masking: unknown mode {mode}")
    return {"mode": mode, "causal": mode == "causal", "masked": masked, "loss": loss, "region": region}


def mask_stats(spec):
    """Fraction of entries masked and scored per mode over many draws, for the parity test."""
    rng = np.random.default_rng(spec.get("seed", 0))
    shape = (spec["trials"], spec["bins"], spec["neurons"])
    out = {}
    for scheme in spec["schemes"]:
        masked = scored = 0.0
        modes = {}
        for _ in range(spec["draws"]):
            d = sample_mask(shape, spec["regions"], scheme, rng, spec.get("ratios"), spec.get("timeShape"))
            masked += d["masked"].mean()
            scored += d["loss"].mean()
            modes[d["mode"]] = modes.get(d["mode"], 0) + 1
        out[scheme] = {"masked": masked / spec["draws"], "scored": scored / spec["draws"],
                       "modes": {k: v / spec["draws"] for k, v in sorted(modes.items())}}
    return out


# ---------------------------------------------------------------------------------------------
# Data: binned session folders, batches (stages/masking-sampler.ts).

class Session:
    def __init__(self, folder, region_level):
        import pandas as pd

        with open(os.path.join(folder, "meta.json")) as f:
            meta = json.load(f)
        self.folder = folder
        self.session_id = meta["sessionId"]
        self.counts = np.load(os.path.join(folder, "counts.npy")).astype(np.int32)  # [K, T, N]
        k, self.n_bins, self.n_neurons = self.counts.shape
        trials = pd.read_parquet(os.path.join(folder, "trials.parquet"))
        neurons = pd.read_parquet(os.path.join(folder, "neurons.parquet"))
        if len(trials) != k or len(neurons) != self.n_neurons:
            raise SystemExit(f"{folder}: counts {self.counts.shape}, {len(trials)} trial rows, {len(neurons)} neuron rows")
        self.split = trials["split"].astype(str).to_numpy()
        self.regions = [x if isinstance(x, str) and x else "unlabelled" for x in neurons[region_level].tolist()]
        self.rows = {s: np.flatnonzero(self.split == s) for s in ("train", "val", "test")}
        path = os.path.join(folder, "trueRates.npy")
        self.true_rates = np.load(path) if os.path.exists(path) else None


def plan_epoch(sessions, split, batch_size, drop_last, rng):
    """One epoch's batches (session index, trial rows): rows shuffled per session and cut into
    batches; sessions interleaved by stratified keys (j + u) / m, ties broken by a per-epoch
    session order, as planEpoch with shuffle on and proportional balance."""
    batches = []
    for si, s in enumerate(sessions):
        rows = s.rows[split].copy()
        rng.shuffle(rows)
        chunks = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
        if drop_last and chunks and len(chunks[-1]) < batch_size:
            chunks.pop()
        m = len(chunks)
        u = rng.random()
        batches += [((j + u) / m, si, c) for j, c in enumerate(chunks)]
    rank = rng.permutation(len(sessions))
    batches.sort(key=lambda b: (b[0], rank[b[1]]))
    return [(si, rows) for _, si, rows in batches]


def make_batch(sessions, si, rows, sampler, rng):
    s = sessions[si]
    target = s.counts[rows].astype(np.float32)
    d = sample_mask(target.shape, s.regions, sampler["mode"], rng, sampler["ratios"], sampler["timeShape"])
    inp = np.where(d["masked"], np.float32(0), target)
    return {"session": si, "input": inp, "target": target, "loss": d["loss"].astype(np.float32), "mode": d["mode"], "causal": d["causal"]}


# ---------------------------------------------------------------------------------------------
# Model (plugins/ndt1/model.ts, core/tensor/layers.ts).

def build_model_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    blocked = -1e9

    def attention_bias(prefix, length, causal):
        """[1, 1, S, S] additive bias: time token t sees the prefix and tokens <= t; prefix tokens
        see only the prefix (they carry no future to earlier bins). None when not causal."""
        if not causal:
            return None
        s = prefix + length
        i = torch.arange(s).reshape(s, 1)
        j = torch.arange(s).reshape(1, s)
        allowed = (j < prefix) | ((i >= prefix) & (j <= i))
        return torch.where(allowed, 0.0, blocked).reshape(1, 1, s, s)

    class Attention(nn.Module):
        def __init__(self, d, heads, attn_dropout):
            super().__init__()
            self.heads, self.head_dim = heads, d // heads
            self.qkv = nn.Linear(d, 3 * d)
            self.out = nn.Linear(d, d)
            self.attn_dropout = attn_dropout

        def forward(self, x, bias):
            b, s, d = x.shape
            q, k, v = self.qkv(x).split(d, dim=-1)

            def heads(t):
                return t.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)

            scores = torch.matmul(heads(q) * (1.0 / math.sqrt(self.head_dim)), heads(k).transpose(-2, -1))
            if bias is not None:
                scores = scores + bias
            probs = F.dropout(torch.softmax(scores, dim=-1), self.attn_dropout, self.training)
            return self.out(torch.matmul(probs, heads(v)).transpose(1, 2).reshape(b, s, d))

    class EncoderLayer(nn.Module):
        """Pre-LN: x + drop(attn(LN(x))), then x + drop(fc2(drop(gelu(fc1(LN(x))))))."""

        def __init__(self, c):
            super().__init__()
            d = c["dModel"]
            self.ln1 = nn.LayerNorm(d, eps=1e-5)
            self.attn = Attention(d, c["heads"], c["attentionDropout"])
            self.ln2 = nn.LayerNorm(d, eps=1e-5)
            self.fc1 = nn.Linear(d, c["mlpDim"])
            self.fc2 = nn.Linear(c["mlpDim"], d)
            self.p = c["dropout"]

        def forward(self, x, bias):
            x = x + F.dropout(self.attn(self.ln1(x), bias), self.p, self.training)
            h = F.dropout(F.gelu(self.fc1(self.ln2(x))), self.p, self.training)  # exact (erf) GELU
            return x + F.dropout(self.fc2(h), self.p, self.training)

    class Stitcher(nn.Module):
        """Per session: Linear N -> factor*N, softsign, Linear -> D in; Linear D -> N out; a token."""

        def __init__(self, n, c):
            super().__init__()
            hidden = c["embedHiddenFactor"] * n
            self.in1 = nn.Linear(n, hidden)
            self.in2 = nn.Linear(hidden, c["dModel"])
            self.readout = nn.Linear(c["dModel"], n)
            self.token = nn.Parameter(torch.randn(1, c["dModel"]) * 0.02) if c["sessionTokens"] else None

    class Ndt1(nn.Module):
        # nn.Linear's default init (uniform in +-1/sqrt(fan_in) for weight and bias) is
        # mtm-flow's Linear init; learned tokens and positions are N(0, 0.02), LayerNorm 1 / 0.
        def __init__(self, c, sessions):
            super().__init__()
            if c["dModel"] % c["heads"]:
                raise SystemExit(f"dModel {c['dModel']} is not divisible by heads {c['heads']}")
            self.c = c
            self.max_bins = max([c["maxBins"]] + [s.n_bins for s in sessions])
            d = c["dModel"]
            self.position = nn.Parameter(torch.randn(self.max_bins, d) * 0.02)
            self.prompts = nn.Parameter(torch.randn(len(MTM_MODES), d) * 0.02) if c["promptTokens"] else None
            self.layers = nn.ModuleList(EncoderLayer(c) for _ in range(c["layers"]))
            self.final_norm = nn.LayerNorm(d, eps=1e-5)
            self.stitchers = nn.ModuleList(Stitcher(s.n_neurons, c) for s in sessions)

        def forward(self, x, session, mode, causal):
            st = self.stitchers[session]
            b, t, _ = x.shape
            tokens = st.in2(F.softsign(st.in1(x))) + self.position[:t]
            # Session token, then the mode's prompt token, before the bins, without a position.
            prefix = []
            if st.token is not None:
                prefix.append(st.token)
            if self.prompts is not None and mode in MTM_MODES:
                i = MTM_MODES.index(mode)
                prefix.append(self.prompts[i:i + 1])
            p = len(prefix)
            if p:
                pre = torch.cat(prefix, 0).unsqueeze(0).expand(b, p, -1)
                tokens = torch.cat([pre, tokens], 1)
            h = F.dropout(tokens, self.c["embedDropout"], self.training)
            bias = attention_bias(p, t, causal)
            for layer in self.layers:
                h = layer(h, bias)
            return st.readout(self.final_norm(h)[:, p:])

    return Ndt1


# ---------------------------------------------------------------------------------------------
# Training (stages/train-model.ts, core/train/step.ts, adamw.ts, schedule.ts, core/tensor/loss.ts).

def one_cycle_lr(step, peak, total_steps, warmup_fraction, start_divisor=25.0, end_divisor=1e4):
    """Linear warm-up from peak/25 to the peak, then a cosine to start/1e4 (oneCycleLr)."""
    total = max(1, int(total_steps))
    start = peak / start_divisor
    end = start / end_divisor
    if total == 1:
        return peak
    last = total - 1
    warm = min(last - 1, max(1, js_round(warmup_fraction * last))) if warmup_fraction > 0 else 0
    s = min(max(step, 0), last)
    if s < warm:
        return start + (peak - start) * s / warm
    progress = (s - warm) / max(1, last - warm)
    return end + (peak - end) * (1 + math.cos(math.pi * progress)) / 2


def js_round(x):
    """JavaScript's Math.round (halves up), which oneCycleLr uses; Python's round() is to even."""
    return math.floor(x + 0.5)


class AdamW:
    """Decoupled-decay Adam with one step counter for all weights (mtm-flow's AdamW): a weight with
    no gradient this step is neither moved nor decayed, but the bias correction uses the global
    step (torch.optim.AdamW counts steps per weight: --optimizer torch)."""

    def __init__(self, weight_decay, beta1=0.9, beta2=0.999, eps=1e-8):
        self.wd, self.b1, self.b2, self.eps = weight_decay, beta1, beta2, eps
        self.step = 0
        self.m, self.v = {}, {}

    def apply(self, params, lr, scale):
        import torch

        self.step += 1
        t = self.step
        bc1, bc2 = 1 - self.b1 ** t, 1 - self.b2 ** t
        step_size, sqrt_bc2, decay = lr / bc1, math.sqrt(bc2), 1 - lr * self.wd
        with torch.no_grad():
            for p in params:
                g = p.grad if scale == 1 else p.grad * scale
                m = self.m.setdefault(p, torch.zeros_like(p))
                v = self.v.setdefault(p, torch.zeros_like(p))
                m.mul_(self.b1).add_(g, alpha=1 - self.b1)
                v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
                p.mul_(decay).addcdiv_(m, v.sqrt().div_(sqrt_bc2).add_(self.eps), value=-step_size)


def train_step(model, params, opt, x, y, m, session, mode, causal, lr, clip):
    """Forward, backward, global-norm clipping and one AdamW update (core/train/step.ts trainStep);
    returns the loss and the gradient norm. Nothing is updated when either is not finite."""
    import torch

    for p in params:
        p.grad = None
    loss = poisson_nll(model(x, session, mode, causal), y, m)
    loss.backward()
    present = [p for p in params if p.grad is not None]  # a weight the batch does not reach has none
    norm = float(torch.sqrt(sum((p.grad * p.grad).sum() for p in present)))
    lv = float(loss.detach())
    if not (math.isfinite(lv) and math.isfinite(norm)):
        return lv, norm
    scale = clip / (norm + 1e-6) if clip > 0 and norm > clip else 1.0
    if isinstance(opt, AdamW):
        opt.apply(present, lr, scale)
    else:
        for g in opt.param_groups:
            g["lr"] = lr
        if scale != 1.0:
            for p in present:
                p.grad.mul_(scale)
        opt.step()
    return lv, norm


def poisson_nll(log_rates, target, loss_mask):
    """Mean over scored entries of exp(x) - y x."""
    per_entry = log_rates.exp() - target * log_rates
    return (per_entry * loss_mask).sum() / loss_mask.sum().clamp(min=1.0)


def train(sessions, recipe, seed, log):
    import torch

    Ndt1 = build_model_classes()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sampler, tr = recipe["sampler"], recipe["train"]
    if sampler.get("sessionBalance", "proportional") != "proportional" or sampler.get("maxTrials", 0) or not sampler.get("shuffle", True):
        raise SystemExit("torch_science: only shuffled, proportional, full-split sampling is ported")
    epochs, bs = int(sampler["epochs"]), int(sampler["batchSize"])
    drop_last = bool(sampler.get("dropLast", False))

    # The validation set: the val split, masked once (a sampler with epochs 1).
    val = [make_batch(sessions, si, rows, sampler, rng) for si, rows in plan_epoch(sessions, "val", bs, drop_last, rng)]
    first_plan = plan_epoch(sessions, "train", bs, drop_last, rng)
    first = make_batch(sessions, *first_plan[0], sampler, rng)

    c = dict(recipe["model"])
    # train-model's `auto` rules: prompts unless the batches are temporal, session tokens for > 1 session.
    if "promptTokens" not in c:
        c["promptTokens"] = first["mode"] != "temporal" if tr.get("prompts", "auto") == "auto" else bool(tr["prompts"])
    if "sessionTokens" not in c:
        c["sessionTokens"] = len(sessions) > 1 if tr.get("sessionTokens", "auto") == "auto" else bool(tr["sessionTokens"])
    model = Ndt1(c, sessions)
    if tr.get("readoutInit", "default") == "meanCounts":
        # Each neuron's readout bias at the log of its mean count per bin over the training
        # trials, a silent neuron at half a spike over them (core/architecture.ts trainingMeanCounts).
        with torch.no_grad():
            for s, st in zip(sessions, model.stitchers):
                rows = s.rows["train"]
                sums = s.counts[rows].reshape(-1, s.n_neurons).sum(0).astype(np.float64)
                st.readout.bias.copy_(torch.from_numpy(np.log(np.maximum(sums, 0.5) / (len(rows) * s.n_bins)).astype(np.float32)))
    params = [p for p in model.parameters()]
    n_params = sum(p.numel() for p in params)
    if tr.get("optimizer", "mtm") == "torch":
        opt = torch.optim.AdamW(params, lr=tr["learningRate"], weight_decay=tr["weightDecay"], eps=1e-8)
    else:
        opt = AdamW(tr["weightDecay"])
    per_epoch = len(first_plan)
    total_steps = epochs * per_epoch
    clip = tr["clipNorm"]

    def tensors(b):
        return torch.from_numpy(b["input"]), torch.from_numpy(b["target"]), torch.from_numpy(b["loss"])

    def val_loss():
        model.eval()
        total = scored = 0.0
        with torch.no_grad():
            for b in val:
                x, y, m = tensors(b)
                n = float(m.sum())
                if n == 0:
                    continue
                total += float(poisson_nll(model(x, b["session"], b["mode"], b["causal"]), y, m)) * n
                scored += n
        model.train()
        return total / scored if scored else None

    model.train()
    step, best, best_state, history, trained_modes = 0, None, None, [], set()
    started = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        plan = first_plan if epoch == 0 else plan_epoch(sessions, "train", bs, drop_last, rng)
        if len(plan) != per_epoch:
            raise SystemExit(f"epoch {epoch + 1} has {len(plan)} batches, the first had {per_epoch}")
        loss_sum = scored_sum = grad_sum = 0.0
        for i, (si, rows) in enumerate(plan):
            b = first if epoch == 0 and i == 0 else make_batch(sessions, si, rows, sampler, rng)
            trained_modes.add(b["mode"])
            lr = one_cycle_lr(step, tr["learningRate"], total_steps, tr["warmupFraction"])
            x, y, m = tensors(b)
            lv, norm = train_step(model, params, opt, x, y, m, si, b["mode"], b["causal"], lr, clip)
            if not (math.isfinite(lv) and math.isfinite(norm)):
                raise SystemExit(f"loss {lv} / gradient norm {norm} at epoch {epoch + 1}, step {step + 1}")
            n = float(m.sum())
            loss_sum += lv * n
            scored_sum += n
            grad_sum += norm
            step += 1
        vl = val_loss()
        tl = loss_sum / scored_sum if scored_sum else float("nan")
        score = vl if vl is not None else tl
        improved = best is None or score < best["score"]
        if improved:
            best = {"epoch": epoch + 1, "score": score, "trainLoss": tl, "valLoss": vl}
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history.append({"epoch": epoch + 1, "trainLoss": tl, "valLoss": vl, "lr": one_cycle_lr(max(0, step - 1), tr["learningRate"], total_steps, tr["warmupFraction"]),
                        "gradNormMean": grad_sum / per_epoch, "seconds": time.perf_counter() - t0, "best": improved})
        log(f"epoch {epoch + 1}/{epochs} train {tl:.5f} val {vl if vl is None else round6(vl)}{' (best)' if improved else ''} {time.perf_counter() - t0:.2f}s")
    model.load_state_dict(best_state)
    model.eval()
    return model, {"config": c, "params": n_params, "best": best, "history": history, "trainedModes": sorted(trained_modes),
                   "batchesPerEpoch": per_epoch, "steps": step, "seconds": time.perf_counter() - started}


def load_mtm_flow(folder, sessions):
    """An mtm-flow model folder (model.json + weights.bin, tfjs layout) as this port's model:
    the same config, each weight by its stable name (Linear weights are [in, out] there)."""
    import torch
    from urllib.parse import quote

    Ndt1 = build_model_classes()
    with open(os.path.join(folder, "model.json")) as f:
        spec = json.load(f)
    topo, meta = spec["modelTopology"], spec.get("userDefinedMetadata", {})
    if topo.get("architecture") != "ndt1":
        raise SystemExit(f"{folder}: architecture {topo.get('architecture')}, not ndt1")
    model = Ndt1(dict(topo["config"]), sessions)
    blob = open(os.path.join(folder, spec["weightsManifest"][0]["paths"][0]), "rb").read()
    values, offset = {}, 0
    for group in spec["weightsManifest"]:
        for w in group["weights"]:
            if w["dtype"] != "float32":
                raise SystemExit(f"{folder}: weight {w['name']} is {w['dtype']}")
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            values[w["name"]] = np.frombuffer(blob, dtype="<f4", count=n, offset=offset).reshape(w["shape"])
            offset += 4 * n

    def key(sid):  # plugins/ndt1/model.ts sessionKey
        return "sessions." + quote(sid, safe="-_.!~*'()").replace(".", "%2E")

    names = {"position": model.position, "finalNorm.weight": model.final_norm.weight, "finalNorm.bias": model.final_norm.bias}
    if model.prompts is not None:
        names["prompts"] = model.prompts
    for i, layer in enumerate(model.layers):
        for ours, mod in (("ln1", layer.ln1), ("ln2", layer.ln2), ("attn.qkv", layer.attn.qkv), ("attn.out", layer.attn.out), ("mlp.fc1", layer.fc1), ("mlp.fc2", layer.fc2)):
            names[f"encoder.{i}.{ours}.weight"] = mod.weight
            names[f"encoder.{i}.{ours}.bias"] = mod.bias
    for s, st in zip(sessions, model.stitchers):
        for part in ("in1", "in2", "readout"):
            names[f"{key(s.session_id)}.{part}.weight"] = getattr(st, part).weight
            names[f"{key(s.session_id)}.{part}.bias"] = getattr(st, part).bias
        if st.token is not None:
            names[f"{key(s.session_id)}.token"] = st.token
    missing = [k for k in names if k not in values]
    if missing:
        raise SystemExit(f"{folder}: no weights {', '.join(missing[:5])}")
    with torch.no_grad():
        for k, p in names.items():
            v = torch.from_numpy(values[k].copy())
            if p.dim() == 2 and k.endswith(".weight") and not k.endswith("Norm.weight"):
                v = v.t()  # Linear: [in, out] there, [out, in] here
            if tuple(v.shape) != tuple(p.shape):
                raise SystemExit(f"{folder}: weight {k} has shape {tuple(v.shape)}, the port expects {tuple(p.shape)}")
            p.copy_(v)
    model.eval()
    return model, meta.get("trainedModes") or []


def replay(folder):
    """Replays training steps that mtm-flow ran (bench/science.ts writeStepParity): its initial
    weights, its batches and learning rates, dropout off; compares the loss and gradient norm of
    every step and the final weights with mtm-flow's."""
    import types

    import torch

    with open(os.path.join(folder, "steps.json")) as f:
        spec = json.load(f)
    sessions = [types.SimpleNamespace(session_id=x["sessionId"], n_bins=x["nBins"], n_neurons=x["nNeurons"]) for x in spec["sessions"]]
    model, _ = load_mtm_flow(os.path.join(folder, "init"), sessions)
    final, _ = load_mtm_flow(os.path.join(folder, "final"), sessions)
    model.train()  # dropout rates are 0 in this config: the train-mode pass is deterministic
    params = list(model.parameters())
    opt = AdamW(spec["weightDecay"])
    losses, norms = [], []
    for i, st in enumerate(spec["steps"]):
        x, y, m = (torch.from_numpy(np.load(os.path.join(folder, f"step{i}-{k}.npy")).astype(np.float32)) for k in ("input", "target", "loss"))
        lv, norm = train_step(model, params, opt, x, y, m, st["session"], st["mode"], st["causal"], st["lr"], spec["clipNorm"])
        losses.append(lv)
        norms.append(norm)
    rel = lambda a, b: abs(a - b) / max(abs(b), 1e-12)  # noqa: E731
    with torch.no_grad():
        diffs = [float((p - q).abs().max()) for p, q in zip(model.parameters(), final.parameters())]
        scale = max(float(q.abs().max()) for q in final.parameters())
    return {
        "steps": len(losses),
        "losses": losses,
        "gradNorms": norms,
        "maxLossRelDiff": max(rel(a, b) for a, b in zip(losses, spec["losses"])),
        "maxGradNormRelDiff": max(rel(a, b) for a, b in zip(norms, spec["gradNorms"])),
        "maxFinalWeightAbsDiff": max(diffs),
        "maxFinalWeightAbs": scale,
        "clippedSteps": sum(1 for n in spec["gradNorms"] if n > spec["clipNorm"]),
    }


def round6(x):
    return math.floor(x * 1e6 + 0.5) / 1e6


# ---------------------------------------------------------------------------------------------
# Evaluation (core/eval/tasks.ts, core/eval/bps.ts).

EVAL_TASKS = ["coSmoothing", "forwardPrediction", "interRegion", "intraRegion"]
DEFAULT_TASK_PROMPTS = {"coSmoothing": "neuron", "forwardPrediction": "causal", "interRegion": "inter-region", "intraRegion": "intra-region"}
MIN_RATE = 1e-9


def resolve_prompt(prompt, prompt_tokens, trained_modes):
    """A mode the model was trained with runs as asked; else a single-mode model runs its own
    mode, anything else `temporal`; causal attention exactly for `causal` (resolvePrompt)."""
    if trained_modes:
        mode = prompt if prompt in trained_modes else trained_modes[0] if len(trained_modes) == 1 else "temporal"
    else:
        mode = prompt if prompt_tokens else "temporal"
    return mode, mode == "causal"


def bits_per_spike(counts, predicted, scored, log_rates=True):
    """Per-neuron bits/spike on the scored entries against the neuron's mean count on them;
    `predicted` holds log-rates (or rates in counts per bin with log_rates=False)."""
    n_neurons = counts.shape[-1]
    y = counts.reshape(-1, n_neurons).astype(np.float64)
    m = scored.reshape(-1, n_neurons)
    x = np.where(m, predicted.reshape(-1, n_neurons), 0.0 if log_rates else 1.0).astype(np.float64)
    r = np.maximum(np.exp(x) if log_rates else x, MIN_RATE)
    spikes = (y * m).sum(0)
    entries = m.sum(0).astype(np.float64)
    model_term = ((r - y * np.log(r)) * m).sum(0)
    ok = (spikes > 0) & (entries > 0)
    per = np.full(n_neurons, np.nan)
    mean = np.where(ok, spikes / np.maximum(entries, 1), 1.0)
    null_term = entries * mean - spikes * np.log(mean)
    diff = null_term - model_term
    per[ok] = diff[ok] / (spikes[ok] * math.log(2))
    return {
        "perNeuron": [None if not np.isfinite(v) else float(v) for v in per],
        "mean": float(per[ok].mean()) if ok.any() else None,
        "pooled": float(diff[ok].sum() / (spikes[ok].sum() * math.log(2))) if ok.any() else None,
        "quantiles": {f"q{int(q * 100)}": float(np.quantile(per[ok], q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)} if ok.any() else None,
        "evaluatedNeurons": int(ok.sum()),
        "excludedNeurons": int(n_neurons - ok.sum()),
    }


def evaluate(model, sessions, recipe, trained_modes, batch_copies=256):
    import torch

    ev = recipe.get("evaluate", {})
    f_bins = int(ev.get("forwardPredictionBins", 10))
    prompts = {t: ev.get(f"{t}Prompt", DEFAULT_TASK_PROMPTS[t]) for t in EVAL_TASKS}
    prompt_tokens = model.prompts is not None
    split = ev.get("split", "test")
    if int(ev.get("maxLeftOutNeurons", 0) or 0) > 0:
        raise SystemExit("torch_science: maxLeftOutNeurons (a seeded subset of left-out neurons) is not ported")
    out = {}
    for si, s in enumerate(sessions):
        rows = s.rows[split]
        counts = s.counts[rows].astype(np.float32)  # [R, T, N]
        R, T, N = counts.shape
        regions = np.asarray(s.regions, dtype=object)
        names = distinct_regions(s.regions)
        res = {}
        for task in EVAL_TASKS:
            mode, causal = resolve_prompt(prompts[task], prompt_tokens, trained_modes)
            t0 = time.perf_counter()
            # Jobs: (trial, zeroed [T, N] bool, scored [T, N] bool); every scored entry is
            # predicted by exactly one job.
            if task == "coSmoothing":
                masks = []
                for n in range(N):
                    z = np.zeros((T, N), dtype=bool)
                    z[:, n] = True
                    masks.append((z, z))
            elif task == "forwardPrediction":
                if not (1 <= f_bins < T):
                    raise SystemExit(f"forwardPredictionBins {f_bins} for {T} bins")
                z = np.zeros((T, N), dtype=bool)
                z[T - f_bins:] = True
                masks = [(z, z)]
            elif task == "interRegion":
                if len(names) < 2:
                    res[task] = {"skipped": f"needs two regions, the session has {len(names)}"}
                    continue
                masks = []
                for g in names:
                    z = np.zeros((T, N), dtype=bool)
                    z[:, regions == g] = True
                    masks.append((z, z))
            else:  # intraRegion
                masks = []
                for g in names:
                    for n in np.flatnonzero(regions == g):
                        z = np.zeros((T, N), dtype=bool)
                        z[:, regions != g] = True
                        z[:, n] = True
                        sc = np.zeros((T, N), dtype=bool)
                        sc[:, n] = True
                        masks.append((z, sc))
            predicted = np.full((R, T, N), np.nan, dtype=np.float32)
            scored = np.zeros((R, T, N), dtype=bool)
            jobs = [(r, k) for k in range(len(masks)) for r in range(R)]
            with torch.no_grad():
                for start in range(0, len(jobs), batch_copies):
                    chunk = jobs[start:start + batch_copies]
                    x = np.stack([np.where(masks[k][0], np.float32(0), counts[r]) for r, k in chunk])
                    y = model(torch.from_numpy(x), si, mode, causal).numpy()
                    for i, (r, k) in enumerate(chunk):
                        sc = masks[k][1]
                        predicted[r][sc] = y[i][sc]
                        scored[r] |= sc
            if not np.isfinite(predicted[scored]).all():
                raise SystemExit(f"{task}: non-finite log-rate predicted for session {s.session_id}")
            bps = bits_per_spike(counts, predicted, scored)
            entry = {"mode": mode, "causal": causal, "bps": bps["mean"], "pooled": bps["pooled"], "quantiles": bps["quantiles"],
                     "evaluated": bps["evaluatedNeurons"], "excluded": bps["excludedNeurons"],
                     "perNeuron": bps["perNeuron"], "seconds": time.perf_counter() - t0}
            if s.true_rates is not None:
                o = bits_per_spike(counts, s.true_rates[rows], scored, log_rates=False)
                entry["oracle"] = o["mean"]
            res[task] = entry
        out[s.session_id] = res
    return out


# ---------------------------------------------------------------------------------------------

def blas_summary():
    import re

    import torch

    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=([^,\s]+)", cfg)
    return {"buildBlas": m.group(1) if m else None, "mkldnn": torch.backends.mkldnn.is_available()}


def main():
    ap = argparse.ArgumentParser(description="Train and evaluate mtm-flow's NDT1 recipe in PyTorch on binned session folders; print one JSON line.")
    ap.add_argument("sessions", nargs="*", help="binned session folders (write-binned-session@1)")
    ap.add_argument("--recipe", help="JSON (or @file): sampler, train, model, evaluate settings; bench/science.ts writes it from the graph")
    ap.add_argument("--scheme", help="masking scheme; overrides recipe.sampler.mode")
    ap.add_argument("--epochs", type=int, help="overrides recipe.sampler.epochs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--optimizer", choices=["mtm", "torch"], help="mtm: one global AdamW step count (mtm-flow's); torch: torch.optim.AdamW")
    ap.add_argument("--load-mtm-flow", help="evaluate this trained mtm-flow model folder (its weights) instead of training: checks the port's forward pass and evaluation")
    ap.add_argument("--replay", help="a folder of mtm-flow training steps (bench/science.ts writeStepParity): replay them, print the comparison and exit")
    ap.add_argument("--out", help="also write the JSON result here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--mask-stats", help="JSON: {trials, bins, neurons, regions, schemes, draws, ratios?, timeShape?}: print masking statistics and exit (numpy only)")
    a = ap.parse_args()

    if a.mask_stats:
        print(json.dumps(mask_stats(json.loads(a.mask_stats))))
        return
    if a.replay:
        import torch

        torch.set_num_threads(a.threads)
        print(json.dumps({"torchVersion": torch.__version__, **replay(a.replay)}))
        return
    if not a.sessions or not a.recipe:
        ap.error("session folders and --recipe are required")
    recipe = json.loads(open(a.recipe[1:]).read() if a.recipe.startswith("@") else a.recipe)
    recipe["sampler"] = dict(recipe["sampler"])
    recipe["train"] = dict(recipe["train"])
    if a.scheme:
        recipe["sampler"]["mode"] = a.scheme
    if a.epochs:
        recipe["sampler"]["epochs"] = a.epochs
    if a.optimizer:
        recipe["train"]["optimizer"] = a.optimizer
    recipe["sampler"].setdefault("ratios", {})
    recipe["sampler"].setdefault("timeShape", {})

    import torch

    torch.set_num_threads(a.threads)
    log = (lambda msg: None) if a.quiet else (lambda msg: print(f"torch_science: {msg}", file=sys.stderr, flush=True))
    level = recipe.get("evaluate", {}).get("regionLevel", recipe["sampler"].get("regionLevel", "acronym"))
    sessions = [Session(f, level) for f in a.sessions]
    t0 = time.perf_counter()
    if a.load_mtm_flow:
        model, modes = load_mtm_flow(a.load_mtm_flow, sessions)
        info = {"config": model.c, "params": sum(p.numel() for p in model.parameters()), "best": None, "history": [], "trainedModes": modes,
                "batchesPerEpoch": None, "steps": 0, "seconds": 0.0}
    else:
        model, info = train(sessions, recipe, a.seed, log)
    t1 = time.perf_counter()
    results = evaluate(model, sessions, recipe, info["trainedModes"])
    t2 = time.perf_counter()
    mean = {}
    for task in EVAL_TASKS:
        vals = [r[task]["bps"] for r in results.values() if r.get(task, {}).get("bps") is not None]
        mean[task] = sum(vals) / len(vals) if vals else None
    out = {
        "format": "mtm-science-peer@1",
        "scheme": recipe["sampler"]["mode"],
        "seed": a.seed,
        "torchVersion": torch.__version__,
        "python": {"executable": sys.executable, "version": platform.python_version(), "numpy": np.__version__},
        "threads": torch.get_num_threads(),
        "blas": blas_summary(),
        "optimizer": recipe["train"].get("optimizer", "mtm"),
        "loadedFrom": a.load_mtm_flow,
        "recipe": recipe,
        "model": {"config": info["config"], "params": info["params"]},
        "sessions": [{"sessionId": s.session_id, "folder": s.folder, "trials": {k: int(len(v)) for k, v in s.rows.items()},
                      "bins": s.n_bins, "neurons": s.n_neurons, "regions": distinct_regions(s.regions)} for s in sessions],
        "training": {k: info[k] for k in ("best", "history", "trainedModes", "batchesPerEpoch", "steps", "seconds")},
        "evaluation": results,
        "mean": mean,
        "wallS": {"train": t1 - t0, "evaluate": t2 - t1, "total": t2 - t0},
    }
    text = json.dumps(out, allow_nan=False)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
