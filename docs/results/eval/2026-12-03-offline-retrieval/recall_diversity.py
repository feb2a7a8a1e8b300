"""Doc recall@5 / @4 of both sample sets (dense and hybrid, heading paths, drafts and
superseded left out) with at most `cap` chunks per document and a second hop: the top
chunk's sentence closest to the question (sent), question + that sentence, or the whole
chunk, searched again; its best new document joins the first `first` of the first search
"""
import os, sys, re
ROOT = __import__("pathlib").Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / "docs/results/eval/2026-12-02-offline-reader")); sys.path.insert(0, str(ROOT))
OUT = os.environ.get("OUT", "/tmp/lorag-offline")
import numpy as np, sample
from serving.config import load_config
from retrieval.spec import SearchSettings
cfg = load_config(str(ROOT / 'configs/default.yaml'))
base = cfg.indexes['helix'].spec().model_copy(update={'embed_headings': True})
EX = ['draft', 'superseded']
_SENT = re.compile(r'(?<=[.!?])\s+|\n+')
def sentences(t): return [s.strip() for s in _SENT.split(t) if s.strip() and not s.strip().startswith('#')]
def capped(hits, cap, n):
    seen = {}; out = []
    for h in hits:
        if cap and seen.get(h['doc_id'], 0) >= cap: continue
        seen[h['doc_id']] = seen.get(h['doc_id'], 0) + 1; out.append(h)
        if len(out) == n: break
    return out
def hop(kb, q, cap, first, how):
    h1 = kb.search(q, top_k=40, exclude_status=EX)
    top = h1[0]
    s = sentences(top['text'])
    v = kb.embedder.encode_query([q] + s)
    best = s[int(np.argmax(v[1:] @ v[0]))]
    q2 = best if how == 'sent' else (q + ' ' + best if how == 'q+sent' else top['text'])
    h2 = kb.search(q2, top_k=40, exclude_status=EX)
    out = capped(h1, cap, first)
    docs = {h['doc_id'] for h in out}; ids = {h['chunk_id'] for h in out}
    for h in h2:
        if len(out) >= first + 1: break
        if h['doc_id'] not in docs: out.append(h); docs.add(h['doc_id']); ids.add(h['chunk_id'])
    rest = capped([h for h in h1 if h['chunk_id'] not in ids], None, 40)
    for h in rest:
        if len(out) >= 5: break
        if cap and sum(o['doc_id'] == h['doc_id'] for o in out) >= cap: continue
        out.append(h)
    return out
def rec(g, d): return len(set(g) & set(d)) / len(g)
if __name__ == "__main__":
      for SET in ['helix', 'northwind-ferries']:
        qs = [q for q in sample.questions(SET) if q['doc_ids']]
        for mode in ['dense', 'hybrid']:
            kb = sample.index(SET, base.model_copy(update={'search': SearchSettings(mode=mode)}))
            for cap in [None, 2, 1]:
                for first in [3, 2]:
                    for how in ['sent', 'q+sent', 'chunk']:
                        r5 = []; r4 = []; ms = []
                        for q in qs:
                            d = [h['doc_id'] for h in hop(kb, q['question'], cap, first, how)]
                            r5.append(rec(q['doc_ids'], d)); r4.append(rec(q['doc_ids'], d[:4]))
                            if r5[-1] < 1: ms.append(q['id'])
                        print(SET, mode, 'cap', cap, 'first', first, how, round(np.mean(r5), 3), round(np.mean(r4), 3), ms, flush=True)
