#!/usr/bin/python3
"""Trains the demo DeepSeek-V3-architecture code model and exports it in Hugging Face layout.

  /usr/bin/python3 tools/demo-model/train.py --out models/demo            # the committed model
  /usr/bin/python3 tools/demo-model/train.py --out /tmp/smoke --smoke     # 1-2 minute pipeline check

Steps: BPE tokenizer on the training files -> FIM/plain samples packed into rows -> AdamW training of
main + MTP loss with auxiliary-loss-free balancing -> export (bf16 safetensors, config, tokenizer).
Checkpoints go to --work every --ckpt-every steps; --resume continues from the last one, and
--export-only re-exports the last checkpoint (e.g. when a run had to be cut short).
Runs on a GPU when one is present (CUDA), else on CPU threads (--threads).
"""
import argparse
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import data  # noqa: E402
import export  # noqa: E402
from model import DeepseekV3  # noqa: E402

CONFIG = {
    "vocab_size": 4096,
    "hidden_size": 128,
    "intermediate_size": 256,          # dense MLP of layer 0
    "moe_intermediate_size": 48,
    "num_hidden_layers": 4,            # layer 0 dense, 1-3 MoE; MTP module = layer 4 (MoE)
    "num_attention_heads": 4,
    "q_lora_rank": 64,
    "kv_lora_rank": 48,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "n_routed_experts": 16,
    "n_shared_experts": 1,
    "num_experts_per_tok": 4,
    "n_group": 4,
    "topk_group": 2,
    "routed_scaling_factor": 2.5,
    "first_k_dense_replace": 1,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "num_nextn_predict_layers": 1,
    "max_position_embeddings": 4096,
    "initializer_range": 0.02,
    "aux_loss_alpha": 0.0001,
}
SMOKE = dict(CONFIG, hidden_size=64, intermediate_size=128, moe_intermediate_size=32, num_hidden_layers=2,
             num_attention_heads=4, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16, v_head_dim=16)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_rows(tok, files, seed, epoch, seq, fim_rate):
    rng = random.Random(seed * 1000 + epoch)
    files = list(files)
    rng.shuffle(files)
    samples = []
    for f in files:
        for seg in data.segments(data.read(f), rng):
            samples.append(data.encode_sample(tok, seg, rng, fim_rate))
    rng.shuffle(samples)
    rows, masks = data.pack(samples, seq, tok.added[bpe.PAD])
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.float32)


def losses(model, rows, masks):
    """Main next-token loss, MTP (t+2) loss, accuracy numbers; rows [B,S+1]."""
    inp, tgt = rows[:, :-1], rows[:, 1:]
    m1 = masks[:, 1:]
    logits, _, mtp_logits = model(inp)
    V = logits.size(-1)
    ce = F.cross_entropy(logits.reshape(-1, V), tgt.reshape(-1), reduction="none").view_as(m1)
    main = (ce * m1).sum() / m1.sum().clamp(min=1)
    acc = ((logits.argmax(-1) == tgt).float() * m1).sum() / m1.sum().clamp(min=1)
    mtp = torch.zeros((), device=rows.device)
    if mtp_logits is not None:
        t2 = rows[:, 2:]                     # slot i predicts token i+2
        m2 = masks[:, 2:]
        ce2 = F.cross_entropy(mtp_logits.reshape(-1, V), t2.reshape(-1), reduction="none").view_as(m2)
        mtp = (ce2 * m2).sum() / m2.sum().clamp(min=1)
    return main, mtp, acc


def lr_at(step, peak, warmup, decay_start, total):
    """Warmup-stable-decay: linear warmup, constant, then linear decay to 10% from decay_start to total."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if decay_start is None or step < decay_start:
        return peak
    p = (step - decay_start) / max(1, total - decay_start)
    return peak * (1.0 - 0.9 * min(1.0, p))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="models/demo")
    ap.add_argument("--work", default="/tmp/demo-model-work")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--mtp-weight", type=float, default=0.3)
    ap.add_argument("--bias-rate", type=float, default=0.02, help="gamma of the aux-loss-free bias update")
    ap.add_argument("--fim-rate", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--minutes", type=float, default=0, help="stop (and export) after this much wall time")
    ap.add_argument("--ckpt-every", type=int, default=50)
    ap.add_argument("--decay-frac", type=float, default=0.2, help="decay phase = this fraction of the run")
    ap.add_argument("--decay-start", type=int, default=None,
                    help="step where the LR decay starts (default: steps*(1-decay-frac), or earlier when "
                         "--minutes would otherwise be exceeded; train_info.json records the value used)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--continue-steps", type=int, default=None,
                    help="with --resume: train N more steps after the checkpoint's (a new constant phase at --lr, "
                         "then the decay over the last --decay-frac; --minutes may start the decay earlier)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny model, few steps: pipeline check")
    args = ap.parse_args()
    if args.smoke:
        args.steps, args.batch, args.seq, args.ckpt_every = min(args.steps, 20), 4, 128, 10
    t_start = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    os.makedirs(args.work, exist_ok=True)
    cfg = dict(SMOKE if args.smoke else CONFIG)

    # ---- tokenizer -----------------------------------------------------------------------------------------
    files = data.train_files()
    tok_dir = os.path.join(args.work, "tokenizer")
    if os.path.exists(os.path.join(tok_dir, "tokenizer.json")) and (args.resume or args.export_only):
        tok = bpe.Tokenizer.load(tok_dir)
    else:
        log(f"training BPE on {len(files)} files")
        merges = bpe.train_bpe([data.read(f) for f in files], cfg["vocab_size"], log=log)
        tok = bpe.Tokenizer.build(merges)
        os.makedirs(tok_dir, exist_ok=True)
        tok.save(tok_dir)
    assert len(tok) == cfg["vocab_size"], (len(tok), cfg["vocab_size"])

    model = DeepseekV3(cfg)
    model.init_weights(args.seed)
    model.to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters (+{cfg['vocab_size'] * cfg['hidden_size'] * 2 / 1e6:.2f}M "
        f"duplicated MTP embed/head in the export), device {dev}")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    ckpt = os.path.join(args.work, "ckpt.pt")
    step, tokens_seen, epoch, pos = 0, 0, 0, 0
    decay_start = args.decay_start
    time_trigger = bool(args.minutes) and decay_start is None
    if decay_start is None:
        decay_start = int(args.steps * (1 - args.decay_frac))
    history = []
    if (args.resume or args.export_only) and os.path.exists(ckpt):
        st = torch.load(ckpt, map_location=dev)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        step, tokens_seen, epoch, pos, history = st["step"], st["tokens"], st["epoch"], st["pos"], st["history"]
        if st.get("decay_start") is not None:
            decay_start, args.steps = st["decay_start"], st["total_steps"]
            time_trigger = time_trigger and step < decay_start
        if args.continue_steps:
            args.steps = step + args.continue_steps
            decay_start = args.decay_start or step + int(args.continue_steps * (1 - args.decay_frac))
            time_trigger = bool(args.minutes) and args.decay_start is None
            history.append({"phase": "continue", "from_step": step, "lr": args.lr})
        log(f"resumed at step {step}")

    def save_ckpt():
        tmp = ckpt + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "tokens": tokens_seen,
                    "epoch": epoch, "pos": pos, "history": history,
                    "decay_start": decay_start, "total_steps": args.steps, "cfg": cfg, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt)

    if not args.export_only:
        log("tokenizing training data")
        rows, masks = build_rows(tok, files, args.seed, epoch, args.seq, args.fim_rate)
        log(f"epoch {epoch}: {rows.shape[0]} rows of {args.seq} tokens ({int(masks.sum())} real tokens)")
        # Held-out rows for a running validation loss (plain + FIM samples from the held-out files).
        vrows, vmasks = build_rows(tok, data.HELD_OUT, args.seed + 7, 0, args.seq, args.fim_rate)
        vrows, vmasks = vrows[:16].to(dev), vmasks[:16].to(dev)
        gen = torch.Generator().manual_seed(args.seed + epoch)
        order = torch.randperm(rows.shape[0], generator=gen)
        moes = model.moe_layers()
        model.train()
        t_loop = time.time()
        s0 = step
        stop_reason = "planned steps done"
        while step < args.steps:
            if pos + args.batch > rows.shape[0]:
                epoch += 1
                pos = 0
                rows, masks = build_rows(tok, files, args.seed, epoch, args.seq, args.fim_rate)
                gen = torch.Generator().manual_seed(args.seed + epoch)
                order = torch.randperm(rows.shape[0], generator=gen)
                log(f"epoch {epoch}: {rows.shape[0]} rows")
            sel = order[pos:pos + args.batch]
            pos += args.batch
            r, m = rows[sel].to(dev), masks[sel].to(dev)
            if time_trigger and step < decay_start and step > s0 + 5:
                # Start the decay early when the remaining wall time only leaves room for the decay phase.
                per_step = (time.time() - t_loop) / (step - s0)
                n_decay = max(10, int(args.decay_frac / (1 - args.decay_frac) * (step - s0)))
                if time.time() - t_start + (n_decay + 2) * per_step > args.minutes * 60:
                    decay_start, args.steps, time_trigger = step, step + n_decay, False
                    log(f"wall-time budget: decay starts now (step {step}), run ends at step {args.steps}")
            lr = lr_at(step, args.lr, args.warmup, decay_start, args.steps)
            for g in opt.param_groups:
                g["lr"] = lr
            main_loss, mtp_loss, acc = losses(model, r, m)
            aux = sum(x.last_aux for x in moes) * cfg["aux_loss_alpha"]
            loss = main_loss + args.mtp_weight * mtp_loss + aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            # Auxiliary-loss-free balancing: b_i += gamma * sign(mean load - load_i).
            with torch.no_grad():
                for x in moes:
                    load = x.last_load.float()
                    x.gate.e_score_correction_bias += args.bias_rate * torch.sign(load.mean() - load)
            tokens_seen += int(m[:, 1:].sum())
            step += 1
            if step % 10 == 0 or step == 1:
                el = time.time() - t_loop
                imb = max(float(x.last_load.max() / x.last_load.float().mean()) for x in moes)
                log(f"step {step}/{args.steps} loss {main_loss.item():.4f} mtp {mtp_loss.item():.4f} "
                    f"acc {acc.item():.3f} lr {lr:.2e} gnorm {float(gn):.2f} maxload/mean {imb:.2f} "
                    f"tok {tokens_seen} {el / max(1, step - s0):.2f}s/step")
            if step % args.ckpt_every == 0 or step == args.steps:
                model.eval()
                with torch.no_grad():
                    vl, vm, va = losses(model, vrows, vmasks)
                model.train()
                history.append({"step": step, "tokens": tokens_seen, "train_loss": main_loss.item(),
                                "val_loss": vl.item(), "val_mtp_loss": vm.item(), "val_acc": va.item(),
                                "elapsed_s": time.time() - t_start})
                log(f"eval step {step}: held-out loss {vl.item():.4f} mtp {vm.item():.4f} acc {va.item():.3f}")
                save_ckpt()
            if args.minutes and time.time() - t_start > args.minutes * 60:
                stop_reason = f"wall-time limit of {args.minutes} min reached"
                save_ckpt()
                break
        log(f"training stopped at step {step}: {stop_reason}")
    model.eval()
    export.export(model, tok, args.out)
    info = {"steps": step, "total_steps": args.steps, "decay_start": decay_start, "tokens_seen": tokens_seen, "params": n_params,
            "history": history, "args": vars(args), "wall_s": time.time() - t_start}
    with open(os.path.join(args.work, "train_info.json"), "w") as f:
        json.dump(info, f, indent=1)
    log(f"exported to {args.out}")


if __name__ == "__main__":
    main()
