#!/usr/bin/env python3
"""The ELECTRA pre-training step in PyTorch + Hugging Face transformers, timed.

The reference side of ``cargo xtask compare-pytorch``: the same step as electra-rs's trainer
(``ElectraPretrainingModel::step`` + ``ElectraAdam``), built from HF modules:

* generator ``ElectraForMaskedLM`` and discriminator ``ElectraForPreTraining`` with the configs
  electra-rs uses (read from ``throughput --describe``), sharing one embedding block (word,
  position, token-type tables and their LayerNorm; spec 2.3), the generator's output layer tied
  to the shared word embeddings; both in training mode (dropout 0.1);
* masking as spec 1.2 (budget ``N = floor((p + 0.005)·S)`` slots, ``k = clamp(round(p·real), 1,
  N)`` positions without replacement among non-special real tokens, 85 % ``[MASK]``, 15 %
  unchanged), Gumbel-max sampling at temperature 1 (stop-gradient), the sample written into
  every active slot of the original ids, label 1 iff the id changed;
* losses: MLM cross-entropy averaged over the active slots of the batch, BCE-with-logits averaged
  over non-pad tokens, ``total = 1·mlm + 50·rtd``;
* backward, global-norm clipping at 1.0 (TF ``clip_by_global_norm``), the reference Adam (no bias
  correction, eps outside the sqrt, decoupled weight decay 0.01 skipping biases and LayerNorm),
  written with ``torch._foreach`` ops as ``torch.optim`` does.

``--gen-head masked`` (the default, and what electra-rs and the Google reference do) runs the
generator's vocabulary head only at the N slots; ``--gen-head full`` calls
``ElectraForMaskedLM.forward`` as HF users do, which computes the head at every position and
gathers the slots afterwards. ``--mode forward`` times discriminator inference instead
(``ElectraForPreTraining`` in eval mode under ``torch.inference_mode``), ``--mode finetune``
one GLUE fine-tuning step (``ElectraForSequenceClassification``, two classes, summed loss), and
``--mode squad`` one SQuAD fine-tuning step (``ElectraForQuestionAnswering``).

The batch is electra-rs's ``synthetic_host_batch``: ``[CLS]`` first, ``[SEP]`` last, ids
``1000 + ((row·S + t)·7919) mod (V − 1000)`` between, one segment, no padding.

Prints one JSON line with the same fields as electra-rs's ``throughput`` binary. Peak memory is
the process's ``ru_maxrss`` (``VmHWM``). Threads: ``torch.set_num_threads(--threads)``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch
import transformers
from torch import nn
from transformers import (
    ElectraConfig,
    ElectraForMaskedLM,
    ElectraForPreTraining,
    ElectraForQuestionAnswering,
    ElectraForSequenceClassification,
)

HF_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "layer_norm_eps",
    "initializer_range",
)


def hf_config(d: dict) -> ElectraConfig:
    return ElectraConfig(**{k: d[k] for k in HF_KEYS}, pad_token_id=0)


def synthetic_batch(batch: int, seq: int, vocab: int, cls: int, sep: int) -> torch.Tensor:
    span = max(vocab - 1000, 1)
    i = torch.arange(batch * seq, dtype=torch.long).reshape(batch, seq)
    ids = 1000 + (i * 7919) % span
    ids[:, 0] = cls
    ids[:, -1] = sep
    return ids


class Electra(nn.Module):
    """Generator and discriminator around one embedding block."""

    def __init__(self, desc: dict):
        super().__init__()
        self.generator = ElectraForMaskedLM(hf_config(desc["generator"]))
        self.discriminator = ElectraForPreTraining(hf_config(desc["discriminator"]))
        # Share the whole embedding block (spec 2.3) and re-tie the generator's output layer.
        self.generator.electra.embeddings = self.discriminator.electra.embeddings
        self.generator.generator_lm_head.weight = self.discriminator.electra.embeddings.word_embeddings.weight


def mask_batch(ids: torch.Tensor, attention_mask: torch.Tensor, desc: dict, gen: torch.Generator):
    """Spec 1.2 masking, positions drawn without replacement (as electra-rs does)."""
    b, s = ids.shape
    n = desc["slots"]
    p = desc["mask_prob"]
    special = (ids == desc["cls_token_id"]) | (ids == desc["sep_token_id"]) | (ids == desc["mask_token_id"])
    candidate = (attention_mask == 1) & ~special & (ids != desc["pad_token_id"])
    real = attention_mask.sum(1)
    # torch.round is round-half-to-even, as TF's.
    k = torch.clamp(torch.round(real.double() * p).long(), 1, n)
    k = torch.minimum(k, candidate.sum(1))
    scores = torch.rand(b, s, generator=gen)
    scores[~candidate] = -1.0
    positions = scores.topk(n, dim=1).indices  # [b, n], distinct
    active = torch.arange(n).unsqueeze(0) < k.unsqueeze(1)  # [b, n]
    positions = torch.where(active, positions, torch.zeros_like(positions))
    targets = torch.where(active, ids.gather(1, positions), torch.zeros_like(positions))
    weights = active.float()
    to_mask = active & (torch.rand(b, n, generator=gen) < 0.85)
    masked = ids.clone()
    rows = torch.arange(b).unsqueeze(1).expand(b, n)
    masked[rows[to_mask], positions[to_mask]] = desc["mask_token_id"]
    return masked, positions, targets, weights, active


def generator_slot_logits(model: Electra, masked, types, attention_mask, positions, full_head: bool):
    g = model.generator
    if full_head:
        logits = g(input_ids=masked, attention_mask=attention_mask, token_type_ids=types).logits  # [b, s, V]
        return logits.gather(1, positions.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    hidden = g.electra(input_ids=masked, attention_mask=attention_mask, token_type_ids=types).last_hidden_state
    gathered = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))  # [b, n, H_g]
    return g.generator_lm_head(g.generator_predictions(gathered))  # [b, n, V]


def step_loss(model: Electra, ids, types, attention_mask, desc, gen: torch.Generator, full_head: bool):
    masked, positions, targets, weights, active = mask_batch(ids, attention_mask, desc, gen)
    logits = generator_slot_logits(model, masked, types, attention_mask, positions, full_head)
    b, n, v = logits.shape
    nll = nn.functional.cross_entropy(logits.reshape(b * n, v), targets.reshape(-1), reduction="none")
    w = weights.reshape(-1)
    mlm_loss = (nll * w).sum() / (w.sum() + 1e-6)
    # Gumbel-max sampling, no gradient (spec 1.3).
    with torch.no_grad():
        u = torch.rand(logits.shape, generator=gen)
        gumbel = -torch.log(-torch.log(u + 1e-9) + 1e-9)
        sampled = (logits.detach() / desc["temperature"] + gumbel).argmax(-1)  # [b, n]
    disc_ids = ids.clone()
    rows = torch.arange(b).unsqueeze(1).expand(b, n)
    disc_ids[rows[active], positions[active]] = sampled[active]
    labels = (disc_ids != ids).float()
    disc_logits = model.discriminator(
        input_ids=disc_ids, attention_mask=attention_mask, token_type_ids=types
    ).logits
    m = attention_mask.float()
    bce = nn.functional.binary_cross_entropy_with_logits(disc_logits, labels, reduction="none")
    rtd_loss = (bce * m).sum() / (m.sum() + 1e-6)
    return desc["gen_weight"] * mlm_loss + desc["disc_weight"] * rtd_loss


class ReferenceAdam:
    """ELECTRA's AdamWeightDecay with global-norm clipping (spec 3)."""

    def __init__(self, model: nn.Module, desc: dict):
        self.beta1, self.beta2, self.eps, self.wd, self.clip = desc["adam"]
        seen = set()
        self.decayed, self.plain = [], []
        for name, p in model.named_parameters():  # shared tensors are listed once
            if id(p) in seen:
                continue
            seen.add(id(p))
            skip = "LayerNorm" in name or "layer_norm" in name or "bias" in name
            (self.plain if skip else self.decayed).append(p)
        self.params = self.decayed + self.plain
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        grads = [p.grad for p in self.params]
        if self.clip > 0:
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            scale = self.clip / torch.clamp(norm, min=self.clip)
            torch._foreach_mul_(grads, scale)
        torch._foreach_mul_(self.m, self.beta1)
        torch._foreach_add_(self.m, grads, alpha=1 - self.beta1)
        torch._foreach_mul_(self.v, self.beta2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - self.beta2)
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_add_(denom, self.eps)
        update = torch._foreach_div(self.m, denom)
        nd = len(self.decayed)
        if self.wd > 0:
            torch._foreach_add_(update[:nd], self.decayed, alpha=self.wd)
        torch._foreach_add_(self.params, update, alpha=-lr)
        for p in self.params:
            p.grad = None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--describe", required=True, help="JSON from `throughput --describe`")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", choices=["step", "forward", "finetune", "squad"], default="step")
    ap.add_argument("--gen-head", choices=["masked", "full"], default="masked")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(args.describe) as f:
        desc = json.load(f)
    vocab = desc["discriminator"]["vocab_size"]
    ids = synthetic_batch(args.batch, args.seq, vocab, desc["cls_token_id"], desc["sep_token_id"])
    types = torch.zeros_like(ids)
    attention_mask = torch.ones_like(ids)
    model = Electra(desc)
    gen = torch.Generator().manual_seed(args.seed)

    seconds = []
    last_loss = None
    if args.mode == "step":
        model.train()
        optimizer = ReferenceAdam(model, desc)
        parameters = sum(p.numel() for p in optimizer.params)
        for i in range(args.warmup + args.steps):
            started = time.perf_counter()
            loss = step_loss(model, ids, types, attention_mask, desc, gen, args.gen_head == "full")
            value = loss.item()
            loss.backward()
            optimizer.step(desc["lr"])
            if i >= args.warmup:
                seconds.append(time.perf_counter() - started)
                last_loss = value
        implementation = "pytorch-hf" if args.gen_head == "full" else "pytorch"
    elif args.mode == "finetune":
        # GLUE fine-tuning: HF's classifier (its head adds a dense H x H + GELU before the output
        # layer, ours goes straight to it; a negligible difference in cost), two classes, the
        # loss summed over the batch as the reference's run_finetuning.py, the same Adam.
        config = hf_config(desc["discriminator"])
        config.num_labels = 2
        clf = ElectraForSequenceClassification(config)
        clf.train()
        optimizer = ReferenceAdam(clf, desc)
        parameters = sum(p.numel() for p in optimizer.params)
        labels = torch.arange(args.batch) % 2
        for i in range(args.warmup + args.steps):
            started = time.perf_counter()
            out = clf(input_ids=ids, attention_mask=attention_mask, token_type_ids=types)
            loss = nn.functional.cross_entropy(out.logits, labels, reduction="sum")
            value = loss.item()
            loss.backward()
            optimizer.step(desc["lr"])
            if i >= args.warmup:
                seconds.append(time.perf_counter() - started)
                last_loss = value
        implementation = "pytorch"
    elif args.mode == "squad":
        # SQuAD fine-tuning: HF's question-answering head (start and end logits from one dense
        # layer), start/end cross-entropy summed over the batch as electra-rs's recipe does
        # (HF's own loss averages; the cost is the same), the same Adam. Answers are 3-token
        # spans of the context, as electra-rs's synthetic SQuAD batch.
        config = hf_config(desc["discriminator"])
        qa = ElectraForQuestionAnswering(config)
        qa.train()
        optimizer = ReferenceAdam(qa, desc)
        parameters = sum(p.numel() for p in optimizer.params)
        query = min(64, args.seq // 4)
        starts = query + 2 + torch.arange(args.batch) % max(1, args.seq - query - 6)
        ends = torch.clamp(starts + 2, max=args.seq - 2)
        ce = nn.CrossEntropyLoss(reduction="sum")
        for i in range(args.warmup + args.steps):
            started = time.perf_counter()
            out = qa(input_ids=ids, attention_mask=attention_mask, token_type_ids=types)
            loss = (ce(out.start_logits, starts) + ce(out.end_logits, ends)) / 2
            value = loss.item()
            loss.backward()
            optimizer.step(desc["lr"])
            if i >= args.warmup:
                seconds.append(time.perf_counter() - started)
                last_loss = value
        implementation = "pytorch"
    else:
        disc = model.discriminator.eval()
        parameters = sum(p.numel() for p in disc.parameters())
        with torch.inference_mode():
            for i in range(args.warmup + args.steps):
                started = time.perf_counter()
                disc(input_ids=ids, attention_mask=attention_mask, token_type_ids=types).logits.sum().item()
                if i >= args.warmup:
                    seconds.append(time.perf_counter() - started)
        implementation = "pytorch"

    median = statistics.median(seconds)
    report = {
        "implementation": implementation,
        "mode": args.mode,
        "shape": {"preset": args.preset, "batch": args.batch, "seq": args.seq},
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "step_seconds": seconds,
        "median_seconds": median,
        "tokens_per_second": args.batch * args.seq / median,
        "sequences_per_second": args.batch / median,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "last_loss": last_loss,
        "parameters": parameters,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        # The vector instruction set torch's CPU kernels dispatch to here (AVX2, AVX512, ...).
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
